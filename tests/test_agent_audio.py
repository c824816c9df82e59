"""What every source shares: a muted input told from a quiet room."""

import numpy as np
from support import RATE

from cry_mqtt.audio import MutedInput


def test_digital_silence_is_told_from_a_quiet_room():
    muted = MutedInput(RATE, seconds=2.0)
    quiet = np.full(1600, 1 / 32768, np.float32)  # the least a real microphone sends
    zeros = np.zeros(1600, np.float32)
    assert not any(muted(zeros) for _ in range(19))
    assert muted(zeros)  # 2 s of exact zeros
    assert not muted(quiet)
    assert not any(muted(zeros) for _ in range(19))

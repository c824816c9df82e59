"""The test of the whole chain: a bundled recording of an infant crying (``sounds/``, from the
Donate-a-cry corpus, DbCL) played through the real features, model and detector, not the
microphone. Home Assistant's "Test the monitor" button and ``cry-mqtt check`` run it."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from cry_mqtt.audio import AudioError
from cry_mqtt.config import DetectionConfig
from cry_mqtt.detector import Episode, Preset
from cry_mqtt.model import CryModel
from cry_mqtt.pipeline import Pipeline
from cry_mqtt.recording import read_audio

TEST_RECORDING = Path(__file__).resolve().parent / "sounds" / "test-cry.ogg"
TEST_ON_SECONDS = 5.0
"""How long the test's ON lasts in Home Assistant before its OFF."""
QUIET_AROUND_SECONDS = 2.0
PLAYS = 2
"""The 7-s recording is played back to back this many times: crying long enough for the
detector's rule (3 of 5 windows at a 1-s hop) with whole windows of it."""


class SelfTestError(Exception):
    """The test recording was not heard as crying (or cannot be read)."""


def self_test(
    model: CryModel,
    detection: DetectionConfig,
    threshold: float | None = None,
    preset: Preset | None = None,
) -> tuple[Episode, float]:
    """The episode the bundled recording makes, with quiet before it and as long after as the
    detector needs to turn off, and the threshold it was heard at: ``preset`` and ``threshold``
    (those in force) win over ``detection``'s and the model's, as in the agent.
    :class:`SelfTestError` if it makes none."""
    rate = model.info.features.sample_rate
    try:
        crying = read_audio(TEST_RECORDING, rate)
    except AudioError as exc:  # a damaged install
        raise SelfTestError(f"cannot read the test recording {TEST_RECORDING}: {exc}") from exc
    pipeline = Pipeline(model, detection, threshold, preset=preset)
    threshold = pipeline.detector.settings.threshold
    quiet = np.zeros(round(QUIET_AROUND_SECONDS * rate), np.float32)
    tail = np.zeros(round((detection.hold_seconds + model.info.window_seconds) * rate), np.float32)
    audio = np.concatenate([quiet, *[crying] * PLAYS, tail])
    results = [*pipeline.push(audio), *pipeline.finish()]
    ended = [r.changed for r in results if r.changed is not None and r.changed.end is not None]
    if not ended:
        peak = max((r.prob for r in results), default=0.0)
        raise SelfTestError(
            f"the test recording of crying did not turn crying on at threshold {threshold:.2f} "
            f"(its highest window scored {peak:.2f}): the threshold is too high for crying, or "
            "the model file is not a cry model"
        )
    return ended[0], threshold

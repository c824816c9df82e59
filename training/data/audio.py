"""Audio as training hears it: the feature parameters and window length, decoding any file to
16 kHz mono as the agent does, the phone codec, digital silence trimmed, and whether a recording
holds sound events at all."""

from __future__ import annotations

import io
from pathlib import Path

import av
import numpy as np
import soxr

from cry_mqtt.features import AMIN, FeatureParams, dbfs, logmel
from cry_mqtt.recording import read_audio

PARAMS = FeatureParams()


AMIN_DB = 10 * np.log10(AMIN)


WINDOW_SECONDS = 7.0


WINDOW_SAMPLES = round(WINDOW_SECONDS * PARAMS.sample_rate)


AUDIO_SUFFIXES = {".wav", ".flac", ".ogg", ".mp3", ".m4a", ".3gp", ".caf", ".aac", ".opus", ".g722"}


def load_audio(path: Path, sample_rate: int = PARAMS.sample_rate) -> np.ndarray:
    """Decode any FFmpeg-readable file to mono float32 at ``sample_rate``, as the agent does."""
    return read_audio(path, sample_rate)


def trim_silence(samples: np.ndarray, floor_dbfs: float = -90.0, frame: int = 512) -> np.ndarray:
    """Drop leading and trailing frames of digital silence (RMS below ``floor_dbfs``).

    The Android Donate-a-cry uploads start with about 0.3 s of it, while the recorder starts; left
    in, "a window that begins in dead silence" would be a cue for crying that no live microphone
    ever gives.
    """
    usable = len(samples) // frame * frame
    power = np.mean(np.square(samples[:usable].reshape(-1, frame), dtype=np.float64), axis=1)
    loud = np.flatnonzero(power >= 10 ** (floor_dbfs / 10))
    if len(loud) == 0:
        return samples[:0]
    end = len(samples) if loud[-1] == len(power) - 1 else (loud[-1] + 1) * frame
    return samples[loud[0] * frame : end]


def phone_codec(samples: np.ndarray, bit_rate: int = 12200) -> np.ndarray:
    """Pass 16 kHz audio through 8 kHz AMR-NB, the codec of the Android Donate-a-cry uploads."""
    rate = 8000
    pcm = np.clip(soxr.resample(samples, PARAMS.sample_rate, rate) * 32767, -32768, 32767)
    frame = av.AudioFrame.from_ndarray(pcm.astype(np.int16)[None], format="s16", layout="mono")
    frame.sample_rate = rate
    buffer = io.BytesIO()
    with av.open(buffer, "w", format="amr") as out:
        stream = out.add_stream("libopencore_amrnb", rate=rate, layout="mono")
        stream.bit_rate = bit_rate
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    buffer.seek(0)
    with av.open(buffer, format="amr") as inp:
        decoded = np.concatenate([f.to_ndarray().reshape(-1) for f in inp.decode(audio=0)])
    coded = soxr.resample(decoded.astype(np.float32), rate, PARAMS.sample_rate)
    out_samples = np.zeros(len(samples), np.float32)
    out_samples[: min(len(coded), len(samples))] = coded[: len(samples)]
    return out_samples


QUIET_RECORDING_DBFS = -20.0
"""A whole recording below this level is quiet (:func:`holds_events`)."""


FLAT_CONTRAST_DB = 12.0


def event_contrast_db(samples: np.ndarray) -> float:
    """How far a recording's loud frames rise above its noise floor: the 95th minus the 10th
    percentile of log-mel frame energy in dB (digital silence left out)."""
    mel = logmel(samples, PARAMS)
    energy = 10 * np.log10(np.mean(10 ** (mel / 10), axis=0))
    energy = energy[energy > AMIN_DB + 1]
    if len(energy) == 0:
        return 0.0
    return float(np.percentile(energy, 95) - np.percentile(energy, 10))


def holds_events(samples: np.ndarray) -> bool:
    """False for a quiet, flat recording: below :data:`QUIET_RECORDING_DBFS` with nothing rising
    :data:`FLAT_CONTRAST_DB` above its steady noise. Some Donate-a-cry uploads are like that and
    hold no audible crying."""
    return dbfs(samples) >= QUIET_RECORDING_DBFS or event_contrast_db(samples) >= FLAT_CONTRAST_DB

"""Measuring the agent's processing path (features, gate, model, detector).

The recording (shared negatives with quiet stretches between them: a nursery is mostly quiet)
and the measurement of one configuration in its own process, streaming 0.1-s blocks through the
pipeline exactly as the agent does. ``bench/cost.py`` is the command that runs them, beside the
seed recipe and ResNet34.
"""

from __future__ import annotations

import csv
import platform
import time
from pathlib import Path

import numpy as np
import soundfile

REPO = Path(__file__).resolve().parent.parent
RATE = 16000
ONE_THREAD = {"OMP_NUM_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
"""Measurements run on one thread (BLAS too), as the agent ships (Docker, systemd, and its own
default): spinning BLAS threads on a busy machine would otherwise bill CPU that does no work."""


def build_recording(data: Path, minutes: float, quiet_share: float, path: Path) -> None:
    """Negatives back to back, each followed by quiet room noise, streamed to a WAV file."""
    rng = np.random.default_rng(0)
    with open(data / "negatives" / "manifest.csv") as f:
        rows = list(csv.DictReader(f))
    rng.shuffle(rows)
    target = round(minutes * 60 * RATE)
    written = 0
    with soundfile.SoundFile(str(path), "w", RATE, 1, "PCM_16") as out:
        for row in rows:
            if written >= target:
                break
            sound, rate = soundfile.read(str(data / row["path"]), dtype="float32")
            assert rate == RATE
            quiet_len = round(len(sound) * quiet_share / (1 - quiet_share))
            quiet = (10 ** (-75 / 20) * rng.standard_normal(quiet_len)).astype(np.float32)
            for part in (sound, quiet):
                part = part[: target - written]
                out.write(part)
                written += len(part)


def measure(wav: Path, model_path: Path | None, hop: float, gate: float) -> dict:
    """Runs in its own process: the pipeline over ``wav``, as the agent would."""
    started = time.perf_counter()
    from cry_mqtt import agent  # noqa: F401  (the agent's imports count towards its memory)
    from cry_mqtt.config import DetectionConfig
    from cry_mqtt.model import CryModel, default_model_path
    from cry_mqtt.pipeline import Pipeline
    from cry_mqtt.recording import FileSource

    model = CryModel(model_path or default_model_path())
    pipeline = Pipeline(model, DetectionConfig(hop_seconds=hop, gate_dbfs=gate), 0.5)
    startup = time.perf_counter() - started
    cpu0, wall0 = time.process_time(), time.perf_counter()
    windows = scored = 0
    first_score = None
    rate = model.info.features.sample_rate  # a 16 kHz recording is resampled, as the agent does
    for block in FileSource(wav, rate, realtime=False, block_seconds=0.1).blocks():
        for result in pipeline.push(block):
            windows += 1
            scored += not result.gated
            if first_score is None:
                first_score = (time.perf_counter() - started, result.t)
    return {
        "gate_dbfs": gate,
        **result_row(
            wav,
            model,
            pipeline.hop_seconds,
            pipeline.now,
            windows,
            scored,
            cpu0,
            wall0,
            startup,
            first_score,
        ),
    }


def result_row(
    wav: Path,
    model,
    hop_s: float,
    audio_s: float,
    windows: int,
    scored: int,
    cpu0: float,
    wall0: float,
    startup: float,
    first_score: tuple[float, float] | None,
) -> dict:
    """The measured figures of one run, from its CPU and wall clocks at the start of the loop;
    the CPU of only reading ``wav`` is measured apart and taken out. ``model`` is None for a
    way that runs no cry-mqtt model file (Frigate's)."""
    cpu = time.process_time() - cpu0
    wall = time.perf_counter() - wall0
    read = read_cpu_s(wav)
    cpu -= read
    first_wall, first_audio = first_score or (float("nan"), float("nan"))
    return {
        "hop_s": round(hop_s, 3),
        "audio_s": round(audio_s, 1),
        "windows": windows,
        "scored": scored,
        "cpu_s_per_audio_hour": round(cpu / audio_s * 3600, 2),
        "read_cpu_s_per_audio_hour": round(read / audio_s * 3600, 2),
        "core_percent": round(100 * cpu / audio_s, 3),
        "realtime_factor": round(audio_s / wall, 1),
        "model_ms_per_window": None if model is None else round(model.window_cpu_ms(), 3),
        "startup_s": round(startup, 2),
        "first_score_s": round(first_wall, 2),
        "first_score_audio_s": round(first_audio, 2),
        "peak_rss_mb": peak_rss_mb(),
    }


def read_cpu_s(wav: Path) -> float:
    """CPU seconds that only reading ``wav`` in 0.1-s blocks takes (the least of three passes);
    subtracted, so that the figures are those of the processing path alone."""
    from cry_mqtt.recording import FileSource

    passes = []
    for _ in range(3):
        start = time.process_time()
        for _ in FileSource(wav, RATE, realtime=False, block_seconds=0.1).blocks():
            pass
        passes.append(time.process_time() - start)
    return min(passes)


def peak_rss_mb() -> float:
    """Peak resident memory of this process image (VmHWM: unlike ``ru_maxrss``, not inherited
    from the parent of a fork + exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return round(int(line.split()[1]) / 1024, 1)
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()

"""What recording episodes and drawing their pictures add to the agent: CPU per audio second and
peak memory, with and without them, each in a fresh process.

A night of quiet room noise with crying episodes (the bundled test recording, played twice, every
``--cycle`` seconds) streams in 0.1-s blocks through the agent's pipeline, as the agent does; with
``evidence`` the blocks and scores also go to :class:`cry_mqtt.episodes.EpisodeEvidence`, which
records each episode to Opus and draws its picture at ON, every 10 s and at OFF, as the agent.

    .venv/bin/python bench/episode_cost.py --minutes 20
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import numpy as np

from cry_mqtt.config import Config, DetectionConfig, RecordConfig
from cry_mqtt.episodes import EpisodeEvidence
from cry_mqtt.model import CryModel, default_model_path
from cry_mqtt.pipeline import Pipeline
from cry_mqtt.recording import read_audio
from cry_mqtt.selftest import TEST_RECORDING

REPO = Path(__file__).resolve().parent.parent
BLOCK_SECONDS = 0.1
WAYS = ("pipeline", "evidence")


def night(rate: int, minutes: float, cycle: float) -> Iterator[np.ndarray]:
    """0.1-s blocks of quiet room noise (-50 dBFS) with the test recording twice every
    ``cycle`` seconds, made as they are read (the night is never in memory at once)."""
    rng = np.random.default_rng(0)
    crying = np.tile(read_audio(TEST_RECORDING, rate), 2)
    block = round(BLOCK_SECONDS * rate)
    quiet_blocks = (round(cycle * rate) - len(crying)) // block
    for _ in range(max(1, round(minutes * 60 / cycle))):
        for _ in range(quiet_blocks):
            yield (0.0045 * rng.standard_normal(block)).astype(np.float32)
        for start in range(0, len(crying), block):
            yield crying[start : start + block]


def measure(way: str, minutes: float, cycle: float) -> dict:
    """One configuration, in this process: CPU seconds of the streaming loop, episodes, peak RSS."""
    model = CryModel(default_model_path(), threads=1)
    rate = model.info.features.sample_rate
    pipeline = Pipeline(model, DetectionConfig())
    with tempfile.TemporaryDirectory() as folder:
        config = Config(
            record=RecordConfig(folder=Path(folder)), state_file=Path(folder) / "state.json"
        )
        features = model.info.features
        evidence = EpisodeEvidence(config, features, model.info.window_seconds, datetime.now())
        episodes, pictures, picture_bytes, samples_in = 0, 0, 0, 0
        started = time.process_time()
        for samples in night(rate, minutes, cycle):
            samples_in += len(samples)
            if way == "evidence":
                evidence.feed(samples)
            for result in pipeline.push(samples):
                if way != "evidence":
                    episodes += result.changed is not None and result.changed.end is None
                    continue
                evidence.score(result.t, result.prob, result.columns)
                threshold = pipeline.detector.settings.threshold
                picture = evidence.due_picture(result.t, threshold)
                if result.changed is not None:  # as the agent: a picture at ON and at OFF
                    if result.changed.end is None:
                        episodes += 1
                        evidence.begin(result.changed.start, datetime.now())
                    else:
                        evidence.end(result.changed.duration(result.t), datetime.now())
                    picture = evidence.picture(threshold)
                if picture is not None:
                    pictures += 1
                    picture_bytes += len(picture)
        if way == "evidence" and (ended := pipeline.detector.reset(pipeline.now)) is not None:
            evidence.end(ended.duration(pipeline.now), datetime.now())  # as the agent stops
        cpu = time.process_time() - started
        clips = list(Path(folder).glob("*.ogg"))
        recorded = sum(p.stat().st_size for p in clips)
    seconds = samples_in / rate
    return {
        "way": way,
        "audio_seconds": round(seconds, 1),
        "cpu_seconds": round(cpu, 3),
        "cpu_per_audio_hour": round(cpu / seconds * 3600, 2),
        "episodes": episodes,
        "pictures": pictures,
        "mean_picture_kb": round(picture_bytes / max(pictures, 1) / 1000, 1),
        "recordings": len(clips),
        "recorded_kb": round(recorded / 1000, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--cycle", type=float, default=120.0, help="seconds between episodes")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "episodes.json")
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.way:
        print(json.dumps(measure(args.way, args.minutes, args.cycle)))
        return
    runs = []
    for way in WAYS:
        command = [sys.executable, __file__, "--way", way, "--minutes", str(args.minutes),
                   "--cycle", str(args.cycle)]  # fmt: skip
        runs.append(json.loads(subprocess.run(command, check=True, capture_output=True,
                                               text=True).stdout))  # fmt: skip
    base, evidence = runs
    report = {
        "runs": runs,
        "added_cpu_share": round(evidence["cpu_seconds"] / base["cpu_seconds"] - 1, 3),
        "added_rss_mb": round(evidence["peak_rss_mb"] - base["peak_rss_mb"], 1),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()

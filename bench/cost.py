"""Side by side on the same audio: the agent's processing path against the seed recipe.

(a) the agent's path (streaming log-mel, gate, model, detector; also without the gate),
(b) the seed recipe's way: librosa log-mel recomputed over the whole 7-s window at every hop,
same model, no gate, (c) the agent's path with the seed's ResNet34 in place of the default model,
(d) Frigate's audio loop, YAMNet's TFLite file on the latest 0.975-s chunk every hop: the peer
the agent's cost is held to.
Each configuration runs in a fresh process over one recording (``agent_cost.build_recording``) at
several hops; reports CPU s per audio hour, model ms per window, peak RSS and time to first score.
Run: ``python bench/cost.py [--minutes 10] [--model PATH] [--resnet PATH]``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from agent_cost import (
    ONE_THREAD,
    RATE,
    REPO,
    build_recording,
    cpu_name,
    measure,
    result_row,
)

from cry_mqtt.config import DetectionConfig

HOPS = (0.25, 0.5, 1.0, 2.0)
AGENT_GATE = DetectionConfig().gate_dbfs
NO_GATE = -100.0


def seed_logmel(window: np.ndarray, params) -> np.ndarray:
    """The seed recipe's features of one window with librosa, in the model's parameters."""
    import librosa

    mel = librosa.feature.melspectrogram(
        y=window,
        sr=params.sample_rate,
        n_fft=params.n_fft,
        hop_length=params.hop_length,
        n_mels=params.n_mels,
        fmin=params.fmin,
        fmax=params.fmax,
        center=False,
    )
    return librosa.power_to_db(mel, ref=1.0, amin=1e-10, top_db=None).astype(np.float32)


class Sliding:
    """The latest ``size`` samples every ``step`` samples of a stream fed block by block: the
    window a loop that recomputes everything every hop scores."""

    def __init__(self, size: int, step: int) -> None:
        self.size, self.step = size, step
        self.total = 0
        """Samples fed so far."""
        self._next_end = size
        self._recent = np.zeros(0, np.float32)

    def push(self, block: np.ndarray) -> Iterator[tuple[int, np.ndarray]]:
        """Each window that ``block`` completes, with the sample at which it ends."""
        keep = self.size + self.step + len(block)
        self._recent = np.concatenate([self._recent, block])[-keep:]
        self.total += len(block)
        while self.total >= self._next_end:
            stop = len(self._recent) - (self.total - self._next_end)
            yield self._next_end, self._recent[stop - self.size : stop]
            self._next_end += self.step


def measure_seed(wav: Path, model_path: Path | None, hop: float) -> dict:
    """Runs in its own process: the seed's way over ``wav`` in 0.1-s blocks, every window scored."""
    started = time.perf_counter()
    from cry_mqtt.detector import Detector
    from cry_mqtt.model import CryModel, default_model_path
    from cry_mqtt.pipeline import detector_settings
    from cry_mqtt.recording import FileSource

    model = CryModel(model_path or default_model_path())
    p = model.info.features
    size = p.samples_for(model.info.window_frames)
    hop_samples = p.hops_in(hop) * p.hop_length
    detector = Detector(detector_settings(DetectionConfig(), model.info))
    seed_logmel(np.zeros(size, np.float32), p)  # librosa's lazy imports count as start-up
    startup = time.perf_counter() - started
    cpu0, wall0 = time.process_time(), time.perf_counter()
    sliding = Sliding(size, hop_samples)
    windows, first_score = 0, None
    rate = p.sample_rate
    for block in FileSource(wav, rate, realtime=False, block_seconds=0.1).blocks():
        for end, window in sliding.push(block):
            prob = float(model.predict(seed_logmel(window, p)[None])[0])
            detector.update(end / rate, prob)
            windows += 1
            if first_score is None:
                first_score = (time.perf_counter() - started, end / rate)
    return result_row(
        wav,
        model,
        hop_samples / rate,
        sliding.total / rate,
        windows,
        windows,
        cpu0,
        wall0,
        startup,
        first_score,
    )


FRIGATE_CHUNK = 15600
"""Samples of the 0.975-s chunk Frigate's audio loop gives YAMNet (its waveform input)."""


def measure_frigate(wav: Path, data: Path, hop: float) -> dict:
    """Runs in its own process: Frigate's audio detection (``frigate/events/audio.py``), the
    YAMNet TFLite file on the latest 0.975-s chunk every ``hop`` seconds, one thread."""
    started = time.perf_counter()
    from ai_edge_litert.interpreter import Interpreter

    from cry_mqtt.recording import FileSource

    tflite = Interpreter(str(data / "pretrained" / "yamnet" / "yamnet.tflite"), num_threads=1)
    tflite.allocate_tensors()
    (inp,), (out, *_) = tflite.get_input_details(), tflite.get_output_details()
    startup = time.perf_counter() - started
    cpu0, wall0 = time.process_time(), time.perf_counter()
    sliding = Sliding(FRIGATE_CHUNK, round(hop * RATE))
    windows, first_score = 0, None
    for block in FileSource(wav, RATE, realtime=False, block_seconds=0.1).blocks():
        for end, chunk in sliding.push(block):
            tflite.set_tensor(inp["index"], chunk)
            tflite.invoke()
            tflite.get_tensor(out["index"])
            windows += 1
            if first_score is None:
                first_score = (time.perf_counter() - started, end / RATE)
    audio_s = sliding.total / RATE
    return result_row(wav, None, hop, audio_s, windows, windows, cpu0, wall0, startup, first_score)


def export_resnet34(out: Path) -> Path:
    """An untrained ResNet34 (training's architecture and exporter) with the model metadata;
    for cost only, its scores mean nothing."""
    from cry_mqtt.model import ModelInfo
    from training.data.audio import PARAMS, WINDOW_SECONDS
    from training.export import WindowProbability, write_onnx
    from training.nets.cnn import build

    info = ModelInfo(PARAMS, WINDOW_SECONDS, 0.5, "resnet34-untrained", {"arch": "resnet34"})
    frames = info.window_frames
    example = np.random.default_rng(0).normal(-40, 15, (2, PARAMS.n_mels, frames))
    write_onnx(WindowProbability(build("resnet34")).eval(), info, example.astype(np.float32), out)
    return out


def resnet34_model(given: Path | None, tmp: Path) -> tuple[Path, str]:
    """The ResNet34 to time: ``given``, else a trained one under ``runs/``, else an untrained
    export in ``tmp``."""
    trained = REPO / "runs" / "resnet34" / "cry-resnet34.onnx"
    if given is not None:
        return given, str(given)
    if trained.is_file():
        return trained, "trained, runs/resnet34/cry-resnet34.onnx"
    return export_resnet34(tmp / "resnet34.onnx"), "untrained export (weights do not affect cost)"


WAYS = {
    "a_agent": "agent path (streaming features, gate -65 dBFS, the model, detector)",
    "a_agent_no_gate": "agent path without the gate (every window scored)",
    "b_seed": "seed recipe: librosa log-mel of the whole window every hop, the model, no gate",
    "c_resnet34": "agent path with ResNet34 in place of the model (gate -65 dBFS)",
    "d_frigate": "Frigate's audio loop: YAMNet TFLite on the latest 0.975-s chunk every hop",
}


def run_way(way: str, wav: Path, hop: float, model: Path | None, resnet: Path, data: Path) -> dict:
    """One configuration in a fresh process; its JSON result."""
    command = [sys.executable, __file__, "--measure", str(wav), "--way", way, "--hop", str(hop)]
    command += ["--data", str(data)]
    chosen = resnet if way == "c_resnet34" else model
    if chosen is not None:
        command += ["--model", str(chosen)]
    env = {**os.environ, **ONE_THREAD}
    done = subprocess.run(command, check=True, capture_output=True, text=True, env=env)
    return {"way": way, "hop_asked_s": hop, **json.loads(done.stdout)}


def measure_way(way: str, wav: Path, model: Path | None, hop: float, data: Path) -> dict:
    if way == "b_seed":
        return measure_seed(wav, model, hop)
    if way == "d_frigate":
        return measure_frigate(wav, data, hop)
    return measure(wav, model, hop, NO_GATE if way == "a_agent_no_gate" else AGENT_GATE)


def ratios(runs: list[dict]) -> list[dict]:
    """Per hop asked for: how many times more CPU the seed's way and ResNet34 take than the
    agent (the hop each one runs at is the nearest whole number of its own model's frames)."""
    by = {(r["way"], r["hop_asked_s"]): r["cpu_s_per_audio_hour"] for r in runs}
    rows = []
    for hop in sorted({r["hop_asked_s"] for r in runs}):
        a, a_all = by[("a_agent", hop)], by[("a_agent_no_gate", hop)]
        rows.append(
            {
                "hop_s": hop,
                "b_over_a": round(by[("b_seed", hop)] / a, 1),
                "b_over_a_no_gate": round(by[("b_seed", hop)] / a_all, 1),
                "c_over_a": round(by[("c_resnet34", hop)] / a, 1),
                "d_over_a_no_gate": round(by[("d_frigate", hop)] / a_all, 2),
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--quiet-share", type=float, default=0.5)
    parser.add_argument("--model", type=Path, help="default model (default: the packaged one)")
    parser.add_argument("--resnet", type=Path, help="ResNet34 ONNX (default: runs/ or untrained)")
    parser.add_argument("--hops", type=float, nargs="+", default=list(HOPS))
    parser.add_argument("--data", type=Path, default=REPO.parent / "shared" / "data")
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "cost.json")
    parser.add_argument("--measure", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--way", choices=WAYS, help=argparse.SUPPRESS)
    parser.add_argument("--hop", type=float, default=1.0, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.measure:
        print(json.dumps(measure_way(args.way, args.measure, args.model, args.hop, args.data)))
        return
    runs = []
    with tempfile.TemporaryDirectory() as tmp:
        resnet, resnet_note = resnet34_model(args.resnet, Path(tmp))
        wav = Path(tmp) / "night.wav"
        build_recording(args.data, args.minutes, args.quiet_share, wav)
        for hop in args.hops:
            for way in WAYS:
                runs.append(run_way(way, wav, hop, args.model, resnet, args.data))
                print(json.dumps(runs[-1]), flush=True)
    report = {
        "machine": f"{cpu_name()}, {platform.machine()}, {platform.system()}, "
        f"Python {platform.python_version()}, one thread per configuration (ONNX and BLAS)",
        "recording": f"{args.minutes} min of shared negatives, {args.quiet_share:.0%} quiet",
        "ways": WAYS,
        "resnet34": resnet_note,
        "runs": runs,
        "ratios": ratios(runs),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report["ratios"]))
    print(f"written to {args.out}")


if __name__ == "__main__":
    main()

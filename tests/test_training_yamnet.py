"""YAMNet in PyTorch against the TFLite files it is read from, its front end in the agent, and the
streaming model file that the agent runs."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest
import torch
from ai_edge_litert.interpreter import Interpreter

from cry_mqtt.config import DetectionConfig
from cry_mqtt.features import YAMNET, StreamingLogMel, logmel, mel_filterbank
from cry_mqtt.model import CryModel, Patches
from cry_mqtt.pipeline import Pipeline
from training.data.audio import load_audio
from training.export import write_streaming_onnx
from training.nets.streaming import pool, predict_windows
from training.nets.yamnet import BABY_CRY, CryPatches, _dequantised, patches, pretrained
from training.recipes.finetune import window_patches

YAMNET_PATCHES = Patches(96, 48)
CHUNK = YAMNET.samples_for(96)  # 15,600 samples: one patch, the TFLite files' input


@pytest.fixture(scope="module")
def yamnet_dir(data_dir: Path) -> Path:
    return data_dir / "pretrained" / "yamnet"


@pytest.fixture(scope="module")
def clips(data_dir: Path) -> dict[str, np.ndarray]:
    """The first 0.975 s of real recordings: crying, speech, a dog, a lullaby."""
    root = data_dir / "independent"
    with open(root / "manifest.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    picked = {}
    for category in ("cry", "conversation", "esc50", "lullaby", "nonverbal"):
        for row in [r for r in rows if r["category"] == category][:3]:
            samples = load_audio(root / row["path"])
            if len(samples) >= CHUNK:
                picked[row["path"]] = samples[:CHUNK]
    return picked


def _tflite(path: Path) -> Interpreter:
    interpreter = Interpreter(model_path=str(path))
    interpreter.allocate_tensors()
    return interpreter


def _run(interpreter: Interpreter, samples: np.ndarray) -> list[np.ndarray]:
    (inp,) = interpreter.get_input_details()
    interpreter.set_tensor(inp["index"], samples.reshape(inp["shape"]))
    interpreter.invoke()
    return [interpreter.get_tensor(o["index"]) for o in interpreter.get_output_details()]


def test_pytorch_yamnet_gives_the_tflite_scores(yamnet_dir, clips):
    """On the log-mel patch the TFLite file scored, PyTorch gives its 521 scores."""
    interpreter = _tflite(yamnet_dir / "yamnet-with-patches.tflite")
    net = pretrained(yamnet_dir / "yamnet-with-patches.tflite")
    diffs = []
    for samples in clips.values():
        scores, patch = _run(interpreter, samples)
        with torch.no_grad():
            ours = torch.sigmoid(net(torch.from_numpy(patch[None]))).numpy()
        assert ours.argmax() == scores.argmax()
        diffs.append(np.abs(ours - scores).max())
    assert len(diffs) >= 10
    assert max(diffs) < 0.03  # int8 activations in TFLite's kernels, float here


def test_front_end_gives_the_tflite_patch(yamnet_dir, clips):
    """Our front end equals YAMNet's up to the TFLite file's int8 DFT and mel matrices: the mel
    matrix to its quantisation step, the patches closely where there is sound (in near-silent
    bands the file's quantised matrices round small energies to zero: log(0.001) = -6.9)."""
    interpreter = _tflite(yamnet_dir / "yamnet-with-patches.tflite")
    mel_matrix = next(
        d["index"] for d in interpreter.get_tensor_details() if d["shape"].tolist() == [64, 257]
    )
    assert np.abs(_dequantised(interpreter, mel_matrix) - mel_filterbank(YAMNET)).max() < 0.004
    diffs = []
    for samples in clips.values():
        _, reference = _run(interpreter, samples)
        (ours,) = patches(logmel(samples, YAMNET))
        assert ours.shape == reference.shape == (96, 64)
        diffs.append(np.abs(ours - reference)[reference > np.log(0.01)])
    sound = np.concatenate(diffs)
    assert len(sound) > 0.2 * len(clips) * 96 * 64
    assert np.median(sound) < 0.05
    assert np.percentile(sound, 90) < 0.25


def test_scores_from_our_front_end_agree_with_the_files(yamnet_dir, clips):
    """Waveform to scores: ours name the TFLite files' top class on crying, and our cry score
    lies within 0.1 of the range the two files (the same weights, converted twice) span."""
    files = [_tflite(yamnet_dir / n) for n in ("yamnet.tflite", "yamnet-with-patches.tflite")]
    net = pretrained(yamnet_dir / "yamnet.tflite")
    for path, samples in clips.items():
        with torch.no_grad():
            ours = torch.sigmoid(net(torch.from_numpy(patches(logmel(samples, YAMNET))))).numpy()
        scores = np.concatenate([_run(interpreter, samples)[0] for interpreter in files])
        cry = scores[:, BABY_CRY]
        assert cry.min() - 0.1 < ours[0, BABY_CRY] < cry.max() + 0.1
        if path.startswith("cry/"):
            assert ours.argmax() in scores.argmax(axis=1)


def test_streaming_features_equal_batch_for_yamnet():
    rng = np.random.default_rng(3)
    x = rng.normal(0, 0.1, 40_000).astype(np.float32)
    stream = StreamingLogMel(YAMNET)
    parts = [stream.push(x[i : i + 1234]) for i in range(0, len(x), 1234)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), logmel(x, YAMNET), atol=1e-5)


@pytest.fixture(scope="module")
def streaming_model(tmp_path_factory: pytest.TempPathFactory, yamnet_dir: Path) -> Path:
    from training.export import streaming_info

    model = CryPatches(pretrained(yamnet_dir / "yamnet.tflite")).eval()
    out = tmp_path_factory.mktemp("yamnet") / "cry-yamnet.onnx"
    write_streaming_onnx(model, streaming_info(YAMNET, YAMNET_PATCHES, 0.5, "test-1", {}), out)
    return out


def test_streaming_model_in_the_agent_equals_the_whole_window(streaming_model, data_dir):
    """The agent runs the body on new patches only; each score equals the whole window's."""
    model = CryModel(streaming_model)
    assert model.info.window_patches == 13
    root = data_dir / "independent"
    audio = np.concatenate(
        [load_audio(root / "esc50" / p.name) for p in sorted((root / "esc50").iterdir())[:2]]
        + [load_audio(p) for p in sorted((root / "cry").iterdir())[:2]]
    )
    pipeline = Pipeline(model, DetectionConfig(gate_dbfs=-100.0, hop_seconds=0.5))
    results = list(pipeline.run(audio[i : i + 3000] for i in range(0, len(audio), 3000)))
    mel = logmel(audio, YAMNET)
    window = 96 + 12 * 48
    assert len(results) > 10
    for result in results:
        n = 1 + (YAMNET.frames_in(round(result.t * 16000)) - 96) // 48  # patches so far
        start = (n - 13) * 48
        expected = model.predict(mel[None, :, start : start + window])[0]
        assert result.prob == pytest.approx(expected, abs=1e-5)
    assert max(r.prob for r in results) > 0.5  # the crying clips
    torch_probs = predict_windows(
        CryPatches(pretrained(data_dir / "pretrained" / "yamnet" / "yamnet.tflite")).eval(),
        mel[None, :, :window].copy(),
        YAMNET_PATCHES,
    )
    assert model.predict(mel[None, :, :window])[0] == pytest.approx(torch_probs[0], abs=1e-5)


def test_quiet_patches_leave_the_window(streaming_model):
    """A gated (quiet) stretch counts as no crying once it fills the window."""
    model = CryModel(streaming_model)
    scorer = model.scorer()
    loud = np.random.default_rng(0).normal(-2.0, 2.0, (64, 96 + 12 * 48)).astype(np.float32)
    scorer.push(loud)
    first = scorer.score()
    assert 0.0 < first < 1.0
    scorer.push(loud[:, : 13 * 48])
    scorer.skip()
    assert scorer.score() == 0.0
    assert np.all(scorer._state == -100.0)


def test_window_patches_match_the_agents_patches():
    mel = np.random.default_rng(1).normal(size=(64, 698)).astype(np.float32)
    ours = window_patches(torch.from_numpy(mel[None]))[0].numpy()
    np.testing.assert_array_equal(ours, patches(mel))
    assert ours.shape == (13, 96, 64)


def test_pooling_takes_the_mean_of_the_highest_patches():
    logits = torch.tensor([[0.0, 5.0, -1.0, 3.0, 4.0]])
    assert pool(logits).item() == 5.0
    assert pool(logits, top=3).item() == pytest.approx(4.0)


def test_a_top_k_streaming_file_scores_as_pytorch_does(tmp_path, yamnet_dir, data_dir):
    from training.export import streaming_info

    model = CryPatches(pretrained(yamnet_dir / "yamnet.tflite")).eval()
    out = tmp_path / "top3.onnx"
    write_streaming_onnx(
        model, streaming_info(YAMNET, YAMNET_PATCHES, 0.5, "test-top3", {"pool_top": 3}), out
    )
    cry = sorted((data_dir / "independent" / "cry").iterdir())[0]
    mel = logmel(load_audio(cry), YAMNET)[None, :, : 96 + 12 * 48].copy()
    top3 = CryModel(out).predict(mel)[0]
    assert top3 == pytest.approx(predict_windows(model, mel, YAMNET_PATCHES, top=3)[0], abs=1e-5)
    assert top3 <= predict_windows(model, mel, YAMNET_PATCHES)[0]  # never above the maximum


def test_the_window_embedding_is_what_the_highest_patch_heard(streaming_model, yamnet_dir):
    """The file's third output: each new patch's 1024-d embedding; the scorer's window embedding
    is the (unit) embedding of the patch its score pools, as PyTorch computes it."""
    model = CryModel(streaming_model)
    assert model.embedding_size == 1024
    mel = np.random.default_rng(2).normal(-3.0, 2.0, (64, 96 + 12 * 48)).astype(np.float32)
    scorer = model.scorer()
    scorer.push(mel)
    scorer.score()
    cut = window_patches(torch.from_numpy(mel[None]))[0]  # YAMNet's layout
    network = CryPatches(pretrained(yamnet_dir / "yamnet.tflite")).eval()
    with torch.no_grad():
        top = int(network.cry_logit(cut).argmax())
        expected = network.yamnet.embed(cut[top : top + 1])[0].numpy()
    np.testing.assert_allclose(scorer.embedding(), expected / np.linalg.norm(expected), atol=1e-4)
    scorer.reset()
    assert scorer.embedding() is None  # nothing heard yet


def test_a_zero_shot_file_is_regraphed_with_its_metadata(yamnet_dir, tmp_path):
    """``export --like``: today's graph around the same tagger, the old metadata kept, the
    memory's similarity added, the scores unchanged; other weights and a window model are
    refused."""
    from support import build_fixture_model

    from training import RecipeError
    from training.export import regraph, streaming_info
    from training.recipes.weights import network

    info = streaming_info(YAMNET, YAMNET_PATCHES, 0.5, "yamnet-1", {"arch": "yamnet"})
    old, other, out = tmp_path / "old.onnx", tmp_path / "other.onnx", tmp_path / "again.onnx"
    write_streaming_onnx(network("yamnet").eval(), info, old)
    presets = [{"name": "Balanced", "threshold": 0.5, "trigger_windows": 3, "of_windows": 5}]
    again = regraph(old, out, memory_similarity=0.96, presets=presets)
    assert CryModel(out).info == again and again.details["learn"] == {"similarity": 0.96}
    assert again.details["presets"] == presets
    assert again.version == "yamnet-1" and again.threshold == 0.5
    # The same network from another TFLite file (as a fine-tuned file would be): not the tagger.
    write_streaming_onnx(CryPatches(pretrained(yamnet_dir / "yamnet.tflite")).eval(), info, other)
    with pytest.raises(RuntimeError, match="differ by"):
        regraph(other, out)
    with pytest.raises(RecipeError, match="zero-shot yamnet or mn04"):
        regraph(build_fixture_model(tmp_path / "window.onnx"), out)

"""EfficientAT mn04_as in PyTorch and its front end in the agent, against the reference outputs
of the upstream implementation, and the streaming model file the agent runs at 32 kHz."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from cry_mqtt.config import DetectionConfig
from cry_mqtt.features import EFFICIENTAT, StreamingLogMel, logmel
from cry_mqtt.model import CryModel, Patches
from cry_mqtt.pipeline import Pipeline
from cry_mqtt.recording import FileSource
from training.__main__ import main
from training.export import streaming_info, write_streaming_onnx
from training.nets.efficientat import (
    BABY_CRY,
    MEL_SCALE,
    MEL_SHIFT,
    PATCH_FRAMES,
    PATCH_HOP_FRAMES,
    MobileNetAT,
    patches,
    pretrained,
)

CLIPS = ("ios_cry", "android_cry", "speech", "dog")
FIRST = 2
"""The first reference frame whose window lies inside the clip (the reference pads the edges by
reflection, the agent never does): frame k spans samples 320 k - 400 ... 320 k + 400."""


@pytest.fixture(scope="module")
def reference(data_dir: Path) -> dict[str, np.ndarray]:
    with np.load(data_dir / "pretrained" / "efficientat" / "reference.npz") as npz:
        return dict(npz)


@pytest.fixture(scope="module")
def network(data_dir: Path) -> MobileNetAT:
    return pretrained(data_dir / "pretrained" / "efficientat" / "mn04_as_mAP_432.pt")


def _unnormalised(mel: np.ndarray) -> np.ndarray:
    """The reference log-mel as the agent's front end gives it (before the network's scaling)."""
    return mel * MEL_SCALE - MEL_SHIFT


def _top(logits: np.ndarray, k: int = 3) -> list[int]:
    return [int(i) for i in np.argsort(-logits)[:k]]


@pytest.mark.parametrize("clip", CLIPS)
def test_network_gives_the_reference_logits(reference, network, clip):
    mel = torch.from_numpy(_unnormalised(reference[f"{clip}_mel"]))[None]
    with torch.no_grad():
        ours = network(mel)[0].numpy()
        cry = network.patch_logit(mel)[0].item()
    expected = reference[f"{clip}_logits"]
    assert np.abs(ours - expected).max() < 1e-4
    assert _top(ours) == _top(expected)
    assert cry == pytest.approx(expected[BABY_CRY], abs=1e-4)


@pytest.mark.parametrize("clip", CLIPS)
def test_front_end_gives_the_reference_log_mel(reference, clip):
    """Every frame inside the clip equals the reference's; pre-emphasis needs one sample more."""
    wave, mel = reference[f"{clip}_wave"], _unnormalised(reference[f"{clip}_mel"])
    ours = logmel(wave[FIRST * EFFICIENTAT.hop_length - EFFICIENTAT.win_length // 2 :], EFFICIENTAT)
    inside = mel.shape[1] - FIRST - 1  # the last frame is padded too
    assert ours.shape[1] >= inside
    assert np.abs(ours[:, :inside] - mel[:, FIRST : FIRST + inside]).max() < 1e-3


@pytest.mark.parametrize("clip", CLIPS)
def test_front_end_and_network_rank_the_classes_as_the_reference(reference, network, clip):
    """From the waveform alone (no edge padding, so two frames fewer): the reference's top class
    among the first two (android_cry's first two are 0.01 apart), two of its top three, nearly
    the same crying logit."""
    with torch.no_grad():
        ours = network(torch.from_numpy(logmel(reference[f"{clip}_wave"], EFFICIENTAT))[None])
    ours = ours[0].numpy()
    expected = reference[f"{clip}_logits"]
    assert _top(expected, 1)[0] in _top(ours, 2)
    assert len(set(_top(ours)) & set(_top(expected))) >= 2
    assert ours[BABY_CRY] == pytest.approx(expected[BABY_CRY], abs=0.5)


def test_the_state_dict_fills_every_tensor(network, data_dir):
    """Loaded strictly: the 312 tensors of the file are this network's, none left over."""
    path = data_dir / "pretrained" / "efficientat" / "mn04_as_mAP_432.pt"
    assert len(torch.load(path, weights_only=True)) == len(network.state_dict()) == 312
    assert network.classifier[5].weight.shape == (527, 512)


def test_streaming_features_equal_batch_with_pre_emphasis():
    x = np.random.default_rng(4).normal(0, 0.1, 50_000).astype(np.float32)
    stream = StreamingLogMel(EFFICIENTAT)
    parts = [stream.push(x[i : i + 777]) for i in range(0, len(x), 777)]
    np.testing.assert_allclose(np.concatenate(parts, axis=1), logmel(x, EFFICIENTAT), atol=1e-5)
    assert EFFICIENTAT.frames_in(len(x)) == 1 + (len(x) - 801) // 320


def test_patches_are_cut_as_the_agent_cuts_them():
    mel = np.random.default_rng(1).normal(size=(128, 698)).astype(np.float32)
    cut = patches(mel)
    assert cut.shape == (12, 128, PATCH_FRAMES)
    np.testing.assert_array_equal(cut[3], mel[:, 3 * PATCH_HOP_FRAMES : 3 * PATCH_HOP_FRAMES + 100])


@pytest.fixture(scope="module")
def streaming_model(tmp_path_factory: pytest.TempPathFactory, network: MobileNetAT) -> Path:
    out = tmp_path_factory.mktemp("mn04") / "cry-mn04.onnx"
    info = streaming_info(
        EFFICIENTAT, Patches(PATCH_FRAMES, PATCH_HOP_FRAMES), 0.3, "mn04-test", {}
    )
    write_streaming_onnx(network, info, out)
    return out


def test_agent_runs_the_32_khz_file_on_16_khz_recordings(streaming_model, network, data_dir):
    """A 16 kHz recording is resampled to the file's 32 kHz; every streamed score equals the
    whole window's in PyTorch, and the crying scores above the threshold."""
    model = CryModel(streaming_model)
    assert model.info.features == EFFICIENTAT and model.info.window_patches == 12
    cry = sorted((data_dir / "independent" / "cry").iterdir())[0]
    source = FileSource(cry, model.info.features.sample_rate, realtime=False)
    audio = np.concatenate(list(source.blocks()))
    pipeline = Pipeline(model, DetectionConfig(gate_dbfs=-100.0, hop_seconds=0.5))
    results = list(pipeline.run(audio[i : i + 5000] for i in range(0, len(audio), 5000)))
    assert results
    mel = logmel(audio, EFFICIENTAT)
    window = PATCH_FRAMES + 11 * PATCH_HOP_FRAMES
    for result in results[:: max(1, len(results) // 4)]:
        n = 1 + (EFFICIENTAT.frames_in(round(result.t * 32000)) - PATCH_FRAMES) // 50
        start = max(0, n - 12) * PATCH_HOP_FRAMES
        with torch.no_grad():
            cut = torch.from_numpy(patches(mel[:, start : start + window]))
            expected = torch.sigmoid(network.patch_logit(cut).max()).item()
        assert result.prob == pytest.approx(expected, abs=1e-4)
    assert max(r.prob for r in results) > model.info.threshold


def test_zero_shot_export_names_the_tagger_and_its_front_end(tmp_path, data_dir):
    """``export --arch mn04 --zero-shot`` needs no run: the file carries EfficientAT's front end,
    its licence, a threshold from the validation negatives, and passed the parity check."""
    runs = tmp_path / "runs"
    main(["--runs", str(runs), "prepare", "--data", str(data_dir), "--limit", "2"])
    main(["--runs", str(runs), "--arch", "mn04", "export", "--zero-shot", "--pool-top", "2"])
    model = CryModel(runs / "mn04" / "cry-mn04.onnx")
    assert model.info.features == EFFICIENTAT
    assert model.info.patches == Patches(PATCH_FRAMES, PATCH_HOP_FRAMES)
    details = model.info.details
    assert details["arch"] == "mn04" and "MIT" in details["run"]["pretrained"]
    assert details["run"]["epochs"] == 0 and details["pool_top"] == 2
    assert details["run"]["recipe"] == "zero-shot"
    assert 0.5 <= model.info.threshold <= 0.99
    with pytest.raises(SystemExit, match="export: no pretrained tagger 'cnn' to take zero-shot"):
        main(["--runs", str(runs), "export", "--zero-shot"])

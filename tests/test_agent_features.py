import numpy as np
import pytest

from cry_mqtt.features import FeatureParams, StreamingLogMel, dbfs, logmel, mel_filterbank

PARAMS = FeatureParams()


def _signal(seconds: float = 7.5, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * PARAMS.sample_rate)) / PARAMS.sample_rate
    tone = 0.2 * np.sin(2 * np.pi * 440 * t) * (1 + np.sin(2 * np.pi * 0.5 * t))
    return (tone + 0.05 * rng.standard_normal(len(t))).astype(np.float32)


def test_shape_of_a_seven_second_window():
    out = logmel(np.zeros(7 * 16000, dtype=np.float32), PARAMS)
    assert out.shape == (128, 215)
    assert out.dtype == np.float32
    assert PARAMS.frames_in(7 * 16000) == 215
    assert PARAMS.samples_for(215) == 111616


@pytest.mark.parametrize("chunk", [1, 100, 511, 512, 2048, 5000, 16000])
def test_streaming_equals_batch(chunk):
    x = _signal()
    stream = StreamingLogMel(PARAMS)
    pieces = [stream.push(x[i : i + chunk]) for i in range(0, len(x), chunk)]
    streamed = np.concatenate(pieces, axis=1)
    whole = logmel(x, PARAMS)
    assert streamed.shape == whole.shape
    assert np.abs(streamed - whole).max() < 0.01


def test_streaming_with_random_chunks_over_a_minute():
    x = _signal(60.0, seed=3)
    rng = np.random.default_rng(4)
    stream = StreamingLogMel(PARAMS)
    pieces, i = [], 0
    while i < len(x):
        n = int(rng.integers(1, 9000))
        pieces.append(stream.push(x[i : i + n]))
        i += n
    streamed = np.concatenate(pieces, axis=1)
    assert np.abs(streamed - logmel(x, PARAMS)).max() < 0.01


def test_agrees_with_librosa():
    librosa = pytest.importorskip("librosa")
    x = _signal()
    ours = logmel(x, PARAMS)
    power = librosa.feature.melspectrogram(
        y=x, sr=16000, n_fft=2048, hop_length=512, n_mels=128, center=False, power=2.0
    )
    theirs = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    assert np.abs(ours - theirs).max() < 0.01
    filters = librosa.filters.mel(sr=16000, n_fft=2048, n_mels=128)
    assert np.allclose(mel_filterbank(PARAMS), filters, atol=1e-6)


def test_dbfs():
    t = np.arange(16000) / 16000
    assert dbfs(np.sin(2 * np.pi * 1000 * t).astype(np.float32)) == pytest.approx(-3.01, abs=0.01)
    assert dbfs(np.zeros(100, dtype=np.float32)) == -100.0
    assert dbfs(np.zeros(0, dtype=np.float32)) == -100.0


def test_params_round_trip_and_reject_unknown_keys():
    assert FeatureParams.from_dict(PARAMS.to_dict()) == PARAMS
    with pytest.raises(ValueError, match="unknown"):
        FeatureParams.from_dict({**PARAMS.to_dict(), "center": True})
    with pytest.raises(ValueError):
        FeatureParams(fmax=9000.0)

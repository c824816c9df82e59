"""Ingestion of each supported layout."""

from __future__ import annotations

import copy
from dataclasses import replace
from pathlib import Path

import numpy as np
from training_fixtures import write_tone

from cry_mqtt.features import logmel
from training.data.audio import PARAMS, WINDOW_SAMPLES, load_audio, phone_codec, trim_silence
from training.data.cache import Cache, build_cache
from training.data.items import (
    NO_CRYING,
    audited_no_crying,
    donateacry_items,
    esc50_items,
    folder_items,
    manifest_items,
)
from training.data.sources import discover

ESC50_CSV = """filename,fold,target,category,esc10,src_file,take
1-100-A-20.wav,1,20,crying_baby,True,100,A
1-100-B-20.wav,1,20,crying_baby,True,100,B
1-200-A-0.wav,1,0,dog,True,200,A
1-200-B-0.wav,1,0,dog,True,200,B
2-300-A-40.wav,2,40,helicopter,False,300,A
"""


def make_esc50(root: Path) -> Path:
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text(ESC50_CSV)
    for line in ESC50_CSV.splitlines()[1:]:
        write_tone(root / "audio" / line.split(",")[0], 5.0)
    return root


def test_esc50_layout_keeps_crying_baby_out_of_negatives(tmp_path: Path) -> None:
    items = esc50_items(make_esc50(tmp_path / "ESC-50"))
    assert len(items) == 5
    negatives = {i.category for i in items if i.label == 0}
    positives = {i.category for i in items if i.label == 1}
    assert negatives == {"dog", "helicopter"}
    assert positives == {"crying_baby"}
    # clips cut from one freesound recording are one group
    assert len({i.group for i in items if i.category == "dog"}) == 1
    assert all(Path(i.path).is_file() for i in items)


def test_manifest_paths_relative_to_data_root(tmp_path: Path) -> None:
    write_tone(tmp_path / "negatives" / "fan" / "a.flac", 1.0, rate=16000)
    manifest = tmp_path / "negatives" / "manifest.csv"
    manifest.write_text("path,source,category\nnegatives/fan/a.flac,somewhere,household\n")
    (item,) = manifest_items(manifest, 0)
    assert Path(item.path).is_file()
    assert (item.label, item.source, item.category) == (0, "somewhere", "household")


def test_folder_layout_uses_subfolder_as_category(tmp_path: Path) -> None:
    write_tone(tmp_path / "mine" / "tv" / "a.wav", 1.0)
    write_tone(tmp_path / "mine" / "b.wav", 1.0)
    (tmp_path / "mine" / "notes.txt").write_text("not audio")
    items = folder_items(tmp_path / "mine", 0)
    assert sorted(i.category for i in items) == ["mine", "tv"]
    assert len({i.group for i in items}) == 2


def test_donateacry_names_give_source_and_case_insensitive_uuid(tmp_path: Path) -> None:
    uuid = "021DCB9F-2FC6-4247-859F-E58EDB682B79"
    ios = tmp_path / "donateacry-ios-upload-bucket"
    android = tmp_path / "donateacry-android-upload-bucket"
    ios.mkdir()
    android.mkdir()
    silent = f"{uuid}-1429977251-1.0-f-26-dk.caf"
    (ios / silent).touch()
    (android / f"{uuid.lower()}-1430218353124-1.7-f-26-hu.3gp").touch()
    audit = tmp_path / "audit.csv"
    audit.write_text(f"file,note\n{silent},room noise only\n")
    items = donateacry_items(tmp_path, audit)
    assert sorted(i.source for i in items) == ["android-8k", "ios-16k"]
    assert {i.group for i in items} == {f"donateacry:{uuid.lower()}"}
    assert all(i.label == 1 for i in items)
    assert {i.source: i.category for i in items} == {"ios-16k": NO_CRYING, "android-8k": "crying"}


def test_every_audited_upload_is_in_the_corpus(data_dir: Path) -> None:
    names = {p.name for p in (data_dir / "donateacry-corpus").rglob("*") if p.is_file()}
    listed = audited_no_crying()
    assert listed and listed <= names
    items = donateacry_items(data_dir / "donateacry-corpus")
    assert sum(i.category == NO_CRYING for i in items) == len(listed)


def test_load_audio_resamples_to_16k_mono(tmp_path: Path) -> None:
    samples = load_audio(write_tone(tmp_path / "a.wav", 2.0, rate=44100))
    assert samples.dtype == np.float32
    assert abs(len(samples) - 32000) < 200
    assert 0.25 < np.abs(samples).max() < 0.35


def test_real_donateacry_containers_decode(data_dir: Path) -> None:
    for pattern in ("*android*/*.3gp", "*ios*/*.caf"):
        path = sorted((data_dir / "donateacry-corpus").glob(pattern))[0]
        samples = load_audio(path)
        assert 5 * 16000 < len(samples) < 10 * 16000
        assert np.abs(samples).max() > 0.01


def test_cache_round_trip(tmp_path: Path) -> None:
    root = make_esc50(tmp_path / "ESC-50")
    items = discover(None, esc50=root)
    for i, item in enumerate(items):
        item.split = "valid" if i == 0 else "train"
    summary = build_cache(items, tmp_path / "cache")
    cache = Cache(tmp_path / "cache")
    assert len(cache.items) == 5
    assert summary["splits"]["train"]["negatives"] == 3
    assert all(abs(len(cache.samples(i)) - 80000) < 200 for i in cache.items)
    item = cache.items[-1]
    assert np.array_equal(cache.samples(item), trim_silence(load_audio(Path(item.path))))
    assert len(cache.split("train", 1)) == 1


def test_workers_write_the_same_cache_in_the_same_order(tmp_path: Path) -> None:
    items = discover(None, esc50=make_esc50(tmp_path / "ESC-50"))
    for item in items:
        item.split = "train"
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"not audio")
    items.insert(2, replace(items[0], path=str(broken)))
    alone = build_cache(copy.deepcopy(items), tmp_path / "alone")
    shared = build_cache(copy.deepcopy(items), tmp_path / "shared", workers=2)
    assert shared == alone and alone["skipped"][0].startswith(f"{broken}: ")
    for name in ("audio.npy", "items.json"):
        assert (tmp_path / "shared" / name).read_bytes() == (tmp_path / "alone" / name).read_bytes()


def test_phone_codec_is_8k_amr_of_the_same_audio() -> None:
    t = np.arange(WINDOW_SAMPLES) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 500 * t)).astype(np.float32)
    hiss = np.random.default_rng(0).normal(0, 0.05, WINDOW_SAMPLES).astype(np.float32)
    coded = phone_codec(tone + hiss)
    assert coded.shape == tone.shape
    mel_in, mel_out = logmel(tone + hiss, PARAMS), logmel(coded, PARAMS)
    assert mel_out[-20:].mean() < mel_in[-20:].mean() - 30  # nothing left above 4 kHz
    assert abs(mel_out[20:30].mean() - mel_in[20:30].mean()) < 6  # the tone survives


def test_cache_keeps_a_phone_codec_twin(tmp_path: Path) -> None:
    items = discover(None, esc50=make_esc50(tmp_path / "ESC-50"))
    for item in items:
        item.split = "train"
    build_cache(items, tmp_path / "cache")
    cache = Cache(tmp_path / "cache")
    item = cache.items[0]
    clean, phone = cache.samples(item), cache.samples(item, phone=True)
    assert clean.shape == phone.shape
    assert not np.allclose(clean, phone)


def test_trim_silence_drops_dead_lead_in_and_tail_only() -> None:
    t = np.arange(16000) / 16000
    tone = (0.1 * np.sin(2 * np.pi * 440 * t)).astype(np.float32)
    quiet = np.full(4000, 1e-3, np.float32)  # -60 dBFS: room noise, kept
    padded = np.concatenate([np.zeros(5000, np.float32), quiet, tone, np.zeros(3000, np.float32)])
    trimmed = trim_silence(padded)
    assert len(quiet) + len(tone) <= len(trimmed) <= len(quiet) + len(tone) + 2 * 512
    assert np.sqrt(np.mean(trimmed[:512] ** 2)) > 1e-4 and np.abs(trimmed[-512:]).max() > 0.01
    assert len(trim_silence(np.zeros(8000, np.float32))) == 0

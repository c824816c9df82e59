"""Training sources beyond the corpus: the negatives-extra manifest and Debian packages."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import av
import numpy as np
import pytest
from training_fixtures import write_tone

from training.data.audio import PARAMS, load_audio
from training.data.cache import Cache, build_cache
from training.data.debian import debian_items, fetch, file_license, parse_dep5
from training.data.items import folder_items, manifest_items
from training.data.sources import discover

# hedgewars-data's copyright file, shortened: its globs name the source tree, not where the
# package installs the files, and the broad `hedgewars/*` comes after the narrower Sounds ones.
HEDGEWARS_COPYRIGHT = """\
Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Source: https://hedgewars.org/

Files: *
Copyright: 2004-2015 Andrey Korotaev <unC0Rr@gmail.com>
License: GPL-2

Files: share/hedgewars/Data/Sounds/*
Copyright: 2004-2012 Andrey Korotaev
License: GFDL-1.3

Files: share/hedgewars/Data/Sounds/Droplet*.ogg
Copyright: 2009 Tom Haynes
License: CC-BY-SA-3.0

Files: hedgewars/*
 misc/*
Copyright: 2004-2015 Andrey Korotaev
License: GPL-2

License: GPL-2
 On Debian systems, the full text is in /usr/share/common-licenses/GPL-2.
"""


def write_ogg(path: Path, seconds: float = 1.0) -> Path:
    write_tone(path, seconds, rate=16000)
    return path


def test_dep5_licence_is_the_most_specific_match_of_the_installed_path() -> None:
    dep5 = parse_dep5(HEDGEWARS_COPYRIGHT)
    assert dep5 is not None and dep5[0] == ""
    root = "usr/share/games/hedgewars/Data"
    assert file_license(dep5, f"{root}/Sounds/voices/Default/Laugh.ogg") == "GFDL-1.3"
    assert file_license(dep5, f"{root}/Sounds/Droplet1.ogg") == "CC-BY-SA-3.0"
    assert file_license(dep5, f"{root}/Music/main.ogg") == "GPL-2"
    assert file_license(dep5, "usr/share/misc/x.ogg") == "GPL-2"
    assert parse_dep5("This package was debianized by someone.\n\nGPL-2") is None


def test_package_folder_gives_categories_groups_and_licences(tmp_path: Path) -> None:
    root = tmp_path / "unpacked"  # any folder: the package is named by its usr/share/doc/NAME
    sounds = root / "usr/share/games/hedgewars/Data/Sounds"
    for voice in ("Default", "Pirate"):
        for name in ("Laugh", "PoisonCough", "Hello", "Ouch"):
            write_ogg(sounds / "voices" / voice / f"{name}.ogg")
    write_ogg(sounds / "Droplet1.ogg")
    write_ogg(root / "usr/share/games/hedgewars/Data/Music/main.ogg")
    (sounds / "README.txt").write_text("not audio")
    doc = root / "usr/share/doc/hedgewars-data"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(HEDGEWARS_COPYRIGHT)

    items = debian_items(root)
    by_name = {Path(i.path).relative_to(root).as_posix(): i for i in items}
    assert len(items) == 10
    voice = by_name["usr/share/games/hedgewars/Data/Sounds/voices/Pirate/Laugh.ogg"]
    assert (voice.label, voice.category, voice.license) == (0, "laughter", "GFDL-1.3")
    assert voice.source == "debian:hedgewars-data"
    cough = by_name["usr/share/games/hedgewars/Data/Sounds/voices/Default/PoisonCough.ogg"]
    assert cough.category == "coughs-sneezes"
    # one group per voice, across its categories; one per file elsewhere
    assert len({i.group for i in items if "/voices/" in i.path}) == 2
    assert {i.category for i in items if "/voices/" in i.path} == {
        "laughter",
        "coughs-sneezes",
        "game-voices",
    }
    droplet = by_name["usr/share/games/hedgewars/Data/Sounds/Droplet1.ogg"]
    assert (droplet.category, droplet.license) == ("effects", "CC-BY-SA-3.0")
    music = by_name["usr/share/games/hedgewars/Data/Music/main.ogg"]
    assert (music.category, music.license) == ("music", "GPL-2")


def write_g722(path: Path, samples: np.ndarray) -> Path:
    """16-kHz G.722, raw, as asterisk-core-sounds-en-g722 ships it."""
    frame = av.AudioFrame.from_ndarray(
        (samples * 32767).astype(np.int16)[None], format="s16", layout="mono"
    )
    frame.sample_rate = 16000
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w", format="g722") as out:
        stream = out.add_stream("g722", rate=16000, layout="mono")
        for packet in [*stream.encode(frame), *stream.encode(None)]:
            out.mux(packet)
    return path


def test_asterisk_twins_share_a_group_and_g722_keeps_the_wide_band(tmp_path: Path) -> None:
    t = np.arange(32000) / 16000
    tone = (0.3 * np.sin(2 * np.pi * 6000 * t)).astype(np.float32)  # above the 8-kHz band
    voice = "usr/share/asterisk/sounds/en_US_f_Allison"
    # as in the packages: the globs name the source tarballs, which match no installed path
    copyright = (
        "Format: http://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n"
        "Upstream-Name: asterisk-core-sounds\n\nFiles: *\nCopyright: Digium\n"
        "License: CC-BY-SA-3.0\n\nFiles: ru-*\nCopyright: someone\nLicense: CC-BY-3.0\n"
    )
    for name, suffix in (
        ("asterisk-core-sounds-en-wav", "wav"),
        ("asterisk-core-sounds-en-g722", "g722"),
    ):
        doc = tmp_path / name / "usr/share/doc" / name
        doc.mkdir(parents=True)
        (doc / "copyright").write_text(copyright)
        if suffix == "wav":
            write_tone(tmp_path / name / voice / "digits/1.wav", 1.0, rate=8000)
            write_tone(tmp_path / name / voice / "silence/1.wav", 1.0, rate=8000)
        else:
            write_g722(tmp_path / name / voice / "digits/1.g722", tone)
    items = discover(
        None,
        debian=[
            tmp_path / "asterisk-core-sounds-en-wav",
            tmp_path / "asterisk-core-sounds-en-g722",
        ],
    )
    assert [i.category for i in items] == ["telephone-speech-8k", "telephone-speech-16k"]
    assert len({i.group for i in items}) == 1  # the same recordings: never on both sides
    assert {i.license for i in items} == {"CC-BY-SA-3.0"}
    wide = load_audio(Path(items[1].path))
    assert abs(len(wide) - len(tone)) < 200
    spectrum = np.abs(np.fft.rfft(wide))
    assert np.fft.rfftfreq(len(wide), 1 / 16000)[spectrum.argmax()] == pytest.approx(6000, abs=20)


def test_plain_copyright_gives_the_licence_its_sentence_states(tmp_path: Path) -> None:
    root = tmp_path / "asterisk-moh-opsound-wav"
    write_tone(root / "usr/share/asterisk/moh/song.wav", 1.0, rate=8000)
    doc = root / "usr/share/doc/asterisk-moh-opsound-wav"
    doc.mkdir(parents=True)
    (doc / "copyright").write_text(
        "These files are distributed under the Creative Commons Attribution-ShareAlike\n"
        "3.0 license through explicit permission from their authors.\n"
    )
    (item,) = debian_items(root)
    assert (item.category, item.license, item.group) == (
        "hold-music",
        "CC-BY-SA-3.0",
        "debian:asterisk-moh-opsound-wav/usr/share/asterisk/moh/song.wav",
    )


def test_a_real_package_from_apt(tmp_path: Path) -> None:
    if not (shutil.which("apt-get") and shutil.which("dpkg")):
        pytest.skip("needs apt-get and dpkg (Debian or Ubuntu)")
    try:
        (root,) = fetch(tmp_path, ["tuxpaint-data"])
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"apt-get download tuxpaint-data failed here: {exc}")
    items = debian_items(root)
    assert len(items) > 20
    assert {i.license for i in items} == {"GPL-2+"}
    (giggle,) = [i for i in items if i.category == "laughter"]
    assert Path(giggle.path).name == "giggle.wav"
    assert np.abs(load_audio(Path(giggle.path))).max() > 0.05


def test_negatives_extra_is_grouped_by_speaker(data_dir: Path) -> None:
    manifest = data_dir / "negatives-extra" / "manifest.csv"
    items = manifest_items(manifest, 0, by_speaker=True)
    assert {i.category for i in items} == {"children-speech", "adult-speech", "spoken-digits-8k"}
    assert all(Path(i.path).is_file() and i.license for i in items)
    groups = {i.group for i in items if "so762_spk0003_" in i.path}
    assert groups == {"speaker:so762_spk0003"}
    digits = [i for i in items if i.category == "spoken-digits-8k"]
    assert len({i.group for i in digits}) == 6  # six speakers
    assert {i.license for i in digits} == {"CC BY-SA 4.0"}
    picked = [i for i in discover(data_dir) if i.source == digits[0].source]
    assert {i.group for i in picked} == {i.group for i in digits}
    samples = load_audio(Path(digits[0].path))
    assert 50 * PARAMS.sample_rate < len(samples) < 70 * PARAMS.sample_rate
    assert np.abs(samples).max() > 0.05


def test_summary_lists_every_source_with_its_licence(data_dir: Path, tmp_path: Path) -> None:
    speech = manifest_items(data_dir / "negatives-extra" / "manifest.csv", 0, by_speaker=True)
    write_tone(tmp_path / "mine" / "a.wav", 2.0)
    items = [speech[0], *folder_items(tmp_path / "mine", 0)]
    for item in items:
        item.split = "train"
    build_cache(items, tmp_path / "cache")
    train = Cache(tmp_path / "cache").summary["splits"]["train"]
    rows = {(r["category"], r["source"], r["license"]): r for r in train["sources"]}
    row = rows[("children-speech", speech[0].source, speech[0].license)]
    assert row["files"] == 1 and row["minutes"] == pytest.approx(1.0, abs=0.1)
    assert rows[("mine", "mine", "unstated")]["files"] == 1
    assert train["minutes_by_category"]["children-speech"] == row["minutes"]

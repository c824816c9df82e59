"""Sung lullabies as negatives: recorded voices (the General MIDI sound font's choir and vocal
"ooh" samples) singing lullaby melodies, rendered with FluidSynth.

No real singing with a usable licence can be had here (``../shared/docs/hard-negatives.md``), and
sung lullabies are what the student still mistakes for crying. This is the stand-in that page
names: well-known public-domain lullabies and random lullaby-like tunes (slow, stepwise, in a
major key), each sung at a random key, tempo, voice, vibrato and loudness contour, sometimes over
a quiet accompaniment. One melody is one split group, so the validation side holds tunes that
training never heard. :func:`render` writes the WAV files and a manifest that ``prepare
--negatives`` reads.
"""

from __future__ import annotations

import csv
import math
import random
import shutil
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path

from training import RecipeError

SOUND_FONT = Path("/usr/share/sounds/sf2/FluidR3_GM.sf2")
"""Debian's ``fluid-soundfont-gm`` (MIT)."""
LICENSE = "MIT (fluid-soundfont-gm samples); melodies public domain"
SAMPLE_RATE = 16000
CATEGORY = "sung lullaby"

VOICES = {52: "choir aahs", 53: "voice oohs", 54: "synth voice"}
"""General MIDI programs whose samples are recorded voices."""
ACCOMPANIMENT = (0, 8, 10, 24, 46)
"""Piano, celesta, music box, nylon guitar, harp: what lullabies are sung over."""

# (semitones above the tonic, beats); None is a rest. Public-domain tunes, simplified.
_ = None
TUNES: dict[str, list[tuple[int | None, float]]] = {
    "twinkle-twinkle": [(0, 1), (0, 1), (7, 1), (7, 1), (9, 1), (9, 1), (7, 2),
                        (5, 1), (5, 1), (4, 1), (4, 1), (2, 1), (2, 1), (0, 2)],
    "brahms-lullaby": [(4, 0.5), (4, 0.5), (7, 2), (4, 0.5), (4, 0.5), (7, 2), (4, 0.5), (7, 0.5),
                       (12, 1), (11, 1.5), (9, 0.5), (9, 1), (7, 1), (2, 0.5), (4, 0.5), (5, 1),
                       (2, 1), (2, 0.5), (4, 0.5), (5, 2)],
    "rock-a-bye-baby": [(4, 1.5), (7, 0.5), (9, 1), (7, 2), (4, 1.5), (7, 0.5), (9, 1), (7, 2),
                        (4, 1), (7, 1), (12, 1), (11, 3)],
    "hush-little-baby": [(7, 0.5), (4, 1), (4, 0.5), (4, 0.5), (5, 0.5), (4, 1), (2, 1),
                         (2, 0.5), (2, 1), (2, 0.5), (2, 0.5), (4, 0.5), (2, 1), (0, 2)],
    "frere-jacques": [(0, 1), (2, 1), (4, 1), (0, 1), (0, 1), (2, 1), (4, 1), (0, 1),
                      (4, 1), (5, 1), (7, 2), (4, 1), (5, 1), (7, 2)],
    "mary-had-a-little-lamb": [(4, 1), (2, 1), (0, 1), (2, 1), (4, 1), (4, 1), (4, 2),
                               (2, 1), (2, 1), (2, 2), (4, 1), (7, 1), (7, 2)],
    "row-your-boat": [(0, 1.5), (0, 1.5), (0, 1), (2, 0.5), (4, 1.5), (4, 1), (2, 0.5),
                      (4, 1), (5, 0.5), (7, 3)],
    "au-clair-de-la-lune": [(0, 1), (0, 1), (0, 1), (2, 1), (4, 2), (2, 2), (0, 1), (4, 1),
                            (2, 1), (2, 1), (0, 4)],
    "schlaf-kindlein-schlaf": [(7, 1.5), (4, 0.5), (7, 2), (5, 1), (2, 1), (5, 2), (4, 1),
                               (2, 1), (0, 1), (4, 1), (2, 4)],
    "all-through-the-night": [(0, 1.5), (-1, 0.5), (-3, 1), (0, 1), (2, 1.5), (0, 0.5),
                              (-1, 1), (-3, 1), (-5, 1.5), (-3, 0.5), (-1, 1), (0, 1), (2, 4)],
    "lavenders-blue": [(0, 1), (0, 1), (0, 1), (-5, 1), (0, 1), (2, 1), (4, 1), (7, 1),
                       (5, 2), (4, 1), (2, 3)],
    "golden-slumbers": [(7, 1), (9, 1), (7, 1), (5, 1), (4, 2), (2, 1), (0, 1), (2, 1),
                        (4, 1), (2, 2), (0, 4)],
    "london-bridge": [(7, 1.5), (9, 0.5), (7, 1), (5, 1), (4, 1), (5, 1), (7, 2), (2, 1),
                      (4, 1), (5, 2), (4, 1), (5, 1), (7, 2)],
    "ode-to-joy": [(4, 1), (4, 1), (5, 1), (7, 1), (7, 1), (5, 1), (4, 1), (2, 1), (0, 1),
                   (0, 1), (2, 1), (4, 1), (4, 1.5), (2, 0.5), (2, 2)],
    "silent-night": [(7, 1.5), (9, 0.5), (7, 1), (4, 3), (7, 1.5), (9, 0.5), (7, 1), (4, 3),
                     (14, 2), (14, 1), (11, 3), (12, 2), (12, 1), (7, 3)],
    "amazing-grace": [(0, 1), (5, 2), (9, 0.5), (5, 0.5), (9, 2), (7, 1), (5, 2), (2, 1),
                      (0, 2), (_, 1), (0, 1), (5, 2), (9, 0.5), (5, 0.5), (9, 2), (7, 1), (12, 3)],
}  # fmt: skip
RANDOM_TUNES = 24
"""Lullaby-like tunes drawn at random, beside the known ones: each its own split group."""
MAJOR = (0, 2, 4, 5, 7, 9, 11, 12, 14)


@dataclass(frozen=True)
class Note:
    """A sung note: MIDI pitch, start and length in seconds, loudness 1-127."""

    pitch: int
    start: float
    length: float
    velocity: int


def random_tune(rng: random.Random, bars: int = 4) -> list[tuple[int | None, float]]:
    """A lullaby-like tune: mostly steps in a major scale, long notes at the phrase ends."""
    degree = rng.choice((0, 2, 4))
    tune: list[tuple[int | None, float]] = []
    for bar in range(bars):
        beats = 0.0
        while beats < 3:
            length = rng.choice((0.5, 1, 1, 1, 1.5, 2))
            length = min(length, 3 - beats)
            tune.append((MAJOR[degree], length))
            beats += length
            degree = min(max(degree + rng.choice((-2, -1, -1, 0, 1, 1, 2)), 0), len(MAJOR) - 1)
        if bar % 2 == 1:  # a phrase ends on the nearest note of the tonic chord, held
            degree = min((0, 2, 4, 7), key=lambda d: abs(d - degree))
            tune.append((MAJOR[degree], 3))
    return tune


def sing(tune: list[tuple[int | None, float]], rng: random.Random, seconds: float) -> list[Note]:
    """The tune repeated for about ``seconds`` at a random key, tempo and phrasing."""
    tonic = rng.choice((48, 50, 53, 55, 57, 60, 62, 64, 65))  # a man's to a woman's range
    beat = 60 / rng.uniform(50, 96)
    legato = rng.uniform(0.85, 1.02)
    loudness = rng.randint(55, 105)
    notes, start = [], 0.0
    while start < seconds:
        for interval, beats in tune:
            length = beats * beat * rng.uniform(0.95, 1.05)
            if interval is not None:
                velocity = min(127, max(20, loudness + rng.randint(-12, 12)))
                notes.append(Note(tonic + interval, start, length * legato, velocity))
            start += length
        start += rng.choice((0, beat, 2 * beat))  # a breath between verses
    return notes


def _varlen(value: int) -> bytes:
    out = [value & 0x7F]
    while value := value >> 7:
        out.append(0x80 | (value & 0x7F))
    return bytes(reversed(out))


def midi_file(tracks: list[tuple[int, list[Note]]], vibrato: tuple[float, float]) -> bytes:
    """A Standard MIDI File (format 0, 1 ms ticks) playing each ``(program, notes)`` on its own
    channel; ``vibrato`` (Hz, semitones) bends channel 0, the voice."""
    events: list[tuple[float, bytes]] = []
    for channel, (program, notes) in enumerate(tracks):
        events.append((0.0, bytes((0xC0 | channel, program))))
        for note in notes:
            events.append((note.start, bytes((0x90 | channel, note.pitch, note.velocity))))
            events.append((note.start + note.length, bytes((0x80 | channel, note.pitch, 0))))
    rate, depth = vibrato
    if depth:
        end = max(n.start + n.length for n in tracks[0][1])
        steps = int(end / 0.02)
        for step in range(steps):
            t = step * 0.02
            bend = 8192 + int(8191 * depth / 2 * math.sin(2 * math.pi * rate * t))  # range +-2
            events.append((t, bytes((0xE0, bend & 0x7F, bend >> 7))))
    events.sort(key=lambda e: (e[0], e[1][0] & 0xF0 != 0xC0))  # programs before their notes
    body, previous = bytearray(), 0
    for time, message in events:
        tick = round(time * 1000)
        body += _varlen(tick - previous) + message
        previous = tick
    body += b"\x00\xff\x2f\x00"
    # 500,000 us a quarter note (the default tempo) at 500 ticks a quarter: one tick a ms.
    header = b"MThd" + struct.pack(">IHHH", 6, 0, 1, 500)
    return header + b"MTrk" + struct.pack(">I", len(body)) + bytes(body)


def all_tunes(seed: int = 0) -> dict[str, list[tuple[int | None, float]]]:
    """The known tunes and :data:`RANDOM_TUNES` random ones (the same for the same seed)."""
    rng = random.Random(seed)
    return TUNES | {f"random-{i:02d}": random_tune(rng) for i in range(RANDOM_TUNES)}


def fluidsynth() -> str:
    """The FluidSynth program, or a :class:`RecipeError` saying how to install it."""
    program = shutil.which("fluidsynth")
    if program is None or not SOUND_FONT.is_file():
        raise RecipeError(
            "singing needs FluidSynth and the GM sound font: apt-get install fluidsynth "
            "fluid-soundfont-gm"
        )
    return program


def perform(
    wav: Path, tracks: list[tuple[int, list[Note]]], vibrato: tuple[float, float], gain: float
) -> None:
    """Render ``tracks`` (see :func:`midi_file`) to a 16-kHz WAV file."""
    midi = wav.with_suffix(".mid")
    midi.write_bytes(midi_file(tracks, vibrato))
    try:
        subprocess.run(
            [fluidsynth(), "-ni", "-q", "-g", f"{gain:.2f}", "-r", str(SAMPLE_RATE),
             "-F", str(wav), str(SOUND_FONT), str(midi)],
            check=True, capture_output=True,
        )  # fmt: skip
    finally:
        midi.unlink()


def render(
    dest: Path,
    tunes: dict[str, list[tuple[int | None, float]]],
    per_tune: int = 12,
    seconds: float = 25.0,
    seed: int = 0,
) -> Path:
    """Render ``per_tune`` performances of every tune into ``dest`` and write
    ``dest/manifest.csv`` (path, source, category, group, license, voice); returns the
    manifest."""
    fluidsynth()
    rng = random.Random(seed)
    dest.mkdir(parents=True, exist_ok=True)
    rows = []
    for name, tune in tunes.items():
        for take in range(per_tune):
            voice = rng.choice(sorted(VOICES))
            tracks = [(voice, sing(tune, rng, seconds))]
            if rng.random() < 0.4:
                chords = [
                    Note(n.pitch - 12, n.start, n.length, max(20, n.velocity // 3))
                    for n in tracks[0][1][::2]
                ]
                tracks.append((rng.choice(ACCOMPANIMENT), chords))
            vibrato = (rng.uniform(4.5, 6.5), rng.choice((0.0, 0.2, 0.4, 0.6)))
            wav = dest / f"{name}-{take:02d}.wav"
            perform(wav, tracks, vibrato, rng.uniform(0.3, 0.9))
            rows.append(
                {
                    "path": wav.name,
                    "source": "fluidsynth-singing",
                    "category": CATEGORY,
                    "group": f"tune:{name}",
                    "license": LICENSE,
                    "voice": VOICES[voice],
                }
            )
    manifest = dest / "manifest.csv"
    with open(manifest, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return manifest

"""Training audio from Debian packages unpacked with ``dpkg -x``: which files of each package are
used, as which category, grouped how, and the licence of each from the package's copyright file.

:data:`PACKAGES` lists the packages ``../shared/docs/more-training-data.md`` names for training
(never those kept apart for evaluation); :func:`fetch` downloads and unpacks them.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from training import RecipeError
from training.data.audio import AUDIO_SUFFIXES
from training.data.items import Item


@dataclass(frozen=True)
class Rule:
    """Files whose path (relative to the package root) matches ``pattern`` get ``category``
    (``None``: left out). A named group ``group`` in the pattern makes one split group of all the
    files where it captures the same text (one voice, one level); otherwise each file is one."""

    pattern: str
    category: str | None
    label: int = 0


ASTERISK_VOICE = r"(?P<group>asterisk/sounds/[^/]+)/"
"""One voice folder (``en_US_f_Allison``): the 8 kHz WAV and the G.722 package hold the same
recordings under the same folder name, so both land in one group."""
MUSIC = (Rule(r"", "music"),)

PACKAGES: dict[str, tuple[Rule, ...]] = {
    **{
        f"asterisk-core-sounds-{lang}-wav": (
            Rule(r"/silence/", None),
            Rule(ASTERISK_VOICE, "telephone-speech-8k"),
        )
        for lang in ("en", "fr", "es")
    },
    "asterisk-core-sounds-en-g722": (
        Rule(r"/silence/", None),
        Rule(ASTERISK_VOICE, "telephone-speech-16k"),
    ),
    "asterisk-moh-opsound-wav": (Rule(r"asterisk/moh/", "hold-music"),),
    **{
        f"fillets-ng-data-{lang}": (Rule(rf"(?P<group>fillets-ng/sound/.+/{lang})/", "dialogue"),)
        for lang in ("cs", "nl")
    },
    "fillets-ng-data": (
        Rule(r"fillets-ng/music/", "music"),
        Rule(r"(?P<group>fillets-ng/sound/.+/en)/", "dialogue"),
        Rule(r"fillets-ng/sound/", "effects"),
    ),
    "hedgewars-data": (
        Rule(r"(?P<group>Sounds/voices/[^/]+)/Laugh", "laughter"),
        Rule(r"(?P<group>Sounds/voices/[^/]+)/\w*Cough", "coughs-sneezes"),
        Rule(r"(?P<group>Sounds/voices/[^/]+)/", "game-voices"),
        Rule(r"Data/Music/", "music"),
        Rule(r"Data/Sounds/", "effects"),
    ),
    "scratch": (
        # A sound-effect baby cry: a positive of its own source, never a negative.
        Rule(r"Sounds/Human/BabyCry", "crying", label=1),
        Rule(r"Sounds/Human/Laugh", "laughter"),
        Rule(r"Sounds/Human/(Cough|Sneeze)", "coughs-sneezes"),
        Rule(r"Sounds/Human/", "human-sounds"),
        Rule(r"Sounds/Animal/", "animals"),
        Rule(r"Sounds/(Effects|Electronic)/", "effects"),
        Rule(r"Sounds/", "music"),
    ),
    "klettres-data": (Rule(r"(?P<group>klettres/[^/]+)/(alpha|syllab)/", "spoken-letters"),),
    "tuxpaint-data": (
        Rule(r"tuxpaint/sounds/giggle", "laughter"),
        Rule(r"tuxpaint/sounds/", "effects"),
    ),
    "hyperrogue-music": (
        Rule(r"hyperrogue/music/", "music"),
        Rule(r"hyperrogue/sounds/", "effects"),
    ),
    "sonic-pi-samples": (Rule(r"sonic-pi/samples/", "music"),),
    **{name: MUSIC for name in ("wesnoth-1.16-music", "singularity-music", "drascula-music")},
}

PLAIN_LICENSES: dict[str, tuple[str, str]] = {
    "asterisk-moh-opsound-wav": (
        "distributed under the Creative Commons Attribution-ShareAlike 3.0 license",
        "CC-BY-SA-3.0",
    ),
    **{
        name: ("the Free Software Foundation; version 2 dated June, 1991", "GPL-2")
        for name in ("fillets-ng-data", "fillets-ng-data-cs", "fillets-ng-data-nl")
    },
    "singularity-music": ("CREATIVE COMMONS PUBLIC LICENSE", "CC-BY-SA-3.0"),
    "wesnoth-1.16-music": (
        "GNU General Public License version 2 or at your option any later version",
        "GPL-2+",
    ),
}
"""For a copyright file that is not DEP-5: the sentence in it that states the licence of the
package's data, and that licence's short name (``singularity-music``'s is the CC BY-SA 3.0 legal
code, whose License Elements are Attribution, ShareAlike)."""
UNKNOWN = "unknown (see the package's copyright file)"


@dataclass(frozen=True)
class Stanza:
    """One ``Files:`` paragraph: its globs and its licence's short name."""

    globs: tuple[str, ...]
    license: str


def parse_dep5(text: str) -> tuple[str, list[Stanza]] | None:
    """The header's licence (``""`` if none) and the ``Files:`` stanzas of a machine-readable
    (DEP-5) copyright file, in order; ``None`` if ``text`` is not one."""
    paragraphs = [p for p in re.split(r"\n[ \t]*\n", text.strip()) if p.strip()]
    if not paragraphs or not paragraphs[0].startswith("Format:"):
        return None
    header, stanzas = "", []
    for i, paragraph in enumerate(paragraphs):
        fields = dict(re.findall(r"^([\w-]+):[ \t]*(.*(?:\n[ \t]+.*)*)", paragraph, re.M))
        license = fields.get("License", "").split("\n")[0].strip()
        if i == 0:
            header = license
        elif "Files" in fields and license:
            stanzas.append(Stanza(tuple(fields["Files"].split()), license))
    return header, stanzas


def _glob_score(glob: str, path: str) -> int | None:
    """How specific ``glob`` is where it matches ``path`` (its literal characters), else None.

    DEP-5 globs name paths in the source tree (``share/hedgewars/Data/Sounds/*``), which a package
    installs elsewhere (``usr/share/games/hedgewars/Data/Sounds/...``): a glob matches where it
    matches the end of the installed path at a folder boundary, also with its leading literal
    folders dropped, as long as one folder is left. ``*`` matches ``/`` too, as DEP-5 says.
    """
    parts = glob.strip("/").split("/")
    for start in range(len(parts)):
        if start and (len(parts) - start < 2 or re.search(r"[*?]", parts[start - 1])):
            break
        tail = "/".join(parts[start:])
        regex = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in tail)
        if re.search(rf"(^|/){regex}$", path):
            return len(re.sub(r"[*?]", "", tail))
    return None


def file_license(dep5: tuple[str, list[Stanza]], path: str) -> str:
    """The licence DEP-5 gives the installed file ``path``: the stanza whose glob matches it most
    specifically (the later on a tie, as in DEP-5), else the header's."""
    header, stanzas = dep5
    best, license = -1, header
    for stanza in stanzas:
        for glob in stanza.globs:
            score = _glob_score(glob, path)
            if score is not None and score >= best:
                best, license = score, stanza.license
    return license or UNKNOWN


def package_name(root: Path) -> str:
    """The package unpacked in ``root``: its folder name, or the one of :data:`PACKAGES` that
    has a ``usr/share/doc/NAME/copyright`` there."""
    if root.name in PACKAGES:
        return root.name
    names = [p.parent.name for p in root.glob("usr/share/doc/*/copyright")]
    known = [n for n in names if n in PACKAGES]
    if len(known) != 1:
        raise RecipeError(
            f"{root}: not one of the packages the recipe knows ({', '.join(PACKAGES)}); "
            "unpack it with `dpkg -x NAME_*.deb DIR`"
        )
    return known[0]


def package_licenses(root: Path, name: str) -> tuple[str, list[Stanza]]:
    """The package's licences as DEP-5 stanzas; a plain-text copyright file becomes one ``*``
    stanza with the licence its :data:`PLAIN_LICENSES` sentence states, if it states it."""
    copyright = root / "usr" / "share" / "doc" / name / "copyright"
    if not copyright.is_file():
        raise RecipeError(f"{root}: no usr/share/doc/{name}/copyright: unpack with `dpkg -x`")
    text = copyright.read_text(errors="replace")
    dep5 = parse_dep5(text)
    if dep5 is not None:
        return dep5
    sentence, license = PLAIN_LICENSES.get(name, ("", UNKNOWN))
    found = sentence and " ".join(sentence.split()) in " ".join(text.split())
    return "", [Stanza(("*",), license if found else UNKNOWN)]


def debian_items(root: Path) -> list[Item]:
    """The audio files of the package unpacked in ``root`` that :data:`PACKAGES` uses, each with
    its category, group and licence; the source is ``debian:NAME``."""
    name = package_name(root)
    licenses = package_licenses(root, name)
    items = []
    for path in sorted(root.rglob("*")):
        # Links (drascula-music's per-language tracks) repeat a file already listed.
        if path.suffix.lower() not in AUDIO_SUFFIXES or path.is_symlink() or not path.is_file():
            continue
        relative = path.relative_to(root).as_posix()
        rule, match = next(
            ((r, m) for r in PACKAGES[name] if (m := re.search(r.pattern, relative))),
            (None, None),
        )
        if rule is None or rule.category is None:
            continue
        captured = match.groupdict().get("group")
        group = f"debian:{captured}" if captured else f"debian:{name}/{relative}"
        license = file_license(licenses, relative)
        items.append(
            Item(str(path), rule.label, f"debian:{name}", rule.category, group, license=license)
        )
    return items


def fetch(dest: Path, names: list[str]) -> list[Path]:
    """Download the packages ``names`` with ``apt-get download`` into ``dest/debs`` and unpack
    each with ``dpkg -x`` into ``dest/NAME``; returns those folders."""
    unknown = sorted(set(names) - set(PACKAGES))
    if unknown:
        raise RecipeError(f"not packages for training: {', '.join(unknown)}")
    debs = dest / "debs"
    debs.mkdir(parents=True, exist_ok=True)
    subprocess.run(["apt-get", "download", *names], cwd=debs, check=True)
    roots = []
    for name in names:
        deb = sorted(debs.glob(f"{name}_*.deb"))[-1]
        subprocess.run(["dpkg", "-x", str(deb), str(dest / name)], check=True)
        roots.append(dest / name)
    return roots

"""A parent's "that was not crying", remembered: what the model heard in a false alarm's windows
(the embeddings a model file outputs beside its score, :mod:`cry_mqtt.model`), so that the same
sound (the white-noise machine, the lullaby, the sibling) does not turn crying on again.

:class:`FalseAlarms` is the bounded memory and its file; :class:`Learned` applies it to each
scored window between the model and the detector, with the safety valve: crying that goes on past
``override_seconds`` turns on whatever the memory says.
"""

from __future__ import annotations

import contextlib
import logging
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from cry_mqtt.config import Config
from cry_mqtt.detector import Detector, DetectorSettings, Episode
from cry_mqtt.model import CryModel
from cry_mqtt.state import replace_file

log = logging.getLogger(__name__)


def open_memory(config: Config, model: CryModel) -> FalseAlarms | None:
    """The agent's memory, read from its file; None where it cannot learn (logged: learning is
    off, or the model file outputs no embeddings or names no similarity and none is set)."""
    if not config.learn.enabled:
        return None
    similarity = config.learn.similarity or model.info.details.get("learn", {}).get("similarity")
    if model.embedding_size is None or similarity is None:
        log.warning(
            '%s %s: "That was not crying" is unavailable (export the model again, or set '
            "learn.similarity)",
            model.path,
            "outputs no embeddings" if model.embedding_size is None else "names no similarity",
        )
        return None
    memory = FalseAlarms(float(similarity), config.learn.max_false_alarms)
    memory.load(config.memory_path(), model.embedding_size)
    return memory


class FalseAlarms:
    """The embeddings (unit vectors) of at most ``max_episodes`` false alarms a parent marked, at
    most ``per_episode`` windows each; the oldest false alarm is forgotten first. A window is
    like one of them when its embedding's cosine similarity to a remembered one reaches
    ``similarity``."""

    def __init__(self, similarity: float, max_episodes: int = 50, per_episode: int = 8) -> None:
        self.similarity = similarity
        self.max_episodes = max_episodes
        self.per_episode = per_episode
        self.vectors = np.zeros((0, 0), np.float32)
        self.marks = np.zeros(0, np.int64)
        """The false alarm each vector belongs to (counting from the first ever marked)."""

    @property
    def episodes(self) -> int:
        """False alarms remembered."""
        return len(np.unique(self.marks))

    def likeness(self, embedding: np.ndarray) -> float:
        """The highest similarity of ``embedding`` to a remembered window (0 if none)."""
        if not len(self.vectors) or self.vectors.shape[1] != len(embedding):
            return 0.0
        return float(np.max(self.vectors @ embedding))

    def like(self, embedding: np.ndarray) -> bool:
        """Whether ``embedding`` sounds like a remembered false alarm."""
        return self.likeness(embedding) >= self.similarity

    def add(self, kept: list[np.ndarray]) -> None:
        """Remember one false alarm: the embeddings of its windows (at most
        :attr:`per_episode` are kept), forgetting the oldest false alarm beyond the bound."""
        kept = kept[: self.per_episode]
        if not kept:
            return
        mark = int(self.marks.max()) + 1 if len(self.marks) else 0
        vectors = np.concatenate([self.vectors.reshape(-1, len(kept[0])), np.stack(kept)])
        marks = np.concatenate([self.marks, np.full(len(kept), mark)])
        keep = marks > mark - self.max_episodes
        self.vectors, self.marks = vectors[keep].astype(np.float32), marks[keep]

    def clear(self) -> None:
        """Forget every false alarm."""
        self.vectors = np.zeros((0, 0), np.float32)
        self.marks = np.zeros(0, np.int64)

    def save(self, path: Path) -> bool:
        """Write the memory over ``path`` (``.npz``; a failure is logged); whether it worked."""
        return replace_file(
            path,
            lambda file: np.savez(file, vectors=self.vectors, marks=self.marks),
            "false alarms remembered",
        )

    def load(self, path: Path, size: int) -> None:
        """Read the memory saved at ``path`` for embeddings of ``size`` values; a missing file
        is an empty memory; a corrupt one, or another model's, is logged, kept aside as
        ``*.corrupt`` and an empty memory."""
        if not path.exists():
            return
        try:
            with np.load(path, allow_pickle=False) as saved:
                vectors, marks = saved["vectors"], saved["marks"]
            if (
                vectors.ndim != 2
                or marks.shape != (len(vectors),)
                or not np.isfinite(vectors).all()
            ):
                raise ValueError("its arrays do not fit together")
            if len(vectors) and vectors.shape[1] != size:
                raise ValueError(
                    f"embeddings of {vectors.shape[1]} values, the model's have {size}"
                )
        except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as exc:
            log.error(
                "cannot use the false alarms remembered in %s (%s): starting empty", path, exc
            )
            with contextlib.suppress(OSError):
                path.replace(path.with_name(path.name + ".corrupt"))
            return
        keep = marks > marks.max(initial=0) - self.max_episodes
        self.vectors, self.marks = vectors[keep].astype(np.float32), marks[keep].astype(np.int64)


class Learned:
    """Between the model and the detector: a window that sounds like a remembered false alarm
    does not count as crying, unless crying (the detector's rule over the scores alone) has gone
    on for ``override_seconds``. Collects the windows of the latest episode for :meth:`mark`."""

    def __init__(
        self,
        memory: FalseAlarms,
        override_seconds: float,
        settings: Callable[[], DetectorSettings],
    ) -> None:
        """``settings``: the detector's settings now (the threshold changes live)."""
        self.memory = memory
        self.override_seconds = override_seconds
        self._settings = settings
        self._unaided = Detector(settings())
        """The detector's rule over the scores alone: the safety valve's measure of crying."""
        self._recent: list[np.ndarray] = []
        self._episode: list[np.ndarray] = []
        """Embeddings of the latest episode's crying windows (those that turned it on first)."""
        self.vetoed = 0
        """Windows the memory kept from counting as crying, since the start."""

    def window(self, t: float, prob: float, embedding: np.ndarray | None) -> float:
        """The score the detector is to see for the window ending at ``t``: ``prob``, or 0
        where the memory vetoes it."""
        settings = self._settings()
        self._unaided.apply(settings)
        self._unaided.update(t, prob)
        if embedding is None or prob < settings.threshold:
            return prob
        self._recent = [*self._recent, embedding][-settings.of_windows :]
        episode = self._unaided.episode
        if episode is not None and episode.duration(t) >= self.override_seconds:
            return prob
        if self.memory.like(embedding):
            self.vetoed += 1
            return 0.0
        return prob

    def update(
        self, detector: Detector, t: float, prob: float, embedding: np.ndarray | None
    ) -> tuple[Episode | None, float]:
        """Run ``detector`` on the window ending at ``t`` as the memory lets it count: the
        detector's change (as :meth:`Detector.update`) and the score it saw."""
        counted = self.window(t, prob, embedding)
        changed = detector.update(t, counted)
        if changed is not None and detector.on:
            self._episode = []
            for recent in self._recent:
                self._keep(recent)
        elif detector.on and embedding is not None and prob >= self._settings().threshold:
            self._keep(embedding)
        return changed, counted

    def _keep(self, embedding: np.ndarray) -> None:
        """Keep a crying window of the episode unless it is like one kept (the first windows
        of each distinct sound, at most ``per_episode``)."""
        m = self.memory
        if len(self._episode) < m.per_episode and all(
            embedding @ kept < m.similarity for kept in self._episode
        ):
            self._episode.append(embedding)

    def press(self, forget: bool) -> bool:
        """A parent's button: "Forget false alarms" (``forget``), else "That was not crying"
        (:meth:`mark`); whether the memory changed (logged either way)."""
        if forget:
            self.memory.clear()
            log.info("forgot every false alarm")
        elif self.mark():
            log.info("the last episode was not crying: %d false alarm(s) remembered",
                     self.memory.episodes)  # fmt: skip
        else:
            log.warning("not crying: no episode to remember since the start or the last mark")
            return False
        return True

    def mark(self) -> bool:
        """The latest episode was not crying: remember it. False if there was none to mark."""
        if not self._episode:
            return False
        self.memory.add(self._episode)
        self._episode = []
        return True

    def reset(self, t: float) -> None:
        """A gap in the audio or a pause: the valve starts over."""
        self._unaided.reset(t)
        self._recent = []

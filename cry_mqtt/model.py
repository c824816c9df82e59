"""The ONNX cry model and the metadata contract that makes a model file self-describing.

A model file's ONNX metadata holds one entry, ``cry_mqtt``, a JSON object with the feature
parameters, the window length, the default threshold and detector votes; the agent configures
itself from it and refuses a file without it. Two kinds of graph follow the contract:

- a window model maps a batch of log-mel windows, float32 ``(batch, n_mels, frames)``, to P(cry),
  float32 ``(batch,)``;
- a streaming model (metadata ``patches``) scores a window as a pool over the patches in it. Its
  graph takes the patches completed since the previous call, ``patches`` float32
  ``(n, n_mels, patch_frames)``, and ``state`` float32 ``(window_patches,)``, the per-patch logits
  of the window so far, oldest first, :data:`EMPTY_LOGIT` where no patch was scored; it returns
  ``prob`` ``(1,)`` for the window ending with the newest patch and the new ``state``. So the body
  runs only on new audio, and the pooling lives in the file, not in the agent. A third output,
  ``embedding`` ``(n, d)``, what the network heard in each new patch, lets the agent learn a
  parent's "not crying" (:mod:`cry_mqtt.memory`); a file without it scores all the same.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from cry_mqtt.detector import DEFAULT_VOTES, Preset, Votes
from cry_mqtt.features import FeatureParams

METADATA_KEY = "cry_mqtt"
SCHEMA_VERSION = 2
"""2: ``votes`` (the detector rule) joined the contract."""
DEFAULT_MODEL = "cry-yamnet.onnx"
EMPTY_LOGIT = -100.0
"""State entry of a patch that was not scored (before the first, or gated as too quiet)."""
PATCHES_PER_RUN = 2
"""Patches a streaming model scores in one call: those of a 1-s hop."""
_CONTRACT = {"schema", "features", "window_seconds", "threshold", "version", "patches", "votes"}


class ModelError(Exception):
    """A model file is missing, unreadable or does not follow the metadata contract."""


@dataclass(frozen=True)
class Patches:
    """How a streaming model cuts log-mel frames into the patches its body scores."""

    frames: int
    hop_frames: int

    def __post_init__(self) -> None:
        if not 0 < self.hop_frames <= self.frames:
            raise ValueError("patches: need 0 < hop_frames <= frames")

    def count(self, frames: int) -> int:
        """Patches that fit in ``frames`` log-mel frames."""
        return 1 + (frames - self.frames) // self.hop_frames


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself."""

    features: FeatureParams
    window_seconds: float
    threshold: float
    version: str
    details: dict[str, Any] = field(default_factory=dict)
    """Free-form extras: training-data summary, validation metrics."""
    patches: Patches | None = None
    """Set for a streaming model; None for a window model."""
    votes: Votes = DEFAULT_VOTES

    @property
    def presets(self) -> tuple[Preset, ...]:
        """The sensitivity presets the file names, most sensitive first (none: an older file)."""
        return tuple(Preset(**preset) for preset in self.details.get("presets", ()))

    @property
    def window_frames(self) -> int:
        return self.features.frames_in(round(self.window_seconds * self.features.sample_rate))

    @property
    def window_patches(self) -> int:
        """Patches that fit in one window (streaming models only)."""
        if self.patches is None:
            raise ValueError("not a streaming model")
        return self.patches.count(self.window_frames)

    def to_metadata(self) -> dict[str, str]:
        """The ONNX ``metadata_props`` entries that describe this model."""
        clash = _CONTRACT & set(self.details)
        if clash:
            raise ValueError(f"details must not redefine {sorted(clash)}")
        body = {
            "schema": SCHEMA_VERSION,
            "features": self.features.to_dict(),
            "window_seconds": self.window_seconds,
            "threshold": self.threshold,
            "version": self.version,
            "votes": asdict(self.votes),
            **({"patches": asdict(self.patches)} if self.patches else {}),
            **self.details,
        }
        return {METADATA_KEY: json.dumps(body, sort_keys=True)}

    @classmethod
    def from_metadata(cls, metadata: dict[str, str]) -> ModelInfo:
        """Parse the entries written by :meth:`to_metadata`; raises :class:`ModelError`."""
        if METADATA_KEY not in metadata:
            raise ModelError(f"no '{METADATA_KEY}' metadata (not a cry-mqtt model file)")
        try:
            body = json.loads(metadata[METADATA_KEY])
            schema = body.pop("schema")
            if schema != SCHEMA_VERSION:
                raise ValueError(
                    f"schema {schema}, this agent reads {SCHEMA_VERSION}: export the model again "
                    "(python -m training export)"
                )
            patches = body.pop("patches", None)
            votes = Votes(**body.pop("votes"))
            info = cls(
                features=FeatureParams.from_dict(body.pop("features")),
                window_seconds=float(body.pop("window_seconds")),
                threshold=float(body.pop("threshold")),
                version=str(body.pop("version")),
                details=body,
                patches=None if patches is None else Patches(**patches),
                votes=votes,
            )
            if len({preset.name for preset in info.presets}) < len(info.presets):
                raise ValueError("two presets of one name")
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"invalid '{METADATA_KEY}' metadata: {exc}") from exc
        if not 0.0 < info.threshold < 1.0 or info.window_frames < 1:
            raise ModelError("invalid metadata: threshold must be in (0, 1), window >= one frame")
        if info.patches and info.window_frames < info.patches.frames:
            raise ModelError("invalid metadata: a patch is longer than the window")
        return info


def default_model_path() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("cry_mqtt") / "models" / DEFAULT_MODEL))


class CryModel:
    """One onnxruntime session; :meth:`scorer` follows a stream, :meth:`predict` scores windows."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        if path.is_dir():
            raise ModelError(f"{path}: is a folder, not a model file (give the .onnx file)")
        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        # Weights stored as int8 + DequantizeLinear are then folded to float once at load,
        # instead of being dequantised on every call.
        options.add_session_config_entry("session.disable_quant_qdq", "1")
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several private exception types
            raise ModelError(f"cannot load model {path}: {exc}") from exc
        self.path = path
        self.info = ModelInfo.from_metadata(self._session.get_modelmeta().custom_metadata_map)
        self._inputs = {i.name: i.shape for i in self._session.get_inputs()}
        outputs = {o.name: o.shape for o in self._session.get_outputs()}
        size = outputs.get("embedding", [None, None])[-1]
        self.embedding_size: int | None = size if isinstance(size, int) else None
        """Values in a patch's embedding (None: the file outputs none)."""
        if self.info.patches is None:
            self._check_input("logmel window", self.info.window_frames, 1)
        else:
            self._check_input("patches", self.info.patches.frames, 2)

    def _check_input(self, what: str, frames: int, count: int) -> None:
        shapes = list(self._inputs.values())
        if len(shapes) != count or len(shapes[0]) != 3:
            raise ModelError(f"{self.path}: expected {what} (batch, n_mels, frames) as input")
        _, mels, width = shapes[0]
        expected = (self.info.features.n_mels, frames)
        for size, want in zip((mels, width), expected, strict=True):
            if isinstance(size, int) and size != want:  # a named (symbolic) size takes any
                raise ModelError(f"{self.path}: input is {mels}x{width}, metadata says {expected}")

    def scorer(self) -> Scorer:
        """A scorer that follows one stream of log-mel columns."""
        return WindowScorer(self) if self.info.patches is None else PatchScorer(self)

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """P(cry) for a batch of log-mel windows ``(batch, n_mels, frames)``."""
        windows = windows.astype(np.float32, copy=False)
        if self.info.patches is None:
            (name,) = self._inputs
            (probs,) = self._session.run(None, {name: windows})
            return np.asarray(probs, dtype=np.float32).reshape(len(windows))
        probs = np.empty(len(windows), dtype=np.float32)
        for i, window in enumerate(windows):
            scorer = PatchScorer(self)
            scorer.push(window)
            probs[i] = scorer.score()
        return probs

    def window_cpu_ms(self, repeats: int = 100) -> float:
        """Median CPU milliseconds that :meth:`predict` takes for one window (batch of one,
        after ten calls to warm up): the model's own cost, apart from the features."""
        shape = (1, self.info.features.n_mels, self.info.window_frames)
        window = np.random.default_rng(0).normal(-60, 15, shape).astype(np.float32)
        times = []
        for i in range(repeats + 10):
            start = time.process_time()
            self.predict(window)
            if i >= 10:
                times.append(time.process_time() - start)
        return 1000 * float(np.median(times))

    def run_patches(
        self, patches: np.ndarray, state: np.ndarray
    ) -> tuple[float, np.ndarray, np.ndarray | None]:
        """One call of a streaming model's graph: P(cry), the new state and the new patches'
        embeddings (None: the file outputs none)."""
        prob, new_state, *embedding = self._session.run(None, {"patches": patches, "state": state})
        return float(prob[0]), new_state, embedding[0] if embedding else None


class Scorer(Protocol):
    """Follows one stream of log-mel columns and scores the window ending at the newest."""

    def push(self, columns: np.ndarray) -> None:
        """Add columns ``(n_mels, k)`` that follow the previous ones."""

    def score(self) -> float:
        """P(cry) of the latest window."""

    def skip(self) -> None:
        """Pass over the audio pushed since the last score without scoring it (too quiet)."""

    def reset(self) -> None:
        """Forget everything (a gap in the audio)."""

    def embedding(self) -> np.ndarray | None:
        """What the model heard in the latest window, unit length; None if it cannot say."""


class WindowScorer:
    """Keeps the latest window of columns and scores it whole with a window model."""

    def __init__(self, model: CryModel) -> None:
        self._model = model
        self._ring = np.zeros((model.info.features.n_mels, model.info.window_frames), np.float32)
        self._next = 0  # oldest column

    def push(self, columns: np.ndarray) -> None:
        width = self._ring.shape[1]
        columns = columns[:, -width:]
        k = columns.shape[1]
        self._ring[:, (self._next + np.arange(k)) % width] = columns
        self._next = (self._next + k) % width

    def score(self) -> float:
        window = np.concatenate([self._ring[:, self._next :], self._ring[:, : self._next]], axis=1)
        return float(self._model.predict(window[None])[0])

    def skip(self) -> None:
        pass

    def reset(self) -> None:
        self._ring[:] = 0.0
        self._next = 0

    def embedding(self) -> None:
        return None


class PatchScorer:
    """Runs a streaming model's body only on the patches completed since the last call."""

    def __init__(self, model: CryModel) -> None:
        assert model.info.patches is not None
        self._model = model
        self._spec = model.info.patches
        self._count = model.info.window_patches
        self._top = int(model.info.details.get("pool_top", 1))
        self._size = model.embedding_size
        self.reset()

    def push(self, columns: np.ndarray) -> None:
        self._columns = np.concatenate([self._columns, columns], axis=1)

    def _new_patches(self) -> np.ndarray:
        """The patches completed since the last call (at most a window's worth), removed from the
        pending columns; patches start every ``hop_frames`` from the first column pushed."""
        frames, hop = self._spec.frames, self._spec.hop_frames
        width = self._columns.shape[1]
        n = 0 if width < frames else 1 + (width - frames) // hop
        starts = range(max(0, n - self._count) * hop, n * hop, hop)
        patches = np.stack([self._columns[:, s : s + frames] for s in starts]) if n else None
        self._columns = self._columns[:, n * hop :]
        return patches if n else np.zeros((0, self._columns.shape[0], frames), np.float32)

    def score(self) -> float:
        patches = self._new_patches().astype(np.float32, copy=False)
        # A whole window's patches at once (the first score, after a gap) would hold all of
        # their activations at once: about 10 MB more at the peak of the agent's memory.
        for start in range(0, len(patches), PATCHES_PER_RUN):
            self._prob, self._state, heard = self._model.run_patches(
                patches[start : start + PATCHES_PER_RUN], self._state
            )
            if heard is not None:
                self._heard = np.concatenate([self._heard, heard])[-self._count :]
        return self._prob

    def skip(self) -> None:
        n = len(self._new_patches())
        self._state = np.concatenate([self._state, np.full(n, EMPTY_LOGIT, np.float32)])[
            len(self._state) + n - self._count :
        ]
        self._heard = np.concatenate(
            [self._heard, np.zeros((n, self._heard.shape[1]), np.float32)]
        )[-self._count :]
        self._prob = 0.0

    def reset(self) -> None:
        n_mels = self._model.info.features.n_mels
        self._columns = np.zeros((n_mels, 0), dtype=np.float32)
        self._state = np.full(self._count, EMPTY_LOGIT, dtype=np.float32)
        self._heard = np.zeros((self._count, self._size or 0), dtype=np.float32)
        """The window's patch embeddings, aligned with the state's logits."""
        self._prob = 0.0

    def embedding(self) -> np.ndarray | None:
        """The mean embedding of the patches the window's score pools (its ``pool_top``
        highest logits): what made the model say what it said."""
        if self._size is None or self._state.max() <= EMPTY_LOGIT:
            return None
        top = np.argsort(self._state)[-self._top :]
        mean = self._heard[top].mean(axis=0)
        norm = float(np.linalg.norm(mean))
        return mean / norm if norm > 0 else None

"""The ONNX cry model and the metadata contract that makes a model file self-describing.

A model file maps a batch of log-mel windows, float32 ``(batch, n_mels, frames)``, to P(cry),
float32 ``(batch,)``. Its ONNX metadata holds one entry, ``cry_mqtt``, a JSON object with the
feature parameters, the window length and the default threshold; the agent configures itself
from it and refuses a file without it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from cry_mqtt.features import FeatureParams

METADATA_KEY = "cry_mqtt"
SCHEMA_VERSION = 1
DEFAULT_MODEL = "cry-cnn.onnx"


class ModelError(Exception):
    """A model file is missing, unreadable or does not follow the metadata contract."""


@dataclass(frozen=True)
class ModelInfo:
    """What a model file says about itself."""

    features: FeatureParams
    window_seconds: float
    threshold: float
    version: str
    details: dict[str, Any] = field(default_factory=dict)
    """Free-form extras: training-data summary, validation metrics."""

    @property
    def window_frames(self) -> int:
        return self.features.frames_in(round(self.window_seconds * self.features.sample_rate))

    def to_metadata(self) -> dict[str, str]:
        """The ONNX ``metadata_props`` entries that describe this model."""
        clash = {"schema", "features", "window_seconds", "threshold", "version"} & set(self.details)
        if clash:
            raise ValueError(f"details must not redefine {sorted(clash)}")
        body = {
            "schema": SCHEMA_VERSION,
            "features": self.features.to_dict(),
            "window_seconds": self.window_seconds,
            "threshold": self.threshold,
            "version": self.version,
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
            if body.pop("schema") != SCHEMA_VERSION:
                raise ValueError(f"unsupported metadata schema (this agent reads {SCHEMA_VERSION})")
            info = cls(
                features=FeatureParams.from_dict(body.pop("features")),
                window_seconds=float(body.pop("window_seconds")),
                threshold=float(body.pop("threshold")),
                version=str(body.pop("version")),
                details=body,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"invalid '{METADATA_KEY}' metadata: {exc}") from exc
        if not 0.0 < info.threshold < 1.0 or info.window_frames < 1:
            raise ModelError("invalid metadata: threshold must be in (0, 1), window >= one frame")
        return info


def default_model_path() -> Path:
    """The model shipped inside the package."""
    return Path(str(resources.files("cry_mqtt") / "models" / DEFAULT_MODEL))


class CryModel:
    """One onnxruntime session scoring log-mel windows."""

    def __init__(self, path: Path, threads: int = 1) -> None:
        import onnxruntime as ort

        if not path.is_file():
            raise ModelError(f"model file not found: {path}")
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.log_severity_level = 3
        try:
            self._session = ort.InferenceSession(
                str(path), options, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises several private exception types
            raise ModelError(f"cannot load model {path}: {exc}") from exc
        self.path = path
        self.info = ModelInfo.from_metadata(self._session.get_modelmeta().custom_metadata_map)
        inputs = self._session.get_inputs()
        if len(inputs) != 1 or len(inputs[0].shape) != 3:
            raise ModelError(f"{path}: expected one input of shape (batch, n_mels, frames)")
        _, mels, frames = inputs[0].shape
        expected = (self.info.features.n_mels, self.info.window_frames)
        for size, want in zip((mels, frames), expected, strict=True):
            if isinstance(size, int) and size != want:  # a named (symbolic) size takes any
                raise ModelError(f"{path}: input is {mels}x{frames}, metadata says {expected}")
        self._input = inputs[0].name

    def predict(self, windows: np.ndarray) -> np.ndarray:
        """P(cry) for a batch of log-mel windows ``(batch, n_mels, frames)``."""
        (probs,) = self._session.run(None, {self._input: windows.astype(np.float32, copy=False)})
        return np.asarray(probs, dtype=np.float32).reshape(len(windows))

"""Training recipe for the cry-mqtt models.

``python -m training STEP`` runs each step (``--help`` lists them in the order a user runs them;
they need the ``train`` extra: torch, fastai, onnx). The package has one room per kind of work:

- :mod:`training.data`: finding, decoding, splitting and caching labelled recordings, the
  training windows and their augmentation;
- :mod:`training.nets`: the networks in PyTorch (the CNN, YAMNet, EfficientAT mn04) and the
  streaming graph the agent runs;
- :mod:`training.recipes`: how weights are made (fit, finetune, distil, soups and WiSE mixes) and
  the run folder each leaves;
- :mod:`training.export`: the self-describing ONNX file;
- :mod:`training.evaluation`: the validation side, the independent set and the model card;
- :mod:`training.night`: the night test.

Each room's ``cli`` module wires its steps into ``python -m training``. Features come from
:mod:`cry_mqtt.features`, so training and the agent share one log-mel implementation, and
recordings are decoded by the agent's own decoder (PyAV, a runtime dependency). This module holds
what every room shares: :class:`RecipeError` and the default folders.
"""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent


DEFAULT_DATA = Path(os.environ.get("CRY_MQTT_DATA", REPO_ROOT.parent / "shared" / "data"))


DEFAULT_RUNS = REPO_ROOT / "runs"


class RecipeError(Exception):
    """A step cannot run yet: the message says what is missing and which step makes it."""

"""Night test: hours of background sound with crying inserted at known times and SNRs, streamed
through the agent's offline pipeline; two sources side by side (training's validation side, and
the independent evaluation set, never tuned on).

Modules: :mod:`~training.night.assemble` builds a night, :mod:`~training.night.measure` scores it
and sweeps detector settings, :mod:`~training.night.sources` loads the two sources,
:mod:`~training.night.plots` draws the timelines, the sweep's trade-off and the cost against the
hop, :mod:`~training.night.report` writes ``docs/performance.md``, and :mod:`~training.night.cli`
runs it all (``python -m training night``; ``pick`` chooses a setting within budget on
several saved tuning nights); :mod:`~training.night.race` races models alone and confirmed by
another on one tuning night from their stored window scores (``python -m training race``).
:mod:`~training.night.presets` chooses the
sensitivity presets on the validation night's sweep; :mod:`~training.night.learning` replays
nights with a parent's "not crying" marks (``python -m training learn-night``). Like the
independent evaluation, it scores ONNX files only: neither torch nor fastai is loaded.
"""

from training.night.cli import add_parser, add_pick_parser
from training.night.learning import add_parser as add_learning_parser
from training.night.race import add_parser as add_race_parser

__all__ = ["add_learning_parser", "add_parser", "add_pick_parser", "add_race_parser"]

"""Night test: hours of background sound with crying inserted at known times and SNRs, streamed
through the agent's offline pipeline; two sources side by side (training's validation side, and
the independent evaluation set, never tuned on).

Modules: :mod:`~training.night.assemble` builds a night, :mod:`~training.night.measure` scores it
and sweeps detector settings, :mod:`~training.night.sources` loads the two sources,
:mod:`~training.night.plots` and :mod:`~training.night.report` draw and write the results, and
:mod:`~training.night.cli` runs it all (``python -m training night``).
"""

from training.night.cli import add_parser

__all__ = ["add_parser"]

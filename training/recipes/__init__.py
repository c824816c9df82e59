"""How weights are made: :mod:`~training.recipes.fit` (the CNN from scratch),
:mod:`~training.recipes.finetune` (YAMNet without forgetting), :mod:`~training.recipes.distil`
(the mn04 student), :mod:`~training.recipes.mixing` (soups and WiSE mixes of runs), on what they
share (:mod:`~training.recipes.learner`), each leaving a run folder with one summary shape
(:mod:`~training.recipes.runs`); :mod:`~training.recipes.cli` wires their steps."""

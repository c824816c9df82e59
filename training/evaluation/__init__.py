"""Measuring a trained model: :mod:`~training.evaluation.validation` scores the held-out side of
training's split and writes the model card, :mod:`~training.evaluation.independent` measures it
on the independent set (sources never trained on), :mod:`~training.evaluation.crossval`
cross-validates the fit recipe. The night test is :mod:`training.night`."""

"""Measuring a trained model.

:mod:`~training.evaluation.metrics` computes the numbers from scores alone,
:mod:`~training.evaluation.validation` scores the held-out side of training's split,
:mod:`~training.evaluation.plots` and :mod:`~training.evaluation.card` draw the plots and write the
model card, :mod:`~training.evaluation.evaluate` runs the ``evaluate`` step,
:mod:`~training.evaluation.independent` the ``independent`` step (the independent set: sources
never trained on; ONNX only), and :mod:`~training.evaluation.crossval` cross-validates the fit
recipe. The night test is :mod:`training.night`."""

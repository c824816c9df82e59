"""Training recipe for the cry-mqtt models.

``python -m training STEP`` runs each step (``--help`` lists them: prepare, fit, finetune,
distil, wise, export, evaluate, independent, night, ...; they need the ``train`` extra: torch,
fastai, onnx). ``training/README.md`` (Layout) says which module does what: the recipe here, the
measurements in :mod:`training.evaluation` and the night test in :mod:`training.night`.
Features come from :mod:`cry_mqtt.features`, so training and the agent share one log-mel
implementation, and recordings are decoded by the agent's own decoder (PyAV, a runtime
dependency).
"""

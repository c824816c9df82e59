"""Training recipe for the cry-mqtt models.

``python -m training STEP`` runs each step (``--help`` lists them: prepare, fit, finetune,
distil, wise, export, evaluate, night, ...; they need the ``train`` extra: torch, fastai, onnx).
Features come from :mod:`cry_mqtt.features`, so training and the agent share one log-mel
implementation, and recordings are decoded by the agent's own decoder (PyAV, a runtime
dependency).
"""

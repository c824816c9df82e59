"""Training recipe for the cry-mqtt default model: ``python -m training prepare|fit|export|evaluate``.

Needs the ``train`` extra (torch, fastai, PyAV, onnx). Features come from :mod:`cry_mqtt.features`
so that training and the agent share one log-mel implementation.
"""

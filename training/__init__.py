"""Training recipe for the cry-mqtt default model.

Run ``python -m training prepare|fit|export|evaluate`` (needs the ``train`` extra: torch,
fastai, PyAV, onnx). Features come from :mod:`cry_mqtt.features`, so training and the agent
share one log-mel implementation.
"""

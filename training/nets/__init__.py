"""The networks in PyTorch: :mod:`~training.nets.cnn` (the window CNNs trained from scratch),
:mod:`~training.nets.yamnet` and :mod:`~training.nets.efficientat` (the AudioSet taggers with
their pretrained weights), and :mod:`~training.nets.streaming` (the graph of a streaming model
file, for any patch network)."""

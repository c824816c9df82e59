"""cry-mqtt: local baby-cry detection for Home Assistant over MQTT."""

import os

__version__ = "0.1.0"

# The agent's matrices are small: more BLAS threads only spin and cost CPU. This must be set
# before numpy loads OpenBLAS; an explicit setting in the environment wins.
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")

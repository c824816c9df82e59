"""cry-mqtt: local baby-cry detection for Home Assistant over MQTT."""

__version__ = "0.1.0"

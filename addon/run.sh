#!/usr/bin/with-contenv bash
# The add-on's options (and the Supervisor's MQTT service) become the agent's config, checked as
# the agent checks any config file; then the agent runs.
set -e
python3 -m cry_mqtt.addon /data/options.json /tmp/cry-mqtt.yaml
exec cry-mqtt --config /tmp/cry-mqtt.yaml

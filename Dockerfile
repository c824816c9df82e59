# cry-mqtt agent: runtime dependencies only (the training extra is not installed), on Debian
# bookworm with Debian's Python in a venv, and ffmpeg for a camera's stream (audio.source: command).
FROM debian:bookworm-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends python3 python3-venv libportaudio2 ffmpeg \
    && rm -rf /var/lib/apt/lists/* \
    && python3 -m venv /opt/cry-mqtt \
    && useradd --system --create-home --groups audio cry \
    && mkdir -p /config /data && chown cry /data

COPY pyproject.toml README.md /tmp/cry-mqtt/
COPY cry_mqtt /tmp/cry-mqtt/cry_mqtt
RUN /opt/cry-mqtt/bin/pip install --no-cache-dir /tmp/cry-mqtt && rm -rf /tmp/cry-mqtt

USER cry
WORKDIR /home/cry
# Settings changed from Home Assistant persist in /data (mount a volume); the audio loop touches
# the heartbeat file every few seconds, and the health check fails when it stops.
# One BLAS/OpenMP thread: the agent's matrices are small, and idle spinning threads cost CPU.
ENV PATH=/opt/cry-mqtt/bin:$PATH XDG_STATE_HOME=/data \
    CRY_MQTT_HEARTBEAT_FILE=/tmp/cry-mqtt.heartbeat OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
VOLUME /data
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD test -n "$(find /tmp/cry-mqtt.heartbeat -mmin -1 2>/dev/null)"
ENTRYPOINT ["cry-mqtt"]
CMD ["--config", "/config/config.yaml"]

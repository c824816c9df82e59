# cry-mqtt agent: runtime dependencies only (the training extra is not installed).
FROM python:3.11-slim

RUN apt-get update \
    && apt-get install -y --no-install-recommends libportaudio2 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --create-home --groups audio cry \
    && mkdir -p /config /data && chown cry /data

WORKDIR /app
COPY pyproject.toml README.md ./
COPY cry_mqtt ./cry_mqtt
RUN pip install --no-cache-dir .

USER cry
# Settings changed from Home Assistant persist in /data (mount a volume); the audio loop touches
# the heartbeat file every few seconds, and the health check fails when it stops.
# One BLAS/OpenMP thread: the agent's matrices are small, and idle spinning threads cost CPU.
ENV XDG_STATE_HOME=/data CRY_MQTT_HEARTBEAT_FILE=/tmp/cry-mqtt.heartbeat \
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
VOLUME /data
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD test -n "$(find /tmp/cry-mqtt.heartbeat -mmin -1 2>/dev/null)"
ENTRYPOINT ["cry-mqtt"]
CMD ["--config", "/config/config.yaml"]

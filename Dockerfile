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
# Settings changed from Home Assistant persist here (mount a volume).
ENV XDG_STATE_HOME=/data
VOLUME /data
ENTRYPOINT ["cry-mqtt"]
CMD ["--config", "/config/config.yaml"]

"""The one module that talks to the MQTT broker (paho-mqtt 2.x).

It keeps the *current* value of every retained state topic and publishes all of them, with the
discovery configs and ``online``, on every (re)connect and when Home Assistant restarts. While the
broker is away nothing is queued, and what a broker never acknowledged is dropped on reconnect: a
dashboard needs the present, not a backlog.
"""

from __future__ import annotations

import logging
import os
import random
import socket
import ssl
import threading
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from cry_mqtt.config import Config
from cry_mqtt.homeassistant import OFFLINE, ONLINE, Topics, command_keys

log = logging.getLogger(__name__)

CommandHandler = Callable[[str, bytes], None]
"""Receives (entity key, raw payload); called on paho's thread, so it must only hand over."""

ANNOUNCE_DELAY = (0.5, 3.0)
"""Random delay in seconds before re-announcing after Home Assistant comes online."""

_REFUSED_CREDENTIALS = {"Bad user name or password", "Not authorized"}


class MqttError(Exception):
    """The broker cannot be used with this configuration."""


def create_client(config: Config, password: str | None) -> paho.Client:
    """A paho client with credentials and TLS applied from the config (not yet connected)."""
    m = config.mqtt
    client = paho.Client(
        CallbackAPIVersion.VERSION2,
        client_id=m.client_id or f"cry-mqtt-{config.device.instance_id}",
        protocol=paho.MQTTv311,
    )
    if m.username is not None:
        client.username_pw_set(m.username, password)
    tls = m.tls
    if tls.enabled or tls.ca_certs or tls.certfile:
        files = {"ca_certs": tls.ca_certs, "certfile": tls.certfile, "keyfile": tls.keyfile}
        for key, path in files.items():
            if path is not None and not os.access(path, os.R_OK):
                reason = "cannot read it" if path.is_file() else "no such file"
                raise MqttError(f"mqtt.tls.{key}: {path}: {reason}")
        try:
            client.tls_set(
                ca_certs=_str(tls.ca_certs),
                certfile=_str(tls.certfile),
                keyfile=_str(tls.keyfile),
                cert_reqs=ssl.CERT_NONE if tls.insecure else ssl.CERT_REQUIRED,
            )
        except (OSError, ssl.SSLError) as exc:
            named = ", ".join(f"{key} {path}" for key, path in files.items() if path is not None)
            raise MqttError(f"mqtt.tls: cannot load certificates ({named}): {exc}") from exc
        client.tls_insecure_set(tls.insecure)
    return client


def check_connection(config: Config, password: str | None, timeout: float = 10.0) -> None:
    """Connect once and disconnect; raises :class:`MqttError` saying what went wrong."""
    client = create_client(config, password)
    result: dict[str, ReasonCode] = {}
    done = threading.Event()

    def on_connect(client, userdata, flags, reason_code, properties) -> None:
        result["code"] = reason_code
        done.set()

    client.on_connect = on_connect
    try:
        client.connect(config.mqtt.host, config.mqtt.port, keepalive=10)
    except (OSError, ssl.SSLError) as exc:
        raise MqttError(f"cannot reach {config.mqtt.host}:{config.mqtt.port}: {exc}") from exc
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise MqttError(f"no answer from {config.mqtt.host}:{config.mqtt.port}")
        if result["code"].is_failure:
            raise MqttError(f"broker refused the connection: {result['code']}")
    finally:
        client.disconnect()
        client.loop_stop()


def unreachable_reason(config: Config, timeout: float = 3.0) -> str:
    """Why the broker does not answer, from a plain TCP connection attempt."""
    host, port = config.mqtt.host, config.mqtt.port
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return f"{host}:{port} accepts connections but did not answer as an MQTT broker"
    except OSError as exc:
        return f"cannot reach {host}:{port}: {exc.strerror or exc}"


class MqttLink:
    """Connection, will, announcements, retained state and command subscriptions."""

    def __init__(
        self,
        config: Config,
        password: str | None,
        discovery: dict[str, str],
        on_command: CommandHandler,
    ) -> None:
        self._config = config
        self._topics = Topics.from_config(config)
        self._discovery = discovery
        self._on_command = on_command
        self._states: dict[str, str] = {}
        self._lock = threading.Lock()
        self._answered = threading.Event()
        self.fatal: str | None = None
        """Set when the broker refuses us for good (credentials); the agent then exits."""
        self._commands = {self._topics.command(key): key for key in command_keys()}
        client = create_client(config, password)
        client.will_set(self._topics.availability, OFFLINE, qos=1, retain=True)
        client.reconnect_delay_set(1, round(config.mqtt.reconnect_max_seconds))
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_message = self._handle_message
        self._client = client

    def start(self) -> None:
        """Connect in the background, retrying with back-off while the broker is away."""
        m = self._config.mqtt
        log.info("connecting to MQTT broker %s:%d", m.host, m.port)
        self._client.connect_async(m.host, m.port, keepalive=m.keepalive)
        self._client.loop_start()

    def wait_for_broker(self, timeout: float) -> bool:
        """Block until the broker answered a first connection attempt, or ``timeout`` seconds."""
        return self._answered.wait(timeout)

    def publish_state(self, topic: str, payload: str) -> None:
        """Remember ``payload`` as the current retained value of ``topic`` and publish it."""
        with self._lock:
            if self._states.get(topic) == payload:
                return
            self._states[topic] = payload
        self._send(topic, payload)

    def refresh(self) -> None:
        """Publish every current state again (for ``expire_after``)."""
        with self._lock:
            states = dict(self._states)
        for topic, payload in states.items():
            self._send(topic, payload)

    def announce(self) -> None:
        """Discovery configs, ``online`` and every current state."""
        for topic, payload in self._discovery.items():
            self._send(topic, payload)
        self._send(self._topics.availability, ONLINE)
        self.refresh()

    def stop(self, timeout: float = 2.0) -> None:
        """Publish ``offline`` and disconnect cleanly (a clean disconnect sends no will)."""
        if self._client.is_connected():
            info = self._client.publish(self._topics.availability, OFFLINE, qos=1, retain=True)
            try:
                info.wait_for_publish(timeout)
            except (RuntimeError, ValueError):
                log.warning("could not publish offline before disconnecting")
        self._client.disconnect()
        self._client.loop_stop()

    def _send(self, topic: str, payload: str) -> None:
        if self._client.is_connected():
            self._client.publish(topic, payload, qos=1, retain=True)

    def _handle_connect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        if reason_code.is_failure:
            log.error("MQTT broker refused the connection: %s", reason_code)
            if str(reason_code) in _REFUSED_CREDENTIALS:
                self.fatal = f"MQTT broker refused the credentials: {reason_code}"
            self._answered.set()
            return
        log.info("connected to MQTT broker")
        # States that a frozen or dying broker never acknowledged would be sent again after this
        # callback, over the fresh announcement: a stale "crying" retained for good. Every one of
        # them is announced anew with its current value, so drop them.
        client.drop_out_messages()
        client.subscribe([(topic, 1) for topic in self._commands])
        client.subscribe(self._topics.homeassistant_status, 1)
        self.announce()
        self._answered.set()

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if reason_code.is_failure:
            log.warning("disconnected from MQTT broker (%s); reconnecting", reason_code)

    def _handle_message(self, client, userdata, message: paho.MQTTMessage) -> None:
        try:
            if message.topic == self._topics.homeassistant_status:
                if message.payload == ONLINE.encode():
                    delay = random.uniform(*ANNOUNCE_DELAY)
                    log.info("Home Assistant came online; announcing in %.1f s", delay)
                    threading.Timer(delay, self.announce).start()
            elif message.topic in self._commands:
                self._on_command(self._commands[message.topic], message.payload)
        except Exception:  # an exception here would stop paho's network thread
            log.exception("error handling MQTT message on %s", message.topic)


def _str(path: object) -> str | None:
    return None if path is None else str(path)

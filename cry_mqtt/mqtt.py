"""The one module that talks to the MQTT broker (paho-mqtt 2.x).

It keeps the *current* value of every state topic and publishes all of them, with the discovery
configs and ``online``, on every (re)connect and when Home Assistant restarts. While the broker is
away nothing is queued, and what a broker never acknowledged is dropped on reconnect: a dashboard
needs the present, not a backlog. States are published under one lock, so the broker's order is
the order of the changes whichever thread announces. A state that must not outlive its truth (the
crying itself) is not retained: a broker restored from its last autosave cannot serve it stale.
"""

from __future__ import annotations

import logging
import os
import random
import ssl
import sys
import threading
import time
from collections.abc import Callable

import paho.mqtt.client as paho
from paho.mqtt.enums import CallbackAPIVersion
from paho.mqtt.reasoncodes import ReasonCode

from cry_mqtt.config import Config
from cry_mqtt.homeassistant import OFFLINE, ONLINE, Topics, command_keys
from cry_mqtt.stopping import POLL_SECONDS, check_stop
from cry_mqtt.throttle import Throttle

log = logging.getLogger(__name__)
FIRST_REMINDER_SECONDS = 10.0
REMINDER_SECONDS = 600.0
"""A link down says so after this long, then every this long."""

CommandHandler = Callable[[str, bytes], None]
"""Receives (entity key, raw payload) on paho's thread: it checks the payload, size first, and
hands over only a valid value, so that a flood of huge or bad commands is never queued."""

ANNOUNCE_DELAY = (0.5, 3.0)
"""Random delay in seconds before re-announcing after Home Assistant comes online."""

_REFUSED_CREDENTIALS = {"Bad user name or password", "Not authorized"}
KEEPALIVE_TIMEOUT = "Keep alive timeout"
"""paho's reason when nothing came back within the keepalive, a CONNACK included."""
TAKEOVER_SECONDS = 10.0
TAKEOVERS = 3
"""This many connections in a row that the broker closes within ``TAKEOVER_SECONDS``: most
likely another client with the same client id takes the session over, again and again."""
TAKEOVER_RETRY_SECONDS = (30, 90)
"""Then the next reconnect waits a random time in this range instead of a second or so: two
agents on one id would otherwise take turns every second, each announcing its own crying state
(the other room's ON, then OFF) to Home Assistant."""


class MqttError(Exception):
    """The broker cannot be used with this configuration."""


def client_id(config: Config) -> str:
    """The MQTT client id: the broker allows one connection per id."""
    return config.mqtt.client_id or f"cry-mqtt-{config.device.instance_id}"


def uses_tls(config: Config) -> bool:
    """TLS is on, or implied by a certificate file."""
    tls = config.mqtt.tls
    return tls.enabled or tls.ca_certs is not None or tls.certfile is not None


def create_client(config: Config, password: str | None) -> paho.Client:
    """A paho client with credentials and TLS applied from the config (not yet connected)."""
    m = config.mqtt
    client = paho.Client(
        CallbackAPIVersion.VERSION2, client_id=client_id(config), protocol=paho.MQTTv311
    )
    if m.username is not None:
        client.username_pw_set(m.username, password)
    tls = m.tls
    if uses_tls(config):
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
    except OSError as exc:  # ssl.SSLError included
        raise MqttError(connect_failure(config, exc)) from exc
    client.loop_start()
    try:
        if not done.wait(timeout):
            raise MqttError(f"no answer from {config.mqtt.host}:{config.mqtt.port}")
        if result["code"].is_failure:
            raise MqttError(f"broker refused the connection: {result['code']}")
    finally:
        client.disconnect()
        client.loop_stop()


def connect_failure(config: Config, exc: OSError) -> str:
    """Why a connection attempt failed, in words a user can act on."""
    m = config.mqtt
    where = f"{m.host}:{m.port}"
    if isinstance(exc, ssl.SSLCertVerificationError):
        return f"cannot reach {where}: TLS: the broker's certificate is not accepted: " + (
            f"{exc.verify_message} (mqtt.tls.ca_certs names the CA that signed it)"
        )
    if uses_tls(config) and isinstance(exc, ssl.SSLError | ConnectionResetError | BrokenPipeError):
        return (
            f"cannot reach {where}: the TLS handshake failed ({exc.strerror or exc}): is port "
            f"{m.port} a TLS listener? (plain MQTT is usually 1883, TLS 8883)"
        )
    return f"cannot reach {where}: {exc.strerror or exc}"


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
        self._states: dict[str, tuple[str, bool]] = {}
        """The current payload of each state topic, and whether it is retained."""
        self._lock = threading.Lock()
        self._answered = threading.Event()
        self.fatal: str | None = None
        """Set while the broker refuses the credentials: a recording's run exits, the live agent
        goes on retrying with back-off."""
        self.failure: str | None = None
        """Why the link is down, in words a user can act on (None while connected)."""
        self._down_since: float | None = time.monotonic()
        self._reminder = FIRST_REMINDER_SECONDS
        self._password_hint = (
            f"check mqtt.username and the password; the password: {config.mqtt_password_source()}"
        )
        self._commands = {self._topics.command(key): key for key in command_keys()}
        self._announce_pending = False
        self._connected_at: float | None = None
        self._refused_now = False
        self._short_sessions = 0
        self._rejected = Throttle(log, "rejected MQTT commands", logging.WARNING)
        self._unreachable = Throttle(log, "failed connection attempts", logging.ERROR, burst=1)
        self._refused = Throttle(log, "refused connection attempts", logging.ERROR, burst=1)
        self._disconnected = Throttle(log, "disconnections", logging.WARNING)
        self._taken_over = Throttle(log, "closed sessions", logging.WARNING, burst=1)
        client = create_client(config, password)
        client.will_set(self._topics.availability, OFFLINE, qos=1, retain=True)
        self._reconnect_delay = (1, round(config.mqtt.reconnect_max_seconds))
        self._waiting_out_a_takeover = False
        client.reconnect_delay_set(*self._reconnect_delay)
        client.on_connect = self._handle_connect
        client.on_disconnect = self._handle_disconnect
        client.on_connect_fail = self._handle_connect_fail
        client.on_message = self._handle_message
        self._client = client

    def start(self) -> None:
        """Connect in the background, retrying with back-off while the broker is away."""
        m = self._config.mqtt
        log.info("connecting to MQTT broker %s:%d", m.host, m.port)
        self._client.connect_async(m.host, m.port, keepalive=m.keepalive)
        self._client.loop_start()

    def wait_for_broker(self, timeout: float) -> bool:
        """Block until the broker answered a first connection attempt, or ``timeout`` seconds;
        a stop signal (:func:`~cry_mqtt.stopping.check_stop`) ends the wait."""
        deadline = time.monotonic() + timeout
        while (left := deadline - time.monotonic()) > 0:
            if self._answered.wait(min(left, POLL_SECONDS)):
                return True
            check_stop()
        return False

    @property
    def failure_or_silence(self) -> str:
        """Why the link is down, or that the broker has not answered."""
        m = self._config.mqtt
        return self.failure or f"no answer from {m.host}:{m.port}"

    def remind(self) -> None:
        """While the link is down, say so after a while and now and then (the live agent
        listens without a broker, but Home Assistant hears nothing meanwhile)."""
        down = self.down_for()
        if down == 0.0:
            self._reminder = FIRST_REMINDER_SECONDS
        elif down >= self._reminder:
            log.warning(
                "no MQTT connection for %.0f s (%s): listening, but Home Assistant hears "
                "nothing; retrying",
                down,
                self.failure_or_silence,
            )
            self._reminder = down + REMINDER_SECONDS

    def publish_state(self, topic: str, payload: str | bytes, retain: bool = True) -> None:
        """Remember ``payload`` as the current value of ``topic`` and publish it."""
        with self._lock:
            if self._states.get(topic) == (payload, retain):
                return
            self._states[topic] = (payload, retain)
            self._send(topic, payload, retain)

    def refresh(self) -> None:
        """Publish every current state again (for ``expire_after``)."""
        with self._lock:
            for topic, (payload, retain) in self._states.items():
                self._send(topic, payload, retain)

    def announce(self) -> None:
        """Discovery configs, ``online`` and every current state."""
        with self._lock:
            for topic, payload in self._discovery.items():
                self._send(topic, payload)
            self._send(self._topics.availability, ONLINE)
        self.refresh()

    def reject(self, reason: str) -> None:
        """Log a command that is not applied (at a bounded rate)."""
        self._rejected("rejected MQTT command: %s", reason)

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

    def _send(self, topic: str, payload: str, retain: bool = True) -> None:
        if self._client.is_connected():
            self._client.publish(topic, payload, qos=1, retain=retain)

    def down_for(self) -> float:
        """Seconds since the link was last up (or started); 0 while connected."""
        return 0.0 if self._down_since is None else time.monotonic() - self._down_since

    def _failed(self, throttle: Throttle, reason: str) -> None:
        """The broker cannot be used now: remember why, log it (at ``throttle``'s rate)."""
        self.failure = reason
        throttle("%s; retrying", reason)

    def _handle_connect(self, client, userdata, flags, reason_code: ReasonCode, properties) -> None:
        if reason_code.is_failure:
            self._refused_now = True
            if str(reason_code) in _REFUSED_CREDENTIALS:
                self.fatal = f"MQTT broker refused the credentials: {reason_code}"
                self._failed(self._refused, f"{self.fatal} ({self._password_hint})")
            else:
                self._failed(self._refused, f"MQTT broker refused the connection: {reason_code}")
            self._answered.set()
            return
        log.info("connected to MQTT broker")
        self.fatal = self.failure = self._down_since = None
        self._connected_at = time.monotonic()
        # States that a frozen or dying broker never acknowledged would be sent again after this
        # callback, over the fresh announcement: stale values of a moment ago. Every one of them
        # is announced anew with its current value, so drop them.
        client.drop_out_messages()
        client.subscribe([(topic, 1) for topic in self._commands])
        client.subscribe(self._topics.homeassistant_status, 1)
        self._clear_retained()
        self.announce()
        self._answered.set()

    def _clear_retained(self) -> None:
        """On each connection: an empty retained message on each state topic published without
        retain, which a broker may still hold from an older version of the agent (a crying ON,
        for good). Home Assistant ignores an empty state."""
        with self._lock:
            for topic, (_, retain) in self._states.items():
                if not retain:
                    self._send(topic, "", retain=True)

    def _handle_connect_fail(self, client, userdata) -> None:
        self._back_to_the_usual_delay(client)
        # paho calls this from its `except OSError:` block and passes no error: take it from there.
        exc = sys.exc_info()[1]
        reason = connect_failure(self._config, exc) if isinstance(exc, OSError) else "no reason"
        self._failed(self._unreachable, reason)

    def _handle_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        connected_at, self._connected_at = self._connected_at, None
        if self._down_since is None:
            self._down_since = time.monotonic()
        refused, self._refused_now = self._refused_now, False
        if not reason_code.is_failure or refused:
            return  # a clean stop, or the refusal said it all
        m = self._config.mqtt
        where = f"{m.host}:{m.port}"
        if connected_at is None:
            self._back_to_the_usual_delay(client)
            if str(reason_code) == KEEPALIVE_TIMEOUT:
                self._failed(
                    self._unreachable,
                    f"{where} accepted the connection but sent no MQTT answer within "
                    f"{m.keepalive} s (mqtt.keepalive): is it an MQTT broker's port?",
                )
                return
            causes = [] if uses_tls(self._config) else ["a TLS listener (set mqtt.tls.enabled)"]
            causes.append(
                "a broker that refuses the agent's last will, retained at QoS 1 (see its log, "
                "and its retain_available and max_qos)"
            )
            self._failed(
                self._unreachable,
                f"{where} closed the connection before answering: {' or '.join(causes)}?",
            )
            return
        short = time.monotonic() - connected_at < TAKEOVER_SECONDS
        self._short_sessions = self._short_sessions + 1 if short else 0
        if self._short_sessions >= TAKEOVERS:
            wait = random.randint(*TAKEOVER_RETRY_SECONDS)
            client.reconnect_delay_set(wait, wait)
            self._waiting_out_a_takeover = True
            self._failed(
                self._taken_over,
                f"the MQTT broker closed the connection {self._short_sessions} times in a row "
                "within seconds: another client probably uses the same client id "
                f"{client_id(self._config)!r} (two agents with device.instance_id "
                f"{self._config.device.instance_id!r}? each needs its own), or the broker refuses "
                "what the agent publishes (retained QoS 1 messages of up to 2 KB: see its log, "
                f"and its max_qos, retain_available and max_packet_size); waiting {wait} s",
            )
        else:
            self._back_to_the_usual_delay(client)
            self._failed(self._disconnected, f"disconnected from MQTT broker ({reason_code})")

    def _back_to_the_usual_delay(self, client: paho.Client) -> None:
        """After a takeover's long wait, the reconnect back-off as configured (setting it
        restarts it from its shortest, so only then)."""
        if self._waiting_out_a_takeover:
            self._waiting_out_a_takeover = False
            client.reconnect_delay_set(*self._reconnect_delay)

    def _handle_message(self, client, userdata, message: paho.MQTTMessage) -> None:
        try:
            key = self._commands.get(message.topic)
            if message.retain:
                # Kept by the broker from some earlier time: applied again on every reconnect
                # and restart, it would undo every later change.
                if key is not None:
                    self.reject(
                        f"{key}: retained on the broker, ignored (clear it with an empty "
                        f"retained message on {message.topic})"
                    )
            elif message.topic == self._topics.homeassistant_status:
                if message.payload == ONLINE.encode():
                    self._announce_later()
            elif key is not None:
                self._on_command(key, message.payload)
        except Exception:  # an exception here would stop paho's network thread
            log.exception("error handling MQTT message on %s", message.topic)

    def _announce_later(self) -> None:
        """One re-announcement after a random delay, however many ``online`` arrive meanwhile."""
        with self._lock:
            if self._announce_pending:
                return
            self._announce_pending = True
        delay = random.uniform(*ANNOUNCE_DELAY)
        log.info("Home Assistant came online; announcing in %.1f s", delay)
        timer = threading.Timer(delay, self._announce_now)
        timer.daemon = True
        timer.start()

    def _announce_now(self) -> None:
        with self._lock:
            self._announce_pending = False
        self.announce()


def _str(path: object) -> str | None:
    return None if path is None else str(path)

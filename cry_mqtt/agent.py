"""The agent: audio source → pipeline → Home Assistant over MQTT.

The audio loop runs on the main thread; paho's thread only hands commands over through a queue,
so every change of state happens in one place.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import queue
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from cry_mqtt.audio import AudioSource
from cry_mqtt.config import Config
from cry_mqtt.detector import Episode
from cry_mqtt.homeassistant import (
    OFF,
    ON,
    CommandError,
    Topics,
    discovery_messages,
    parse_switch,
    parse_threshold,
    percent,
    switch,
)
from cry_mqtt.model import CryModel
from cry_mqtt.mqtt import MqttLink
from cry_mqtt.pipeline import Pipeline, WindowResult

log = logging.getLogger(__name__)


class AgentError(Exception):
    """The agent cannot go on (for example, the broker refused its credentials)."""


class Shutdown(Exception):
    """Raised by the signal handlers to stop the agent cleanly."""


class SavedSettings:
    """Settings changed from Home Assistant, kept in a small JSON file across restarts."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, Any]:
        try:
            data = json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            log.warning("ignoring unreadable saved settings %s: %s", self.path, exc)
            return {}
        return data if isinstance(data, dict) else {}

    def save(self, **values: Any) -> None:
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            tmp = self.path.with_suffix(".tmp")
            tmp.write_text(json.dumps(values))
            os.replace(tmp, self.path)
        except OSError as exc:
            log.error("cannot save settings to %s: %s", self.path, exc)


class Agent:
    """Runs the pipeline over an audio source and reports to Home Assistant."""

    def __init__(self, config: Config, model: CryModel, password: str | None) -> None:
        self._config = config
        self._model = model
        self._topics = Topics.from_config(config)
        self._saved = SavedSettings(config.state_path())
        saved = self._saved.load()
        self.pipeline = Pipeline(model, config.detection, _valid_threshold(saved.get("threshold")))
        self.pipeline.paused = saved.get("paused") is True
        self._commands: queue.Queue[tuple[str, bytes]] = queue.Queue(maxsize=100)
        expire_after = round(3 * config.mqtt.state_refresh_seconds)
        self.link = MqttLink(
            config,
            password,
            discovery_messages(config, model.info.version, expire_after),
            self._receive_command,
        )
        self._telemetry_due = 0.0
        self._peak_prob = 0.0
        self._peak_dbfs = -float("inf")
        self._refresh_due = time.monotonic() + config.mqtt.state_refresh_seconds
        self._episode_started: datetime | None = None

    def run(self, source: AudioSource, wait_for_broker: float = 0.0) -> None:
        """Process ``source`` until it ends or :class:`Shutdown`; always leaves HA consistent.

        ``wait_for_broker`` holds the audio back until the first connection (for recorded
        input, so that subscribers see every change); live audio never waits.
        """
        self._publish_settings()
        self._publish_crying(None)
        self.link.start()
        try:
            if wait_for_broker and not self.link.wait_connected(wait_for_broker):
                log.warning("no MQTT connection after %.0f s; going on", wait_for_broker)
            with contextlib.closing(source.blocks()) as blocks:
                for block in blocks:
                    self._apply_commands()
                    if self.link.fatal:
                        raise AgentError(self.link.fatal)
                    for result in self.pipeline.push(block):
                        self._report(result)
                    self._refresh()
            for result in self.pipeline.finish():
                self._report(result)
            log.info("end of input")
        except Shutdown as stop:
            log.info("stopping (%s)", stop)
        finally:
            self._end_episode()
            self.link.stop()

    def _end_episode(self) -> None:
        ended = self.pipeline.detector.reset(self.pipeline.now)
        if ended is not None:
            self._publish_crying(ended)

    def _receive_command(self, key: str, payload: bytes) -> None:
        try:
            self._commands.put_nowait((key, payload))
        except queue.Full:
            log.warning("dropping MQTT command for %s: too many pending", key)

    def _apply_commands(self) -> None:
        while True:
            try:
                key, payload = self._commands.get_nowait()
            except queue.Empty:
                return
            try:
                if key == "threshold":
                    self.pipeline.detector.set_threshold(parse_threshold(payload))
                    log.info("threshold set to %s %%", percent(self._threshold))
                elif key == "paused":
                    self.pipeline.paused = parse_switch(payload)
                    if self.pipeline.paused:
                        self._end_episode()
                    log.info("detection %s", "paused" if self.pipeline.paused else "resumed")
            except CommandError as exc:
                log.warning("rejected MQTT command: %s", exc)
                continue
            self._saved.save(threshold=self._threshold, paused=self.pipeline.paused)
            self._publish_settings()

    @property
    def _threshold(self) -> float:
        return self.pipeline.detector.settings.threshold

    def _report(self, result: WindowResult) -> None:
        if result.changed is not None:
            self._publish_crying(result.changed)
        self._peak_prob = max(self._peak_prob, result.prob)
        self._peak_dbfs = max(self._peak_dbfs, result.dbfs)
        if result.t >= self._telemetry_due:
            self.link.publish_state(self._topics.state("confidence"), percent(self._peak_prob))
            self.link.publish_state(self._topics.state("sound_level"), f"{self._peak_dbfs:.0f}")
            self._peak_prob, self._peak_dbfs = 0.0, -float("inf")
            self._telemetry_due = result.t + self._config.mqtt.telemetry_seconds

    def _refresh(self) -> None:
        now = time.monotonic()
        if now >= self._refresh_due:
            self.link.refresh()
            self._refresh_due = now + self._config.mqtt.state_refresh_seconds

    def _publish_settings(self) -> None:
        self.link.publish_state(self._topics.state("threshold"), percent(self._threshold))
        self.link.publish_state(self._topics.state("paused"), switch(self.pipeline.paused))

    def _publish_crying(self, episode: Episode | None) -> None:
        """Publish the attributes of ``episode`` (started or ended), then the state."""
        attributes: dict[str, Any] = {"model_version": self._model.info.version}
        if episode is not None:
            if episode.end is None:
                self._episode_started = datetime.now(UTC)
                log.info("crying detected (confidence %s %%)", percent(episode.peak))
            else:
                log.info("crying stopped after %.0f s", episode.duration(episode.end))
            attributes |= {
                "episode_start": self._episode_started.isoformat(timespec="seconds")
                if self._episode_started
                else None,
                "episode_duration_s": round(episode.duration(episode.end or episode.start), 1),
                "peak_confidence": float(percent(episode.peak)),
            }
        self.link.publish_state(self._topics.attributes, json.dumps(attributes, sort_keys=True))
        on = episode is not None and episode.end is None
        self.link.publish_state(self._topics.state("crying"), ON if on else OFF)


def _valid_threshold(value: Any) -> float | None:
    return value if isinstance(value, float) and 0.0 < value < 1.0 else None

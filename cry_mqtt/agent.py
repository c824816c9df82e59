"""The agent: audio source → pipeline → Home Assistant over MQTT.

The audio loop runs on the main thread; paho's thread only checks commands and hands over the
latest valid value of each setting, so every change of state happens in one place.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from functools import partial
from typing import Any

from cry_mqtt.audio import AudioError, AudioSource, MutedInput
from cry_mqtt.command import rate_judged_within
from cry_mqtt.commands import PRESSES, CommandError, command_parsers
from cry_mqtt.config import Config
from cry_mqtt.detector import Episode
from cry_mqtt.episodes import EpisodeEvidence
from cry_mqtt.homeassistant import (
    OFF,
    ON,
    Topics,
    audio_problem_attributes,
    confidence_attributes,
    crying_attributes,
    discovery_messages,
    episode_attributes,
    memory_attributes,
    night_states,
    percent,
    preset_attributes,
    preset_state,
    switch,
)
from cry_mqtt.memory import Learned, open_memory
from cry_mqtt.model import CryModel
from cry_mqtt.mqtt import MqttLink
from cry_mqtt.pipeline import Pipeline, WindowResult
from cry_mqtt.selftest import TEST_ON_SECONDS, SelfTestError, self_test
from cry_mqtt.state import SavedSettings, threshold_source
from cry_mqtt.stopping import POLL_SECONDS, Shutdown, check_stop
from cry_mqtt.throttle import Throttle

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
NIGHT_CHECK_SECONDS = 30.0


class AgentError(Exception):
    """The agent cannot go on (for example, the broker refused its credentials for a recording)."""


class Agent:
    """Runs the pipeline over an audio source and reports to Home Assistant."""

    def __init__(self, config: Config, model: CryModel, password: str | None) -> None:
        self._config = config
        self._model = model
        self._topics = Topics.from_config(config)
        self._saved = SavedSettings(config.state_path())
        saved = self._saved.load()
        memory = open_memory(config, model)
        learned = (
            None if memory is None else partial(Learned, memory, config.learn.override_seconds)
        )
        self._presets = model.info.presets
        self.preset = self._saved.preset(saved, self._presets)
        """The preset chosen in Home Assistant (None: none yet)."""
        names = [p.name for p in self._presets]
        self._parsers = command_parsers(names)
        self.pipeline = Pipeline(
            model, config.detection, saved.get("threshold"), learned, self.preset
        )
        self.pipeline.paused = saved.get("paused", False)
        self.threshold_source = threshold_source(config, saved, self._saved.path)
        self._evidence = EpisodeEvidence(
            config, model.info.features, model.info.window_seconds, datetime.now()
        )
        self._evidence.recorder.enabled = saved.get("recording", config.record.enabled)
        self._night_due = 0.0
        self._test_off_at: float | None = None
        """When the test's ON ends (monotonic), while one is on."""
        self._commands: dict[str, Any] = {}
        """The latest valid command value of each setting, not yet applied."""
        self._commands_lock = threading.Lock()
        expire_after = round(3 * config.mqtt.state_refresh_seconds)
        self.link = MqttLink(
            config,
            password,
            discovery_messages(config, model.info.version, expire_after, memory is not None, names),
            self._receive_command,
        )
        self._telemetry_due = 0.0
        self._vetoed = 0
        """Windows kept from crying by the memory, as last published."""
        self._peak_prob = 0.0
        self._peak_dbfs = -float("inf")
        self._refresh_due = time.monotonic() + config.mqtt.state_refresh_seconds
        self._episode_started: datetime | None = None
        self._episode: dict[str, Any] = {}
        self._audio_error: str | None = None
        self._heartbeat = config.heartbeat_path()
        self._heartbeat_due = 0.0
        self._heartbeat_failed = Throttle(log, "heartbeat errors", logging.ERROR, burst=1)
        self._repaired_reported = 0
        self._repaired_due = 0.0
        self._live = False
        self._audio_back_seconds = rate_judged_within(config.audio.stall_seconds)
        """Wall seconds a reopened source must stream, from its first audio, before the audio
        problem clears and the restart back-off starts again from its shortest: long enough for
        a camera command at a wrong rate to fail the rate check, or a stalling one to stall, so
        that the problem does not flap OFF and ON at every restart (24 s by default). Crying
        heard clears it at once: the audio works."""
        self._streamed = False
        """The current source has streamed that long, or crying was heard."""
        self._muted = False
        """The audio problem is a muted input's: it clears as soon as there is sound."""

    def run(
        self,
        source: AudioSource,
        reopen: Callable[[], AudioSource] | None = None,
        wait_for_broker: float = 0.0,
    ) -> None:
        """Process ``source`` until it ends or :class:`Shutdown`; always leaves HA consistent.

        With ``reopen``, a failing source is reported as an audio problem and replaced with back-off
        (live audio); without it, an :class:`AudioError` ends the run. ``wait_for_broker`` holds
        recorded input back until the first connection, so that subscribers see every change;
        :class:`AgentError` if none comes: nothing would reach Home Assistant.
        """
        self._live = reopen is not None
        self._publish_settings()
        self._publish_crying(None)
        self._publish_audio_problem(None)
        self._publish_night()
        self.link.start()
        try:
            if wait_for_broker and not self.link.wait_for_broker(wait_for_broker):
                raise AgentError(
                    f"no MQTT connection after {wait_for_broker:.0f} s "
                    f"({self.link.failure_or_silence}): nothing would reach Home Assistant "
                    "(`cry-mqtt score FILE` scores a recording without MQTT)"
                )
            self._supervise(source, reopen)
        except Shutdown as stop:
            log.info("stopping (%s)", stop)
        finally:
            self._end_episode(" (the agent stops)")
            self.link.stop()

    def _supervise(self, source: AudioSource, reopen: Callable[[], AudioSource] | None) -> None:
        backoff = 1.0
        while True:
            self._streamed = False
            try:
                self._listen(source)
                return
            except AudioError as exc:
                if reopen is None:
                    raise
                self._audio_failed(exc)
            if self._streamed:
                backoff = 1.0
            while True:
                log.info("reopening the audio source in %.0f s", backoff)
                self._idle(backoff)
                backoff = min(2 * backoff, self._config.audio.restart_max_seconds)
                try:
                    source = reopen()
                    break
                except AudioError as exc:
                    self._audio_failed(exc)

    def _listen(self, source: AudioSource) -> None:
        windows = 0
        first_audio: float | None = None
        muted = MutedInput(self._model.info.features.sample_rate, self._config.audio.muted_seconds)
        with contextlib.closing(source.blocks()) as blocks:
            for block in blocks:
                now = time.monotonic()
                first_audio = first_audio or now
                if self._live and muted(block):
                    self._input_muted()
                else:
                    self._streamed = self._streamed or now - first_audio >= self._audio_back_seconds
                    if self._streamed or self._muted:
                        self._audio_back()
                self._tick()
                self._evidence.feed(block)
                for result in self.pipeline.push(block):
                    self._report(result)
                    windows += 1
        for result in self.pipeline.finish():
            self._report(result)
            windows += 1
        log.info("end of input: %.1f s of audio, %d windows scored", self.pipeline.now, windows)
        if (short := self.pipeline.too_short(windows)) is not None:
            log.warning("the input was %s", short)

    def _idle(self, seconds: float) -> None:
        """Wait while keeping MQTT commands, state refreshes and the heartbeat going."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            self._tick()
            time.sleep(min(left, POLL_SECONDS))

    def _tick(self) -> None:
        """Housekeeping between audio blocks; :class:`Shutdown` once a stop signal has arrived."""
        check_stop()
        self._apply_commands()
        if self.link.fatal and not self._live:  # live, it retries: the broker may come round
            raise AgentError(self.link.fatal)
        if self._live:
            self.link.remind()
        now = time.monotonic()
        if now >= self._refresh_due:
            self.link.refresh()
            self._refresh_due = now + self._config.mqtt.state_refresh_seconds
        if self._heartbeat is not None and now >= self._heartbeat_due:
            self._heartbeat_due = now + HEARTBEAT_SECONDS
            try:
                self._heartbeat.touch()
            except OSError as exc:
                self._heartbeat_failed(
                    "cannot touch heartbeat file %s: %s", self._heartbeat, exc.strerror
                )
        repaired = self.pipeline.repaired_samples
        if repaired > self._repaired_reported and now >= self._repaired_due:
            log.warning("replaced %d invalid audio samples (NaN, inf or clipped) so far", repaired)
            self._repaired_reported, self._repaired_due = repaired, now + 60
        if self._test_off_at is not None and now >= self._test_off_at:
            self._test_off_at = None
            self._episode["episode_duration_s"] = TEST_ON_SECONDS
            self._publish_crying(None)
        if now >= self._night_due:
            self._night_due = now + NIGHT_CHECK_SECONDS
            if self._evidence.tally.roll(datetime.now()):
                self._publish_night()

    def _audio_failed(self, error: AudioError) -> None:
        """The source failed: tell Home Assistant there is a problem (which makes crying
        unavailable) before anything else, and never leave a stale ON."""
        log.error("audio source failed: %s", error)
        self._publish_audio_problem(str(error))
        self._muted = False
        ended = self.pipeline.restart()
        if ended is not None:
            self._publish_crying(ended, " (the audio failed)")

    def _input_muted(self) -> None:
        if self._audio_error is None:
            seconds = self._config.audio.muted_seconds
            error = (
                f"the input has sent only digital silence (exact zeros) for {seconds:g} s: is "
                "the microphone or the camera muted? (audio.muted_seconds)"
            )
            log.error("%s", error)
            self._publish_audio_problem(error)
            self._muted = True

    def _audio_back(self) -> None:
        """The source works (it streamed long enough, or crying was heard): clear a problem."""
        if self._audio_error is not None:
            log.info("audio is back")
            self._publish_audio_problem(None)
            self._muted = False

    def _end_episode(self, why: str) -> None:
        ended = self.pipeline.detector.reset(self.pipeline.now)
        if ended is not None:
            self._publish_crying(ended, why)

    def _receive_command(self, key: str, payload: bytes) -> None:
        """On paho's thread: a flood of commands, valid or not, never piles up."""
        try:
            value = self._parsers[key](payload)
        except CommandError as exc:
            self.link.reject(str(exc))
            return
        with self._commands_lock:
            self._commands[key] = value

    def _apply_commands(self) -> None:
        with self._commands_lock:
            commands, self._commands = self._commands, {}
        if "preset" in commands:  # before the threshold: the slider fine-tunes a preset
            self.preset = next(p for p in self._presets if p.name == commands["preset"])
            detector = self.pipeline.detector
            detector.apply(self.preset.applied(detector.settings))
            log.info("sensitivity: %s", self.preset.name)
        if "threshold" in commands:
            self.pipeline.detector.set_threshold(commands["threshold"])
            log.info("threshold set to %s %%", percent(self._threshold))
        if "paused" in commands:
            self.pipeline.paused = commands["paused"]
            if self.pipeline.paused:
                self._end_episode(" (detection paused)")
            log.info("detection %s", "paused" if self.pipeline.paused else "resumed")
        if "recording" in commands:
            self._evidence.recorder.enabled = commands["recording"]
            log.info("recording episodes %s", "on" if commands["recording"] else "off")
        if "test" in commands:
            self._test_the_chain()
        for key in commands.keys() & {"not_crying", "forget"}:
            self._learn(key)
        if commands.keys() - PRESSES:
            self._saved.save(
                threshold=self._threshold,
                paused=self.pipeline.paused,
                recording=self._evidence.recorder.enabled,
                **({"preset": self.preset.name} if self.preset else {}),
            )
            self._publish_settings()

    def _learn(self, key: str) -> None:
        """The "That was not crying" and "Forget false alarms" buttons."""
        learned = self.pipeline.learned
        if learned is None:
            log.warning("%s: this agent does not learn false alarms (see its start)", key)
        elif learned.press(forget=key == "forget"):
            learned.memory.save(self._config.memory_path())
            self._publish_memory(learned)

    def _test_the_chain(self) -> None:
        """The "Test the monitor" button: the bundled crying through the real features, model
        and detector; a real ON (``test: true``) follows, and an OFF a few seconds later."""
        if self.pipeline.detector.on or self._test_off_at is not None:
            log.warning("test of the monitor not run: crying is on")
            return
        try:
            episode, _ = self_test(
                self._model, self._config.detection, self._threshold, self.preset
            )
        except SelfTestError as exc:
            log.error("test of the monitor failed: %s", exc)
            return
        log.info("test of the monitor: crying heard (confidence %s %%)", percent(episode.peak))
        started = datetime.now(UTC)
        self._episode = episode_attributes(episode, started, episode.start) | {"test": True}
        self._publish_crying_attributes()
        self.link.publish_state(self._topics.state("crying"), ON, retain=False)
        self._test_off_at = time.monotonic() + TEST_ON_SECONDS

    @property
    def _threshold(self) -> float:
        return self.pipeline.detector.settings.threshold

    def _report(self, result: WindowResult) -> None:
        self._evidence.score(result.t, result.prob, result.columns)
        if (picture := self._evidence.due_picture(result.t, self._threshold)) is not None:
            self.link.publish_state(self._topics.state("last_episode"), picture)
        if result.changed is not None:
            if result.on:  # crying heard: the audio works, whatever the clock says
                self._streamed = True
                self._audio_back()
            self._publish_crying(result.changed)
        self._peak_prob = max(self._peak_prob, result.prob)
        self._peak_dbfs = max(self._peak_dbfs, result.dbfs)
        if result.t >= self._telemetry_due:
            self.link.publish_state(self._topics.state("confidence"), percent(self._peak_prob))
            self.link.publish_state(self._topics.state("sound_level"), f"{self._peak_dbfs:.0f}")
            self._publish_attributes(
                "confidence",
                confidence_attributes(
                    self._model.info.window_seconds,
                    self._config.mqtt.telemetry_seconds,
                    self.pipeline.detector,
                ),
            )
            if (ongoing := self.pipeline.detector.episode) is not None:
                self._episode = episode_attributes(ongoing, self._episode_started, result.t)
                self._episode["clip"] = self._evidence.clip
            self._publish_crying_attributes()
            if (learned := self.pipeline.learned) is not None and learned.vetoed != self._vetoed:
                self._publish_memory(learned)  # windows kept from crying: at this pace at most
            self._peak_prob, self._peak_dbfs = 0.0, -float("inf")
            self._telemetry_due = result.t + self._config.mqtt.telemetry_seconds

    def _publish_settings(self) -> None:
        if self.pipeline.learned is not None:
            self._publish_memory(self.pipeline.learned)
        if self._presets:
            chosen, detector = self.preset and self.preset.name, self.pipeline.detector
            state = preset_state(self._presets, chosen, detector.settings)
            self.link.publish_state(self._topics.state("preset"), state)
            self._publish_attributes("preset", preset_attributes(self._presets, chosen, detector))
        self.link.publish_state(self._topics.state("threshold"), percent(self._threshold))
        self.link.publish_state(self._topics.state("paused"), switch(self.pipeline.paused))
        recording = switch(self._evidence.recorder.enabled)
        self.link.publish_state(self._topics.state("recording"), recording)

    def _publish_memory(self, learned: Learned) -> None:
        self._vetoed = learned.vetoed
        self._publish_attributes("not_crying", memory_attributes(learned))

    def _publish_picture(self) -> None:
        if (picture := self._evidence.picture(self._threshold)) is not None:
            self.link.publish_state(self._topics.state("last_episode"), picture)

    def _publish_night(self) -> None:
        for key, value in night_states(self._evidence.tally.night).items():
            self.link.publish_state(self._topics.state(key), value)

    def _publish_crying(self, episode: Episode | None, why: str = "") -> None:
        """Publish the attributes of ``episode`` (started or ended, ``why`` if not by the
        detector's rule), then the state."""
        if episode is not None:
            if episode.end is None:
                self._test_off_at = None  # real crying outranks a test
                self._episode_started = datetime.now(UTC)
                log.info("crying detected (confidence %s %%)", percent(episode.peak))
                self._evidence.begin(episode.start, datetime.now())
            else:
                log.info("crying stopped after %.0f s%s", episode.duration(episode.end), why)
                self._evidence.end(episode.duration(episode.end), datetime.now())
                self._publish_night()
            at = episode.start if episode.end is None else episode.end
            self._episode = episode_attributes(episode, self._episode_started, at)
            self._episode["clip"] = self._evidence.clip
            self._publish_picture()
        self._publish_crying_attributes()
        on = episode is not None and episode.end is None
        # Not retained: a broker restored from an autosave must not serve a stale ON.
        self.link.publish_state(self._topics.state("crying"), ON if on else OFF, retain=False)

    def _publish_crying_attributes(self) -> None:
        self._publish_attributes(
            "crying",
            crying_attributes(self._model.info.version, self._episode, self.pipeline.detector),
        )

    def _publish_audio_problem(self, error: str | None) -> None:
        self._audio_error = error
        self._publish_attributes("audio_problem", audio_problem_attributes(error))
        self.link.publish_state(self._topics.state("audio_problem"), ON if error else OFF)

    def _publish_attributes(self, key: str, payload: str) -> None:
        self.link.publish_state(self._topics.attributes(key), payload)

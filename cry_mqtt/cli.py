"""Command line: run the agent, score files offline, list devices, check a setup."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import signal
import sys
from pathlib import Path
from typing import Any

from cry_mqtt import __version__, stopping
from cry_mqtt.agent import Agent, AgentError
from cry_mqtt.audio import AudioError, AudioSource
from cry_mqtt.command import CommandSource, Redactor
from cry_mqtt.config import EXIT_CONFIG, Config, ConfigError, keys_set, load_config
from cry_mqtt.detector import Preset
from cry_mqtt.microphone import MicrophoneSource, find_input_device, list_input_devices
from cry_mqtt.model import CryModel, ModelError, default_model_path
from cry_mqtt.mqtt import MqttError, check_connection
from cry_mqtt.pipeline import Pipeline, episodes, votes_hop_warning
from cry_mqtt.recording import FileSource, open_recording
from cry_mqtt.selftest import SelfTestError, self_test
from cry_mqtt.state import SavedSettings, threshold_source
from cry_mqtt.stopping import Shutdown

log = logging.getLogger("cry_mqtt")

EXIT_FAILURE = 1
INPUT_BROKER_WAIT = 10.0
"""Seconds that ``--input`` waits for the broker before it starts reading."""
NO_DEVICES = (
    "no input devices found: PortAudio sees no microphone (in Docker pass --device /dev/snd "
    "--group-add audio; on Home Assistant OS choose it on the add-on's Audio tab). A camera's "
    "audio works with audio.source: command, and `cry-mqtt --input FILE` runs the agent on a "
    "recording"
)
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT)
"""Each stops the agent cleanly: OFF, ``offline``, the audio command ended."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cry-mqtt",
        description="Detect a baby crying and report it to Home Assistant over MQTT.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    parser.add_argument("--config", type=Path, help="YAML configuration file")
    parser.add_argument(
        "--input",
        metavar="FILE",
        help="read this recording (any format FFmpeg reads; '-': standard input, a recording or "
        "raw s16le mono at 16 kHz) instead of the configured source, then exit",
    )
    parser.add_argument(
        "--fast", action="store_true", help="with --input: as fast as possible, not real time"
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    score = commands.add_parser(
        "score", help="score audio files offline and print JSON lines (no MQTT)"
    )
    score.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    score.add_argument("--model", type=Path, help="ONNX model (default: config, then shipped)")
    score.add_argument(
        "files", nargs="+", metavar="FILE", help="recordings FFmpeg reads; '-': standard input"
    )

    devices = commands.add_parser("devices", help="list audio input devices")
    devices.add_argument("--config", type=Path, default=argparse.SUPPRESS)

    check = commands.add_parser("check", help="validate the config, the model and the broker")
    check.add_argument("--config", type=Path, default=argparse.SUPPRESS)
    check.add_argument(
        "--input", metavar="FILE", default=argparse.SUPPRESS, help="check this recording instead"
    )
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of the ``cry-mqtt`` console script."""
    args = build_parser().parse_args(argv)
    try:
        # A recording on the command line stands in for the configured audio source.
        config = load_config(args.config, audio_given=bool(args.input) or args.command == "score")
        logging.basicConfig(
            level=config.log_level,
            format="%(asctime)s %(levelname)s %(name)s: %(message)s",
            stream=sys.stderr,
        )
        if args.command == "score":
            return score(config, args.model, args.files)
        if args.command == "devices":
            print("\n".join(list_input_devices()) or NO_DEVICES)
            return 0
        if args.command == "check":
            return check(config, args.input)
        if args.fast and not args.input:
            print("cry-mqtt: --fast needs --input", file=sys.stderr)
            return EXIT_CONFIG
        if not keys_set(config):  # said first: it means a broker on this machine
            where = (
                "no --config given"
                if args.config is None
                else f"{args.config} sets nothing but defaults"
            )
            audio = "" if args.input else ", the default microphone"
            log.warning(
                "%s: every setting is its default (broker %s:%d%s)",
                where,
                config.mqtt.host,
                config.mqtt.port,
                audio,
            )
        try:
            password = config.mqtt_password()
        except ConfigError as exc:
            raise ConfigError(f"{args.config}: {exc}") from None
        return run(config, args.config, password, args.input, args.fast)
    except Shutdown as stop:  # before the agent ran: nothing to tell Home Assistant
        log.info("stopping (%s)", stop)
        return 0
    except ConfigError as exc:
        print(f"cry-mqtt: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    except (AudioError, ModelError, MqttError, AgentError) as exc:
        print(f"cry-mqtt: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except BrokenPipeError:
        # The reader of stdout has gone (`cry-mqtt score ... | head`): nothing more to say.
        _drop_stdout()
        return EXIT_FAILURE
    except OutputError as exc:
        _drop_stdout()
        print(f"cry-mqtt: {exc}", file=sys.stderr)
        return EXIT_FAILURE


class OutputError(Exception):
    """Standard output cannot be written (a full disk)."""


def _drop_stdout() -> None:
    """Nothing left for Python to fail on when it flushes stdout at exit."""
    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def load_model(config: Config, override: Path | None = None) -> CryModel:
    """The model named on the command line, else in the config, else the shipped one."""
    return CryModel(override or config.model.path or default_model_path(), config.model.threads)


def open_source(config: Config, rate: int, input_path: str | None, fast: bool) -> AudioSource:
    """The audio source: ``--input`` if given, else the configured one."""
    audio = config.audio
    if input_path is not None:
        return open_recording(input_path, rate, not fast, audio.block_seconds)
    if audio.source == "file":
        assert audio.file is not None  # enforced when the config is loaded
        return FileSource(audio.file, rate, True, audio.block_seconds)
    if audio.source == "command":
        assert audio.command is not None
        return CommandSource(
            audio.command,
            rate,
            audio.block_seconds,
            audio.stall_seconds,
            audio.start_seconds,
            Redactor(audio.redact),
        )
    return MicrophoneSource(
        audio.device,
        rate,
        audio.samplerate,
        audio.channels,
        audio.block_seconds,
        audio.buffer_seconds,
        audio.stall_seconds,
        audio.start_seconds,
    )


def _log_where_settings_come_from(path: Path | None, config: Config) -> None:
    """Which settings the file set (the rest are defaults), and where the password comes from."""
    if given := keys_set(config):
        log.info("settings from %s: %s; the rest are defaults", path, ", ".join(given))
    log.info("MQTT password: %s", config.mqtt_password_source())


def _warn_about_votes_hop(config: Config, model: CryModel) -> None:
    warning = votes_hop_warning(config.detection, model.info)
    if warning:
        log.warning(warning)


def run(
    config: Config, path: Path | None, password: str | None, input_path: str | None, fast: bool
) -> int:
    """Run the agent (configured from the file at ``path``) until its input ends or a signal
    arrives."""
    # From here a stop signal is only recorded, and acted on once the agent runs: one raised
    # inside onnxruntime's session creation would surface as an error of its own.
    stopping.install(STOP_SIGNALS)
    model = load_model(config)
    rate = model.info.features.sample_rate
    source = open_source(config, rate, input_path, fast)
    agent = Agent(config, model, password)
    _log_where_settings_come_from(path, config)
    settings = agent.pipeline.detector.settings
    log.info(
        "model %s (version %s), threshold %g (%s), %d of %d windows (%s), hop %.3f s",
        model.path.name,
        model.info.version,
        settings.threshold,
        agent.threshold_source,
        settings.trigger_windows,
        settings.of_windows,
        f"the {agent.preset.name} preset, saved from Home Assistant"
        if agent.preset is not None
        else "the model's"
        if config.detection.trigger_windows is None
        else "detection",
        agent.pipeline.hop_seconds,
    )
    if input_path is not None:
        log.warning(
            "%s plays as the nursery's audio: its states reach the broker, and Home Assistant "
            "automations fire on them as on the microphone's (`cry-mqtt score` publishes nothing)",
            "standard input" if input_path == "-" else input_path,
        )
    _warn_about_votes_hop(config, model)
    stopping.check_stop()  # one that came while the model loaded
    if input_path is not None or config.audio.source == "file":
        agent.run(source, wait_for_broker=INPUT_BROKER_WAIT if input_path else 0.0)
    else:
        agent.run(source, reopen=lambda: open_source(config, rate, None, False))
    return 0


def score(config: Config, model_path: Path | None, files: list[str]) -> int:
    """Score recordings with the agent's pipeline: one JSON line per window and a summary per
    file. A file that cannot be read gets one line on stderr; the others are still scored."""
    model = load_model(config, model_path)
    _warn_about_votes_hop(config, model)
    state = SavedSettings(config.state_path())
    saved = state.load()
    threshold, preset = saved.get("threshold"), state.preset(saved, model.info.presets)
    if threshold is not None:  # not the config's: say so
        source = threshold_source(config, saved, config.state_path())
        log.info("threshold %g (%s), as the agent uses it", threshold, source)
    if preset is not None:
        log.info("sensitivity %s, saved from Home Assistant, as the agent uses it", preset.name)
    rate = model.info.features.sample_rate
    failed = 0
    for name in files:
        try:
            recording = open_recording(name, rate, False, block_seconds=1.0)
            _score_one(model, config, name, recording, threshold, preset)
        except AudioError as exc:
            print(f"cry-mqtt: {exc}", file=sys.stderr)
            failed += 1
    return EXIT_FAILURE if failed else 0


def _score_one(
    model: CryModel,
    config: Config,
    name: str,
    source: AudioSource,
    threshold: float | None,
    preset: Preset | None,
) -> None:
    """Score one recording; ``preset`` and ``threshold`` (saved settings) win over the
    config's."""
    pipeline = Pipeline(model, config.detection, threshold, preset=preset)
    settings = pipeline.detector.settings
    results = list(pipeline.run(source.blocks()))
    for result in results:
        _emit(
            file=name,
            t=round(result.t, 3),
            prob=round(result.prob, 4),
            dbfs=round(result.dbfs, 1),
            state="ON" if result.on else "OFF",
            gated=result.gated,
        )
    found = episodes(results, pipeline.now)
    summary: dict[str, Any] = {
        "file": name,
        "summary": True,
        "seconds": round(pipeline.now, 3),
        "windows": len(results),
        "windows_at_threshold": sum(r.prob >= settings.threshold for r in results),
        "max_prob": round(max((r.prob for r in results), default=0.0), 4),
        "threshold": settings.threshold,
        "votes": f"{settings.trigger_windows} of {settings.of_windows}",
        # What the agent would have reported: the detector's verdict, not the best window's.
        "detected": bool(found),
        "episodes": [{"start": round(start, 3), "end": round(end, 3)} for start, end in found],
    }
    if (short := pipeline.too_short(len(results))) is not None:
        summary["note"] = short
    _emit(**summary)


def _emit(**fields: Any) -> None:
    try:
        print(json.dumps(fields), flush=True)
    except BrokenPipeError:
        raise
    except OSError as exc:
        raise OutputError(f"cannot write to standard output: {exc.strerror}") from exc


def check(config: Config, input_path: str | None = None) -> int:
    """Validate the model, the audio source (``input_path`` if given) and the broker; print what
    is wrong."""
    print("config: ok")
    checks = {
        "model": _check_model,
        "test": _check_test,
        "audio": lambda config: _check_audio(config, input_path),
        "mqtt": _check_mqtt,
    }
    failed = 0
    for name, probe in checks.items():
        try:
            print(f"{name}: ok ({probe(config)})")
        except (ModelError, SelfTestError, AudioError, MqttError, ConfigError) as exc:
            print(f"{name}: FAILED: {exc}")
            failed += 1
    return EXIT_FAILURE if failed else 0


def _check_model(config: Config) -> str:
    model = load_model(config)
    return f"{model.path.name}, version {model.info.version}"


def _check_test(config: Config) -> str:
    """The "Test the monitor" button's test, offline, at the threshold the agent would use."""
    model, state = load_model(config), SavedSettings(config.state_path())
    saved = state.load()
    preset = state.preset(saved, model.info.presets)
    episode, threshold = self_test(model, config.detection, saved.get("threshold"), preset)
    return (
        f"the test recording of crying turned crying on at threshold {threshold:g} "
        f"(confidence {episode.peak:.0%})"
    )


def _check_audio(config: Config, input_path: str | None) -> str:
    audio = config.audio
    if input_path == "-":
        return "standard input (read when the agent runs)"
    if input_path is not None or audio.source == "file":
        recording = Path(input_path) if input_path is not None else audio.file
        assert recording is not None  # enforced when the config is loaded
        source = FileSource(recording, 16000, realtime=False)
        kind = source.format
        for _ in source.blocks():  # decoded to the end, as the agent will: a header is not audio
            pass
        return f"{kind} recording {recording}"
    if audio.source == "microphone":
        return f"input device {find_input_device(audio.device)['name']!r}"
    assert audio.command is not None
    if shutil.which(audio.command[0]) is None:
        raise AudioError(f"audio command not found: {audio.command[0]}")
    return f"command {audio.command[0]!r}"


def _check_mqtt(config: Config) -> str:
    check_connection(config, config.mqtt_password())
    return f"{config.mqtt.host}:{config.mqtt.port}"

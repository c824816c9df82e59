"""Home Assistant add-on start: the add-on's options become the agent's configuration file.

The Supervisor writes what the user set in the add-on's UI to ``/data/options.json``. The options
are nested like the agent's YAML (``audio.source``, ``detection.threshold``, ``device.name``, ...)
and pass through unchanged, except that options left empty mean the agent's default,
``audio.command`` is one line, split as a shell would, and ``detection.threshold`` is a percent
like Home Assistant's threshold slider. When ``mqtt.host`` is empty, the broker comes from the
Supervisor's services API (the Mosquitto broker add-on), with its credentials unless the options
give a username or password: then those are the login, never half of each.

The result is written as a YAML file and loaded with :func:`~cry_mqtt.config.load_config`, so
every rule and every error message is the agent's own; errors name the options file instead.

The add-on's ``run.sh`` runs ``python -m cry_mqtt.addon OPTIONS CONFIG``, then the agent.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import yaml

from cry_mqtt.config import EXIT_CONFIG, Config, ConfigError, load_config
from cry_mqtt.homeassistant import SLIDER_MAX, SLIDER_MIN

SUPERVISOR_URL = "http://supervisor"
TOKEN_ENV = "SUPERVISOR_TOKEN"
MQTT_SERVICE_ADDRESS = ("host", "port")
MQTT_SERVICE_LOGIN = ("username", "password")
"""What the Supervisor's MQTT service fills in where the options leave it empty: the address,
and the login unless the options give one."""
SUPERVISOR_TIMEOUT = 10.0
MEDIA_FOLDER = Path("/media/cry-mqtt")
"""Where the add-on records episodes: Home Assistant's media folder (``map: media:rw``), which
its media browser plays."""


def mqtt_service(supervisor: str, token: str | None) -> dict[str, Any]:
    """The Supervisor's MQTT service: ``host``, ``port``, ``ssl``, ``username``, ``password``."""
    if not token:
        raise ConfigError(f"mqtt.host: empty, and there is no {TOKEN_ENV} to ask the Supervisor")
    request = urllib.request.Request(
        f"{supervisor}/services/mqtt", headers={"Authorization": f"Bearer {token}"}
    )
    try:
        with urllib.request.urlopen(request, timeout=SUPERVISOR_TIMEOUT) as response:
            answer = json.load(response)
    except urllib.error.HTTPError as exc:
        raise ConfigError(
            f"mqtt.host: empty, and the Supervisor offers no MQTT service ({_message(exc)}); "
            "install the Mosquitto broker add-on or set mqtt.host"
        ) from None
    except (OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)  # URLError wraps the socket's error
        message = f"mqtt.host: empty, and no answer from the Supervisor: {reason}"
        raise ConfigError(message) from None
    data = answer.get("data") if isinstance(answer, dict) else None
    if not isinstance(data, dict) or "host" not in data:
        raise ConfigError(
            f"mqtt.host: empty, and the Supervisor's answer has no broker: {_shape(answer)}"
        )
    return data


def _shape(answer: Any) -> str:
    """The keys of a Supervisor answer without its values, which may hold the broker's
    password."""
    if not isinstance(answer, dict):
        return f"a {type(answer).__name__}, not a mapping"
    data = answer.get("data")
    if isinstance(data, dict) and data:
        keys = [k for k in answer if k != "data"] + [f"data.{k}" for k in data]
    else:
        keys = list(answer)
    return "keys " + (", ".join(sorted(keys)) or "none")


def _message(error: urllib.error.HTTPError) -> str:
    """The ``message`` of a Supervisor error answer, else the HTTP status."""
    try:
        return str(json.loads(error.read())["message"])
    except (ValueError, KeyError, TypeError):
        return f"HTTP {error.code}"


def agent_config(options: dict[str, Any], supervisor: str, token: str | None) -> dict[str, Any]:
    """The agent's configuration, as a mapping like its YAML, from the add-on's options."""
    config = _without_empty(options)
    audio = config.get("audio")
    if isinstance(audio, dict) and isinstance(audio.get("command"), str):
        try:
            audio["command"] = shlex.split(audio["command"])
        except ValueError as exc:
            raise ConfigError(f"audio.command: {exc}") from None
    detection = config.get("detection")
    if isinstance(detection, dict) and "threshold" in detection:
        detection["threshold"] = _probability(detection["threshold"])
    record = config.setdefault("record", {})
    if isinstance(record, dict):
        record.setdefault("folder", str(MEDIA_FOLDER))
    mqtt = config.setdefault("mqtt", {})
    if isinstance(mqtt, dict) and "host" not in mqtt:
        service = mqtt_service(supervisor, token)
        own_login = any(key in mqtt for key in MQTT_SERVICE_LOGIN)
        for key in MQTT_SERVICE_ADDRESS + (() if own_login else MQTT_SERVICE_LOGIN):
            if key in service:
                mqtt.setdefault(key, service[key])
        if service.get("ssl"):
            mqtt["tls"] = {"enabled": True}
    return config


def _probability(percent: Any) -> Any:
    """The add-on's threshold in percent as the agent's probability (other types pass on, for
    the agent's own type error)."""
    if not isinstance(percent, int | float) or isinstance(percent, bool):
        return percent
    if not SLIDER_MIN <= percent <= SLIDER_MAX:
        raise ConfigError(
            f"detection.threshold: a percent, {SLIDER_MIN}-{SLIDER_MAX}, got {percent}"
        )
    return percent / 100


def _without_empty(value: Any) -> Any:
    """``value`` without the text options left empty (""): they mean the agent's default."""
    if isinstance(value, dict):
        return {k: _without_empty(v) for k, v in value.items() if v != ""}
    return value


def write_config(
    options_path: Path, config_path: Path, supervisor: str, token: str | None
) -> Config:
    """Write the agent's configuration for the add-on's options and load it as the agent will."""
    try:
        options = json.loads(options_path.read_text())
    except OSError as exc:
        raise ConfigError(f"{options_path}: cannot read: {exc.strerror}") from exc
    except ValueError as exc:
        raise ConfigError(f"{options_path}: not valid JSON: {exc}") from exc
    if not isinstance(options, dict):
        raise ConfigError(f"{options_path}: top level: expected a mapping")
    try:
        config = agent_config(options, supervisor, token)
    except ConfigError as exc:
        raise ConfigError(f"{options_path}: {exc}") from None
    # The file may hold the broker's password: only the add-on's user reads it.
    fd = os.open(config_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with open(fd, "w") as file:
        yaml.safe_dump(config, file, sort_keys=False)
    try:
        return load_config(config_path)
    except ConfigError as exc:
        raise ConfigError(f"{options_path}: {str(exc).removeprefix(f'{config_path}: ')}") from None


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``python -m cry_mqtt.addon``: exit 0, or 2 with one line on stderr."""
    parser = argparse.ArgumentParser(
        prog="python -m cry_mqtt.addon",
        description="Write the agent's configuration for the Home Assistant add-on's options.",
    )
    parser.add_argument("options", type=Path, help="the add-on's options (/data/options.json)")
    parser.add_argument("config", type=Path, help="the agent's configuration file to write")
    parser.add_argument(
        "--supervisor", default=SUPERVISOR_URL, help=f"Supervisor API (default {SUPERVISOR_URL})"
    )
    args = parser.parse_args(argv)
    try:
        write_config(args.options, args.config, args.supervisor, os.environ.get(TOKEN_ENV))
    except ConfigError as exc:
        print(f"cry-mqtt: config error: {exc}", file=sys.stderr)
        return EXIT_CONFIG
    return 0


if __name__ == "__main__":
    sys.exit(main())

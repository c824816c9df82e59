"""The add-on repository's files against the Supervisor's rules and against the agent."""

import dataclasses
import os
import re
import struct
import subprocess
import tomllib

import yaml
from addon_support import (
    ADDON,
    DOCKER_IMAGE_BUILD,
    SCHEMA_ELEMENT,
    addon_config,
    leaves,
    validate_options,
)
from support import REPO

import cry_mqtt
from cry_mqtt.config import Config

# supervisor/addons/validate.py: the keys of an add-on's config (others are dropped silently),
# the architectures (ARCH_ALL) and the services an add-on may use.
SUPERVISOR_KEYS = {
    *("name", "version", "slug", "description", "arch", "machine", "url", "startup", "boot"),
    *("init", "advanced", "stage", "ports", "ports_description", "watchdog", "webui"),
    *("ingress", "ingress_port", "ingress_entry", "ingress_stream", "panel_icon", "panel_title"),
    *("panel_admin", "homeassistant", "host_network", "host_pid", "host_ipc", "host_uts"),
    *("host_dbus", "devices", "udev", "tmpfs", "map", "environment", "privileged", "apparmor"),
    *("full_access", "audio", "video", "gpio", "usb", "uart", "devicetree", "kernel_modules"),
    *("realtime", "hassio_api", "hassio_role", "homeassistant_api", "stdin", "legacy"),
    *("docker_api", "auth_api", "services", "discovery", "backup_exclude", "backup_pre"),
    *("backup_post", "backup", "options", "schema", "image", "ulimits", "timeout", "journald"),
    "breaking_versions",
}
ARCHES = {"aarch64", "amd64", "armhf", "armv7", "i386"}
SERVICE = re.compile(r"^(?P<service>mqtt|mysql):(?P<rights>provide|want|need)$")


def test_config_follows_the_supervisors_rules():
    config = addon_config()
    assert set(config) <= SUPERVISOR_KEYS, set(config) - SUPERVISOR_KEYS
    for key in ("name", "version", "slug", "description"):
        assert isinstance(config[key], str) and config[key], key
    assert re.fullmatch(r"[a-z0-9_]+", config["slug"])
    assert re.fullmatch(r"\d+\.\d+\.\d+", config["version"])
    assert config["arch"] and set(config["arch"]) <= ARCHES
    assert config["startup"] in {"initialize", "system", "services", "application", "once"}
    assert config["boot"] in {"auto", "manual", "manual_only"}
    assert config["init"] is False  # the base image's s6-overlay v3 is the init
    assert config["audio"] is True
    assert config["services"] == ["mqtt:want"]
    assert all(SERVICE.match(service) for service in config["services"])


def test_schema_uses_the_supervisors_types_at_most_two_levels_deep():
    for path, typ in leaves(addon_config()["schema"]).items():
        assert path.count(".") <= 1, path
        assert isinstance(typ, str) and SCHEMA_ELEMENT.match(typ), (path, typ)


def test_defaults_pass_the_supervisors_validation_and_only_required_options_have_one():
    config = addon_config()
    validate_options(config["schema"], config["options"])
    schema, options = leaves(config["schema"]), leaves(config["options"])
    # An optional option must have no default: with one, the Supervisor makes it required.
    assert set(options) == {path for path, typ in schema.items() if not typ.endswith("?")}


def _field(path: str) -> dataclasses.Field:
    cls, *parents, name = [Config, *path.split(".")]
    for parent in parents:
        cls = {f.name: f for f in dataclasses.fields(cls)}[parent].default_factory
    return {f.name: f for f in dataclasses.fields(cls)}[name]


def _default(path: str):
    value = Config()
    for part in path.split("."):
        value = getattr(value, part)
    return value


def test_every_option_is_a_key_of_the_agents_config_with_its_default():
    config = addon_config()
    for path in leaves(config["schema"]):
        assert _field(path).name == path.rpartition(".")[2]
    for path, value in leaves(config["options"]).items():
        assert value == _default(path), path


def test_every_option_has_a_translation_and_every_translation_an_option():
    translations = yaml.safe_load((ADDON / "translations" / "en.yaml").read_text())

    def check(schema: dict, entries: dict) -> None:
        assert set(entries) == set(schema)
        for key, entry in entries.items():
            assert isinstance(entry["name"], str) and entry["name"], key
            assert isinstance(entry["description"], str) and entry["description"], key
            if isinstance(schema[key], dict):
                check(schema[key], entry["fields"])
            else:
                assert "fields" not in entry, key

    check(addon_config()["schema"], translations["configuration"])


def test_docs_list_every_option_with_the_agents_default():
    rows = re.findall(r"^\| `([\w.]+)` \| ([^|]+) \|", (ADDON / "DOCS.md").read_text(), re.M)
    documented = {path: default.strip() for path, default in rows}
    assert set(documented) == set(leaves(addon_config()["schema"]))
    for path, shown in documented.items():
        if not path.startswith("mqtt."):  # those default to the Mosquitto add-on's
            default = _default(path)
            assert shown == ("empty" if default is None else str(default)), path


def test_version_comes_from_the_package():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert "version" in project["project"]["dynamic"]
    assert project["tool"]["setuptools"]["dynamic"]["version"] == {"attr": "cry_mqtt.__version__"}
    assert addon_config()["version"] == cry_mqtt.__version__
    changelog = (ADDON / "CHANGELOG.md").read_text()
    assert re.search(r"^## (\S+)", changelog, re.M).group(1) == cry_mqtt.__version__


def test_image_builds_on_debian_from_the_add_on_folder_alone():
    arches = set(addon_config()["arch"])
    build_from = yaml.safe_load((ADDON / "build.yaml").read_text())["build_from"]
    assert set(build_from) == arches
    for arch, image in build_from.items():
        assert DOCKER_IMAGE_BUILD.match(image)
        assert image.startswith(f"ghcr.io/home-assistant/{arch}-base-debian:"), image
    dockerfile = (ADDON / "Dockerfile").read_text()
    assert re.search(r"^ARG BUILD_FROM\nFROM \$\{BUILD_FROM\}$", dockerfile, re.M)
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.M):
        *sources, _ = line.split()
        assert all((ADDON / source).is_file() for source in sources), line
    # The package is the wheel published with the release of the add-on's version (a build
    # argument may name another), not a copy of it in the add-on's folder.
    wheel = "cry_mqtt-${BUILD_VERSION}-py3-none-any.whl"
    release = f"{addon_config()['url']}/releases/download/v${{BUILD_VERSION}}/{wheel}"
    assert f"ARG CRY_MQTT_WHEEL={release}\n" in dockerfile
    assert '"cry-mqtt @ ${CRY_MQTT_WHEEL}"' in dockerfile and not (ADDON / "cry_mqtt").exists()
    for package in ("libportaudio2", "libasound2-plugins", "ffmpeg"):
        assert re.search(rf"\s{package}\s", dockerfile), package
    assert "XDG_STATE_HOME=/data" in dockerfile
    assert 'CMD ["/run.sh"]' in dockerfile


def _healthcheck(dockerfile: str) -> str:
    """A Dockerfile's HEALTHCHECK instruction, continuation lines included."""
    return re.search(r"^HEALTHCHECK (?:.*\\\n)*.*$", dockerfile, re.M).group()


def test_the_supervisors_watchdog_sees_a_stalled_agent():
    # The Supervisor's watchdog restarts an add-on that exits or whose health check fails; the
    # check is the root image's, on the heartbeat the audio loop touches.
    dockerfile = (ADDON / "Dockerfile").read_text()
    heartbeat = re.search(r"CRY_MQTT_HEARTBEAT_FILE=(\S+)", dockerfile).group(1)
    healthcheck = _healthcheck(dockerfile)
    assert healthcheck == _healthcheck((REPO / "Dockerfile").read_text())
    assert heartbeat in healthcheck and "-mmin -1" in healthcheck
    assert "**Watchdog**" in (ADDON / "DOCS.md").read_text()


def test_start_script_writes_the_config_the_agent_then_reads():
    script = ADDON / "run.sh"
    assert os.access(script, os.X_OK)
    text = script.read_text()
    written = re.search(r"^python3 -m cry_mqtt\.addon /data/options\.json (\S+)$", text, re.M)
    assert written, text
    assert f"\nexec cry-mqtt --config {written.group(1)}\n" in text
    assert text.startswith("#!/usr/bin/with-contenv bash\n") and "\nset -e\n" in text


def test_repository_holds_one_add_on():
    repository = yaml.safe_load((REPO / "repository.yaml").read_text())
    assert isinstance(repository["name"], str) and repository["name"]
    # The Supervisor takes every config.{json,yaml,yml} outside dot-folders and rootfs for an
    # add-on's.
    tracked = subprocess.run(
        ["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split()
    configs = [
        path
        for path in tracked
        if re.search(r"(^|/)config\.(json|yaml|yml)$", path)
        and not any(part.startswith(".") or part == "rootfs" for part in path.split("/"))
    ]
    assert configs == ["addon/config.yaml"]


def test_icon_is_a_square_png():
    data = (ADDON / "icon.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width == height == 128

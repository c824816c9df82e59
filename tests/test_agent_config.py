from pathlib import Path

import pytest
from support import REPO

from cry_mqtt.cli import main
from cry_mqtt.config import PASSWORD_ENV, Config, ConfigError, load_config


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_example_documents_every_key_with_its_default():
    assert load_config(REPO / "config.example.yaml") == Config()


def test_required_key_names_and_defaults():
    config = Config()
    assert (config.mqtt.host, config.mqtt.port) == ("localhost", 1883)
    assert config.mqtt.discovery_prefix == "homeassistant"
    assert config.mqtt.base_topic == "cry_mqtt"
    assert config.mqtt.username is None and config.mqtt.tls.insecure is False
    assert config.model.path is None


def test_values_are_typed_and_paths_relative_to_the_file(tmp_path):
    path = write(
        tmp_path,
        "mqtt: {host: broker.lan, port: 8883, tls: {ca_certs: certs/ca.pem}}\n"
        "detection: {hop_seconds: 1, gate_dbfs: -50}\n"
        "audio: {device: 3}\nmodel: {path: /models/m.onnx}\n",
    )
    config = load_config(path)
    assert config.mqtt.port == 8883
    assert config.mqtt.tls.ca_certs == tmp_path / "certs" / "ca.pem"
    assert config.detection.hop_seconds == 1.0 and isinstance(config.detection.hop_seconds, float)
    assert config.audio.device == 3
    assert config.model.path == Path("/models/m.onnx")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mqtt: {hots: x}", "unknown key 'mqtt.hots' (did you mean 'mqtt.host'?)"),
        ("mqtt: {tls: {verify: true}}", "unknown key 'mqtt.tls.verify'"),
        ("colour: red", "unknown key 'colour'"),
        ("mqtt: {port: '1883'}", "mqtt.port: expected an integer"),
        ("mqtt: {port: 70000}", "mqtt.port: must be <= 65535"),
        ("mqtt: {tls: {insecure: 1}}", "mqtt.tls.insecure: expected true or false"),
        ("detection: {hop_seconds: 0.1}", "detection.hop_seconds: must be >= 0.25"),
        ("detection: {threshold: yes}", "detection.threshold: expected a number"),
        ("detection: {trigger_windows: 6, of_windows: 5}", "must not exceed detection.of_windows"),
        ("detection: {trigger_windows: 2}", "set it and detection.of_windows together"),
        ("detection: {of_windows: 4}", "of_windows: set it and detection.trigger_windows together"),
        ("audio: {source: usb}", "audio.source: must be one of microphone, file, command"),
        ("audio: {source: command}", "audio.command: required"),
        ("audio: {command: [ffmpeg, 3]}", "audio.command[1]: expected a string"),
        ("device: {instance_id: 'kid room'}", "device.instance_id: use only letters"),
        ("mqtt: {base_topic: 'a/#'}", "mqtt.base_topic: not a valid topic prefix"),
        ("mqtt: [1, 2]", "mqtt: expected a mapping"),
        ("mqtt: {password: a, password_file: b}", "either password or password_file"),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}: ")
    assert message in str(error.value)


@pytest.mark.parametrize(
    ("text", "where", "message"),
    [
        ("mqtt: {host: [", ":1:15: ", "not valid YAML: expected the node content"),
        ("mqtt:\n  host: a\n port: 1\n", ":3:2: ", "not valid YAML: expected <block end>"),
        ("audio:\n\t- b\n", ":2:1: ", "not valid YAML: found character '\\t'"),
        ("a: [1,\nb: 2\n", ":3:1: ", "(while parsing a flow sequence that began on line 1)"),
    ],
)
def test_yaml_errors_are_one_line_with_line_and_column(tmp_path, text, where, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert str(error.value).startswith(f"{path}{where}")
    assert message in str(error.value) and "\n" not in str(error.value)


def test_a_recording_on_the_command_line_stands_in_for_the_audio_source(tmp_path):
    path = write(tmp_path, "audio: {source: file}")
    with pytest.raises(ConfigError, match=r"audio\.file: required"):
        load_config(path)
    assert load_config(path, audio_given=True).audio.source == "file"


def test_cli_exits_2_with_one_line(tmp_path, capsys):
    path = write(tmp_path, "mqtt: {prot: 1}")
    assert main(["--config", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0
    assert str(path) in err and "mqtt.prot" in err


def test_missing_file_is_a_config_error(tmp_path, capsys):
    assert main(["check", "--config", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_password_from_file_environment_or_config(tmp_path, monkeypatch):
    monkeypatch.delenv(PASSWORD_ENV, raising=False)
    secret = tmp_path / "secret"
    secret.write_text("s3cret\n")
    assert load_config(write(tmp_path, "mqtt: {password_file: secret}")).mqtt_password() == "s3cret"
    config = load_config(write(tmp_path, "mqtt: {password: inline}"))
    assert config.mqtt_password() == "inline"
    monkeypatch.setenv(PASSWORD_ENV, "from-env")
    assert config.mqtt_password() == "from-env"
    assert "inline" not in repr(config)


def test_state_file_defaults_per_instance(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path))
    config = load_config(write(tmp_path, "device: {instance_id: twins}"))
    assert config.state_path() == tmp_path / "cry-mqtt" / "twins.json"


@pytest.mark.parametrize(
    "key",
    [
        "detection.threshold",
        "detection.cooldown_seconds",
        "detection.hop_seconds",
        "audio.block_seconds",
        "mqtt.state_refresh_seconds",
        "mqtt.reconnect_max_seconds",
    ],
)
@pytest.mark.parametrize("value", [".nan", ".inf", "-.inf"])
def test_nan_and_infinity_are_refused(tmp_path, key, value):
    section, name = key.split(".")
    path = write(tmp_path, f"{section}: {{{name}: {value}}}")
    with pytest.raises(ConfigError, match=rf"{key}: expected a finite number \(got -?(nan|inf)\)"):
        load_config(path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("mqtt: {password: 31337999}", "mqtt.password: expected a string (got an integer)"),
        ("mqtt: {password: [31337999]}", "mqtt.password: expected a string (got a list)"),
        (
            "audio: {command: 'ffmpeg -i rtsp://admin:31337999@cam/stream'}",
            "audio.command: expected a list (got a string)",
        ),
        ("audio: {command: [ffmpeg, [31337999]]}", "audio.command[1]: expected a string (got a"),
        ("audio: {redact: '31337999'}", "audio.redact: expected a list (got a string)"),
        ("audio: {redact: [31337999]}", "audio.redact[0]: expected a string (got an integer)"),
        (
            "mqtt:\n  password: *31337999\n",
            ":2:13: not valid YAML: found undefined alias (a value that starts with '*' must "
            "be quoted; not shown: it may be a password)",
        ),
        (
            "mqtt:\n  password: !31337999\n",
            ":2:13: not valid YAML: could not determine a constructor for the tag (a value that "
            "starts with '!' must be quoted; not shown: it may be a password)",
        ),
    ],
)
def test_errors_never_show_a_secret_value(tmp_path, text, message):
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as error:
        load_config(path)
    assert message in str(error.value) and "31337999" not in str(error.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("device: {name: bébé}\n".encode("latin-1"), ":1:17: not UTF-8 text (byte 0xe9)"),
        ("log_level: INFO\ndevice: {name: bébé}\n".encode("latin-1"), ":2:17: not UTF-8 text"),
        ("device: {name: bébé}\n".encode("utf-16"), ":1:1: not UTF-8 text (byte 0xff)"),
        (b"mqtt:\n  port: 1884\n  host: a\n  port: 1885\n", ":4:3: not valid YAML: duplicate key"),
        (b"mqtt: {port: 1884, port: 1885}\n", ":1:20: not valid YAML: duplicate key 'port'"),
    ],
)
def test_text_that_is_not_utf8_or_repeats_a_key_is_one_line(tmp_path, capsys, content, message):
    path = tmp_path / "config.yaml"
    path.write_bytes(content)
    assert main(["check", "--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"cry-mqtt: config error: {path}{message}") and err.count("\n") == 1


def test_a_byte_order_mark_and_an_overriding_merge_key_are_fine(tmp_path):
    path = tmp_path / "config.yaml"
    path.write_bytes("\ufeffmqtt:\n  <<: {host: a, port: 1883}\n  port: 1884\n".encode())
    assert (load_config(path).mqtt.host, load_config(path).mqtt.port) == ("a", 1884)

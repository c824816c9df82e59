"""The add-on's options become the agent's config; the broker comes from the Supervisor."""

import copy
import json
import os
import stat
from pathlib import Path

import pytest
import yaml
from addon_support import FakeSupervisor, addon_config, write_agent_config, write_options
from support import Broker, free_port

from cry_mqtt.addon import TOKEN_ENV, main, write_config
from cry_mqtt.config import Config, ConfigError
from cry_mqtt.mqtt import check_connection

TOKEN = "supervisor-token-for-this-add-on"
MOSQUITTO = {
    "host": "core-mosquitto",
    "port": 1883,
    "ssl": False,
    "protocol": "3.1.1",
    "username": "addons",
    "password": "from-the-supervisor",
}


@pytest.fixture(autouse=True)
def environment(tmp_path, monkeypatch):
    """As in the add-on's container: the Supervisor's token, live settings under /data."""
    monkeypatch.setenv(TOKEN_ENV, TOKEN)
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "data"))


def defaults() -> dict:
    """What the Supervisor writes to /data/options.json before the user changes anything."""
    return copy.deepcopy(addon_config()["options"])


def translate(tmp_path, options: dict, supervisor: FakeSupervisor) -> Config:
    path = write_options(tmp_path / "options.json", options)
    return write_config(path, tmp_path / "cry-mqtt.yaml", supervisor.url, os.environ[TOKEN_ENV])


def test_untouched_options_run_the_agent_defaults_on_the_mosquitto_add_on(tmp_path, supervisor):
    supervisor.broker(**MOSQUITTO)
    config = translate(tmp_path, defaults(), supervisor)
    assert supervisor.requests == [("/services/mqtt", f"Bearer {TOKEN}")]
    assert (config.mqtt.host, config.mqtt.port) == ("core-mosquitto", 1883)
    assert config.mqtt.username == "addons"
    assert config.mqtt_password() == "from-the-supervisor"
    assert config.mqtt.tls.enabled is False
    assert (config.audio, config.detection, config.device) == (
        Config().audio,
        Config().detection,
        Config().device,
    )
    assert config.state_path() == tmp_path / "data" / "cry-mqtt" / "nursery.json"
    # Episodes go where Home Assistant's media browser plays them (the add-on maps media:rw).
    assert config.record_folder() == Path("/media/cry-mqtt") and config.record.enabled
    assert config.night == Config().night
    written = tmp_path / "cry-mqtt.yaml"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600  # it holds the broker's password


def test_options_set_in_the_ui_reach_the_agent(tmp_path, supervisor):
    options = defaults()
    options["audio"] = {
        "source": "command",
        "command": 'ffmpeg -loglevel error -i "rtsp://u:p w@cam/live" -ac 1 -ar 16000 -f s16le -',
    }
    options["detection"] = {"threshold": 62, "gate_dbfs": -50, "trigger_windows": 2}
    options["detection"].update(of_windows=4, hold_seconds=20, cooldown_seconds=30.5)
    options["device"] = {"instance_id": "twins", "name": "Twins' room", "entity_prefix": "twins"}
    options["mqtt"] = {"host": "broker.lan", "port": 8883, "username": "me", "password": "pw"}
    options["log_level"] = "DEBUG"
    config = translate(tmp_path, options, supervisor)
    assert config.audio.source == "command"
    assert config.audio.command == [
        "ffmpeg",
        "-loglevel",
        "error",
        "-i",
        "rtsp://u:p w@cam/live",
        *["-ac", "1", "-ar", "16000", "-f", "s16le", "-"],
    ]
    detection = config.detection
    assert (detection.threshold, detection.gate_dbfs) == (0.62, -50.0)
    assert (detection.trigger_windows, detection.of_windows) == (2, 4)
    assert (detection.hold_seconds, detection.cooldown_seconds) == (20.0, 30.5)
    assert config.device.name == "Twins' room" and config.log_level == "DEBUG"
    assert config.state_path() == tmp_path / "data" / "cry-mqtt" / "twins.json"
    # A broker of the user's own: the Supervisor is not asked, nothing of its service is mixed in.
    assert supervisor.requests == []
    assert (config.mqtt.host, config.mqtt.port, config.mqtt.username) == ("broker.lan", 8883, "me")
    assert config.mqtt_password() == "pw"


def test_options_left_empty_mean_the_default(tmp_path, supervisor):
    supervisor.broker(**MOSQUITTO)
    options = defaults()
    options["audio"].update(device="", command="")
    options["mqtt"] = {"host": "", "username": "parent", "password": "mine"}
    config = translate(tmp_path, options, supervisor)
    assert config.audio.device is None and config.audio.command is None
    # Credentials of the user's own on the Mosquitto add-on's broker.
    assert (config.mqtt.host, config.mqtt.username) == ("core-mosquitto", "parent")
    assert config.mqtt_password() == "mine"


def test_a_broker_with_tls_enables_it(tmp_path, supervisor):
    supervisor.broker(host="core-mosquitto", port=8883, ssl=True)
    config = translate(tmp_path, defaults(), supervisor)
    assert config.mqtt.tls.enabled is True and config.mqtt.port == 8883
    assert config.mqtt.username is None and config.mqtt_password() is None


def test_the_supervisors_broker_accepts_the_written_config(tmp_path, supervisor):
    broker = Broker(tmp_path, anonymous=False, users={"addons": "s3"}).start()
    try:
        supervisor.broker(host="127.0.0.1", port=broker.port, username="addons", password="s3")
        config = translate(tmp_path, defaults(), supervisor)
        check_connection(config, config.mqtt_password())
    finally:
        broker.stop()


def change(options: dict, path: str, value) -> dict:
    section, _, key = path.rpartition(".")
    (options[section] if section else options)[key] = value
    return options


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("detection.gate_dbfs", 3.0, "detection.gate_dbfs: must be <= 0.0 (got 3.0)"),
        ("detection.trigger_windows", 0, "detection.trigger_windows: must be >= 1 (got 0)"),
        ("detection.trigger_windows", 2, "set it and detection.of_windows together"),
        ("detection.hold_seconds", -1.0, "detection.hold_seconds: must be >= 0.0 (got -1.0)"),
        ("device.instance_id", "kid room", "device.instance_id: use only letters, digits"),
        ("device.entity_prefix", "baby.1", "device.entity_prefix: use only letters, digits"),
        ("audio.source", "command", "audio.command: required when audio.source is 'command'"),
        ("audio.command", 'ffmpeg -i "rtsp://cam', "audio.command: No closing quotation"),
    ],
)
def test_a_bad_option_stops_the_add_on_with_one_line_naming_it(
    tmp_path, supervisor, capsys, path, value, message
):
    supervisor.broker(**MOSQUITTO)
    options = write_options(tmp_path / "options.json", change(defaults(), path, value))
    argv = [str(options), str(tmp_path / "cry-mqtt.yaml"), "--supervisor", supervisor.url]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1
    assert err.startswith(f"cry-mqtt: config error: {options}: ")
    assert message in err


def test_options_the_agent_does_not_know_are_errors_like_unknown_keys(tmp_path, supervisor):
    # The Supervisor keeps options of an older version of the add-on in options.json.
    supervisor.broker(**MOSQUITTO)
    options = tmp_path / "options.json"
    options.write_text(json.dumps(change(defaults(), "detection.treshold", 0.5)))
    with pytest.raises(ConfigError) as error:
        write_config(options, tmp_path / "cry-mqtt.yaml", supervisor.url, TOKEN)
    assert str(error.value) == (
        f"{options}: unknown key 'detection.treshold' (did you mean 'detection.threshold'?)"
    )


@pytest.mark.parametrize(
    ("text", "message"), [("", "not valid JSON"), ("[1]", "top level: expected a mapping")]
)
def test_an_unreadable_options_file_is_one_line(tmp_path, supervisor, text, message):
    options = tmp_path / "options.json"
    options.write_text(text)
    with pytest.raises(ConfigError, match=message):
        write_config(options, tmp_path / "cry-mqtt.yaml", supervisor.url, TOKEN)
    with pytest.raises(ConfigError, match="cannot read"):
        write_config(tmp_path / "none.json", tmp_path / "cry-mqtt.yaml", supervisor.url, TOKEN)


def test_without_the_mosquitto_add_on_the_error_says_what_to_do(tmp_path, supervisor):
    supervisor.refuse(400, "Service not enabled")
    with pytest.raises(ConfigError) as error:
        translate(tmp_path, defaults(), supervisor)
    assert str(error.value) == (
        f"{tmp_path / 'options.json'}: mqtt.host: empty, and the Supervisor offers no MQTT "
        "service (Service not enabled); install the Mosquitto broker add-on or set mqtt.host"
    )


def test_an_answer_without_a_broker_is_an_error_that_shows_no_password(tmp_path, supervisor):
    data = {"username": "addons", "password": "Ohr5eiph"}
    supervisor.status, supervisor.answer = 200, {"result": "ok", "data": data}
    with pytest.raises(ConfigError) as error:
        translate(tmp_path, defaults(), supervisor)
    assert str(error.value).endswith(
        "mqtt.host: empty, and the Supervisor's answer has no broker: "
        "keys data.password, data.username, result"
    )
    supervisor.answer = ["Ohr5eiph"]
    with pytest.raises(ConfigError) as error:
        translate(tmp_path, defaults(), supervisor)
    assert str(error.value).endswith("has no broker: a list, not a mapping")


def test_no_token_or_no_supervisor_is_an_error(tmp_path, supervisor):
    options = write_options(tmp_path / "options.json", defaults())
    config = tmp_path / "cry-mqtt.yaml"
    with pytest.raises(ConfigError) as error:
        write_config(options, config, supervisor.url, None)
    assert f"mqtt.host: empty, and there is no {TOKEN_ENV}" in str(error.value)
    nobody = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConfigError) as error:
        write_config(options, config, nobody, TOKEN)
    assert "mqtt.host: empty, and no answer from the Supervisor: " in str(error.value)
    assert supervisor.requests == []


def test_module_entry_point_writes_the_config(tmp_path, supervisor):
    supervisor.broker(**MOSQUITTO)
    options = write_options(tmp_path / "options.json", defaults())
    config = tmp_path / "cry-mqtt.yaml"
    run = write_agent_config(options, config, supervisor.url)
    assert run.returncode == 0 and run.stderr == "", run.stderr
    assert yaml.safe_load(config.read_text())["mqtt"]["host"] == "core-mosquitto"


def test_the_threshold_is_a_percent_like_the_slider(tmp_path, supervisor):
    supervisor.broker(**MOSQUITTO)
    assert addon_config()["schema"]["detection"]["threshold"] == "float(1,99)?"
    options = defaults()
    options["detection"] = {"threshold": 35.5}
    assert translate(tmp_path, options, supervisor).detection.threshold == 0.355
    # Past the Supervisor's own check (an options file written by hand): one line, in percent.
    path = tmp_path / "options.json"
    path.write_text(json.dumps({**defaults(), "detection": {"threshold": 0.6}}))
    with pytest.raises(ConfigError, match=r"detection\.threshold: a percent, 1-99, got 0\.6$"):
        write_config(path, tmp_path / "cry-mqtt.yaml", supervisor.url, TOKEN)


@pytest.mark.parametrize("login", [{"username": "parent"}, {"password": "mine"}])
def test_a_login_of_the_users_own_is_never_mixed_with_the_supervisors(tmp_path, supervisor, login):
    supervisor.broker(**MOSQUITTO)
    options = defaults()
    options["mqtt"] = login
    config = translate(tmp_path, options, supervisor)
    assert (config.mqtt.host, config.mqtt.port) == ("core-mosquitto", 1883)
    assert config.mqtt.username == login.get("username")
    assert config.mqtt_password() == login.get("password")

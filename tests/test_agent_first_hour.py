"""What a new user meets in the first hour: each error names what to fix, and the commands
accept the same options."""

import re

import pytest
from support import RATE

from cry_mqtt.audio import AudioError
from cry_mqtt.cli import main
from cry_mqtt.config import ConfigError, load_config
from cry_mqtt.microphone import find_input_device
from cry_mqtt.model import CryModel, ModelError
from cry_mqtt.recording import FileSource


def test_an_unreadable_password_file_is_named(tmp_path, capsys):
    missing = tmp_path / "broker-password"
    config = tmp_path / "config.yaml"
    config.write_text(f"mqtt: {{host: 127.0.0.1, password_file: {missing}}}\n")
    with pytest.raises(ConfigError) as error:
        load_config(config).mqtt_password()
    assert (
        str(error.value) == f"mqtt.password_file: cannot read {missing}: No such file or directory"
    )
    assert main(["--config", str(config)]) == 2  # the agent says which config names it
    assert capsys.readouterr().err == (
        f"cry-mqtt: config error: {config}: mqtt.password_file: cannot read {missing}: No such "
        "file or directory\n"
    )
    assert main(["score", "--config", str(config), str(missing)]) == 1  # score needs no broker


def test_an_empty_file_holds_no_audio_samples(tmp_path, capsys):
    empty = tmp_path / "empty.wav"
    empty.touch()
    with pytest.raises(
        AudioError, match=r"^.*empty\.wav: holds no audio samples \(the file is empty\)$"
    ):
        FileSource(empty, RATE, realtime=False)
    assert main(["score", str(empty)]) == 1
    err = capsys.readouterr().err
    assert err == f"cry-mqtt: {empty}: holds no audio samples (the file is empty)\n"


def test_a_folder_given_as_the_model_says_so(tmp_path, capsys):
    with pytest.raises(ModelError, match="is a folder, not a model file"):
        CryModel(tmp_path)
    clip = tmp_path / "clip.wav"
    clip.write_bytes(b"")
    assert main(["score", "--model", str(tmp_path), str(clip)]) == 1
    assert capsys.readouterr().err == (
        f"cry-mqtt: {tmp_path}: is a folder, not a model file (give the .onnx file)\n"
    )


@pytest.mark.parametrize("command", ["devices", "score", "check"])
def test_every_command_reads_the_config_given(tmp_path, capsys, command):
    config = tmp_path / "config.yaml"
    config.write_text("mqtt: {hots: broker}\n")
    assert main([command, "--config", str(config), *(["x.wav"] * (command == "score"))]) == 2
    assert "unknown key 'mqtt.hots'" in capsys.readouterr().err


def test_devices_runs_with_a_config(tmp_path, capsys):
    config = tmp_path / "config.yaml"
    config.write_text("log_level: WARNING\n")
    assert main(["devices", "--config", str(config)]) == 0
    out = capsys.readouterr().out
    # The inputs, or what to do without one.
    assert re.match(r"[ *] +\d+  ", out) or out.startswith(
        "no input devices found: PortAudio sees no microphone (in Docker pass --device /dev/snd"
    )


def test_a_microphone_that_is_not_there_is_named_once():
    with pytest.raises(AudioError) as error:
        find_input_device("no-such-usb-microphone")
    assert str(error.value).startswith(
        "no input device matching 'no-such-usb-microphone'. `cry-mqtt devices`"
    )


def test_the_no_microphone_hint_tells_run_from_score():
    with pytest.raises(AudioError) as error:
        find_input_device("no-such-microphone")
    message = str(error.value)
    assert "`cry-mqtt --input FILE` runs the agent on a recording" in message
    assert "`cry-mqtt score FILE` scores one offline" in message

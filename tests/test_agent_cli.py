"""The command line as a newcomer meets it: recordings of any kind, errors in one line."""

import io
import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile
from support import (
    RATE,
    agent,
    build_learning_model,
    cry_like,
    free_port,
    quiet_noise,
    run_agent,
    s16,
    states,
    write_config,
    write_encoded,
    write_wav,
)

from cry_mqtt.cli import main


def summaries(out: str | bytes) -> list[dict]:
    lines = [json.loads(line) for line in out.splitlines()]
    return [line for line in lines if line.get("summary")]


def test_score_goes_on_past_bad_files_and_exits_1(fixture_model, tmp_path, capsys):
    bad = tmp_path / "bad.wav"
    bad.write_bytes(b"not audio at all")
    good = write_wav(tmp_path / "good.wav", quiet_noise(10))
    missing = tmp_path / "missing.wav"
    assert main(["score", "--model", str(fixture_model), str(missing), str(bad), str(good)]) == 1
    captured = capsys.readouterr()
    assert captured.err.splitlines() == [
        f"cry-mqtt: {missing}: no such file",
        f"cry-mqtt: {bad}: not a recording FFmpeg can read (Invalid data found when processing "
        "input)",
    ]
    [summary] = summaries(captured.out)
    assert summary["file"] == str(good) and summary["windows"] == 4


def test_a_short_clip_says_why_it_cannot_be_detected(fixture_model, tmp_path, capsys):
    clip = write_wav(tmp_path / "seven.wav", cry_like(7.0))
    assert main(["score", "--model", str(fixture_model), str(clip)]) == 0
    [summary] = summaries(capsys.readouterr().out)
    assert summary["max_prob"] > 0.9 and summary["windows_at_threshold"] == 1
    assert summary["detected"] is False and summary["episodes"] == []
    assert summary["note"] == (
        "too short to detect: 1 window(s), and the detector needs 3 of 5 at the threshold "
        "(at least 9.0 s of audio)"
    )


def test_score_warns_when_the_hop_is_not_the_one_the_models_votes_were_chosen_at(
    fixture_model, tmp_path
):
    clip = write_wav(tmp_path / "ten.wav", quiet_noise(10))
    detection = "detection:\n  hop_seconds: 2.0\n"
    config = write_config(tmp_path, free_port(), fixture_model, detection)
    done = run_agent(config, "score", str(clip))
    assert done.returncode == 0
    assert (
        "WARNING cry_mqtt: the model's detector rule (3 of 5 windows) was chosen at a 1-s hop; "
        "at detection.hop_seconds 2 it spans 10 s instead of 5 s" in done.stderr
    )
    config.write_text(config.read_text() + "  trigger_windows: 2\n  of_windows: 3\n")
    own = run_agent(config, "score", str(clip))  # its own votes for that hop
    assert own.returncode == 0 and own.stderr == ""


def test_loud_crying_in_an_opus_recording_is_not_called_invalid(tmp_path, broker, fixture_model):
    """Opus overshoots full scale (1.12 here) when the crying is loud: clipped, nothing said."""
    recording = tmp_path / "loud.ogg"
    write_encoded(recording, np.clip(cry_like(12, level=2.0), -1, 1), "ogg", "libopus", 48000)
    config = write_config(tmp_path, broker.port, fixture_model)
    done = run_agent(config, "--input", recording, "--fast")
    assert done.returncode == 0, done.stderr
    assert "invalid audio samples" not in done.stderr and "crying detected" in done.stderr


def test_score_reads_a_voice_memo_quietly(fixture_model, tmp_path):
    memo = tmp_path / "memo.m4a"
    write_encoded(memo, np.concatenate([cry_like(20), quiet_noise(10)]), "ipod", "aac", RATE)
    done = run_agent(None, "score", "--model", str(fixture_model), str(memo))
    assert done.returncode == 0 and done.stderr == ""  # no decoder chatter
    [summary] = summaries(done.stdout)
    assert summary["detected"] is True and len(summary["episodes"]) == 1


@pytest.mark.parametrize("kind", ["wav", "raw"])
def test_score_reads_standard_input(fixture_model, kind):
    audio = np.concatenate([cry_like(20), quiet_noise(10)])
    if kind == "wav":
        buffer = io.BytesIO()
        soundfile.write(buffer, audio, RATE, format="WAV", subtype="PCM_16")
        data = buffer.getvalue()
    else:
        data = s16(audio)
    done = run_agent(None, "score", "--model", str(fixture_model), "-", stdin=data)
    assert done.returncode == 0, done.stderr
    [summary] = summaries(done.stdout)
    assert summary["file"] == "-" and summary["detected"] is True
    assert summary["seconds"] == pytest.approx(30, abs=0.01)  # a WAV header is not audio


def test_empty_standard_input_is_an_error(fixture_model):
    done = run_agent(None, "score", "--model", str(fixture_model), "-", stdin=b"")
    assert done.returncode == 1
    assert done.stderr.decode() == "cry-mqtt: standard input: no audio (it is empty)\n"


def test_input_wins_over_the_configured_file_source(tmp_path, broker, subscriber, fixture_model):
    config = write_config(tmp_path, broker.port, fixture_model, "audio: {source: file}\n")
    wav = write_wav(tmp_path / "night.wav", np.concatenate([cry_like(20), quiet_noise(15)]))
    run = agent(config, "--input", str(wav), "--fast")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert states(subscriber, "crying") == ["OFF", "ON", "OFF"]


def test_a_short_input_is_reported(tmp_path, broker, fixture_model):
    config = write_config(tmp_path, broker.port, fixture_model)
    run = agent(config, "--input", str(write_wav(tmp_path / "short.wav", cry_like(3))), "--fast")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 0, err
    assert "end of input: 3.0 s of audio, 1 windows scored" in err
    assert "too short to detect: 1 window(s), and the detector needs 3 of 5 at the threshold" in err


def test_check_with_input_does_not_need_a_microphone(tmp_path, broker, fixture_model):
    config = write_config(tmp_path, broker.port, fixture_model, "audio: {device: no-such-mic}\n")
    wav = write_wav(tmp_path / "a.wav", quiet_noise(2))
    done = run_agent(config, "check", "--input", str(wav))
    assert done.returncode == 0, done.stdout
    assert f"audio: ok (wav recording {wav})" in done.stdout
    without = run_agent(config, "check")
    assert without.returncode == 1
    assert "audio: FAILED: no input device matching 'no-such-mic'" in without.stdout


def test_broker_down_during_input_is_a_failure(tmp_path, fixture_model):
    """A parent trying the setup with a recording must not see success while nothing reached
    Home Assistant."""
    port = free_port()
    config = write_config(tmp_path, port, fixture_model)
    run = agent(config, "--input", str(write_wav(tmp_path / "a.wav", quiet_noise(8))), "--fast")
    _, err = run.communicate(timeout=60)
    assert run.returncode == 1, err
    assert err.endswith(
        f"cry-mqtt: no MQTT connection after 10 s (cannot reach 127.0.0.1:{port}: Connection "
        "refused): nothing would reach Home Assistant (`cry-mqtt score FILE` scores a recording "
        "without MQTT)\n"
    )
    assert "windows scored" not in err  # nothing was processed


def test_a_missing_tls_file_is_named(tmp_path, broker, fixture_model):
    config = write_config(tmp_path, broker.port, fixture_model)
    config.write_text(
        config.read_text().replace("port: ", "tls: {ca_certs: certs/ca.pem}, port: ", 1)
    )
    done = run_agent(config, "check")
    assert done.returncode == 1
    assert (
        f"mqtt: FAILED: mqtt.tls.ca_certs: {tmp_path / 'certs' / 'ca.pem'}: no such file"
        in done.stdout
    )


def test_a_voice_memo_on_standard_input_asks_for_the_file(fixture_model, tmp_path):
    memo = tmp_path / "memo.m4a"
    write_encoded(memo, quiet_noise(10), "ipod", "aac", RATE)  # the index goes at the end
    done = run_agent(None, "score", "--model", str(fixture_model), "-", stdin=memo.read_bytes())
    assert done.returncode == 1
    assert done.stderr.decode().endswith("give the file's path instead of -\n")


def test_score_into_a_closed_pipe_exits_quietly(fixture_model, tmp_path):
    """`cry-mqtt score ... | head`: the reader goes away; no traceback."""
    wav = write_wav(tmp_path / "a.wav", quiet_noise(10))
    run = agent(None, "score", "--model", fixture_model, wav)
    run.stdout.close()  # before the first line
    _, err = run.communicate(timeout=60)
    assert err == "" and run.returncode == 1


def test_score_onto_a_full_disk_says_so(fixture_model, tmp_path):
    wav = write_wav(tmp_path / "a.wav", quiet_noise(10))
    with open("/dev/full", "w") as full:
        done = subprocess.run(
            [sys.executable, "-m", "cry_mqtt", "score", "--model", fixture_model, wav],
            stdout=full,
            stderr=subprocess.PIPE,
            text=True,
            timeout=60,
        )
    assert done.returncode == 1
    assert done.stderr == "cry-mqtt: cannot write to standard output: No space left on device\n"


def _loaded(pid: int, library: str, timeout: float = 30) -> None:
    """Wait until process ``pid`` has mapped a file whose name holds ``library``."""
    deadline = time.monotonic() + timeout
    while library not in Path(f"/proc/{pid}/maps").read_text():
        assert time.monotonic() < deadline, f"{library} never loaded"
        time.sleep(0.005)


@pytest.mark.parametrize("library", ["_multiarray_umath", "onnxruntime_pybind11_state"])
def test_a_stop_signal_while_the_agent_starts_is_no_traceback(tmp_path, fixture_model, library):
    """Ctrl-C while the modules load (numpy, then onnxruntime: about a second): one line, no
    traceback."""
    wav = write_wav(tmp_path / "a.wav", quiet_noise(10))
    config = write_config(tmp_path, free_port(), fixture_model)
    run = agent(config, "--input", wav)
    _loaded(run.pid, library)
    run.send_signal(signal.SIGINT)
    _, err = run.communicate(timeout=30)
    assert "Traceback" not in err
    assert run.returncode in (0, 130), err  # stopped cleanly, or interrupted while loading
    if run.returncode == 130:
        assert err.endswith("cry-mqtt: interrupted\n")


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.wav", None, "empty.wav: holds no audio samples"),
        ("noise.mp3", bytes(range(256)) * 800, "noise.mp3: cannot decode after 0.0 s"),
    ],
)
def test_check_input_decodes_the_recording(tmp_path, broker, fixture_model, name, content, message):
    path = tmp_path / name
    if content is None:
        soundfile.write(str(path), np.zeros(0, dtype=np.float32), RATE)  # a header, no samples
    else:
        path.write_bytes(content)
    config = write_config(tmp_path, broker.port, fixture_model)
    done = run_agent(config, "check", "--input", str(path))
    assert done.returncode == 1
    assert f"audio: FAILED: {path.parent / message}" in done.stdout


@pytest.mark.parametrize("given", ["none", "empty"])
def test_running_on_defaults_says_what_they_mean(tmp_path, given):
    """No config, or an empty one, means a broker on this machine: the log says so first."""
    config = None
    if given == "empty":
        config = tmp_path / "config.yaml"
        config.write_text("# nothing yet\n")
    done = run_agent(config, "--input", tmp_path / "missing.wav")
    assert done.returncode == 1
    said = "no --config given" if given == "none" else f"{config} sets nothing but defaults"
    assert f"{said}: every setting is its default (broker localhost:1883)" in done.stderr


def test_the_log_says_where_each_setting_comes_from(tmp_path, broker, fixture_model, monkeypatch):
    config = write_config(tmp_path, broker.port, fixture_model, "detection: {threshold: 0.6}\n")
    (tmp_path / "state.json").write_text('{"threshold": 0.425}')
    monkeypatch.setenv("CRY_MQTT_PASSWORD", "from-the-environment")
    done = run_agent(config, "--input", write_wav(tmp_path / "a.wav", quiet_noise(1)), "--fast")
    assert (
        f"settings from {config}: model.path, detection.threshold, mqtt.host, mqtt.port, "
        "state_file; the rest are defaults"
    ) in done.stderr
    assert "MQTT password: the CRY_MQTT_PASSWORD environment variable" in done.stderr
    assert (
        f"threshold 0.425 (saved from Home Assistant in {tmp_path / 'state.json'}; "
        "detection.threshold says 0.6), 3 of 5 windows (the model's)"
    ) in done.stderr
    assert "a.wav plays as the nursery's audio: its states reach the broker" in done.stderr
    assert "from-the-environment" not in done.stderr


def test_score_and_the_agent_use_the_preset_chosen_in_home_assistant(tmp_path, broker):
    model = build_learning_model(tmp_path / "learning.onnx")  # its presets: support.PRESETS
    config = write_config(tmp_path, broker.port, model)
    (tmp_path / "state.json").write_text('{"preset": "Quiet room", "threshold": 0.3}')
    done = run_agent(config, "score", write_wav(tmp_path / "a.wav", cry_like(10)))
    assert done.returncode == 0, done.stderr
    summary = summaries(done.stdout)[0]
    assert summary["threshold"] == 0.3 and summary["votes"] == "1 of 1"
    assert "sensitivity Quiet room, saved from Home Assistant" in done.stderr
    done = run_agent(config, "--input", write_wav(tmp_path / "b.wav", quiet_noise(1)), "--fast")
    assert "1 of 1 windows (the Quiet room preset, saved from Home Assistant)" in done.stderr


def test_score_uses_the_threshold_the_agent_uses(tmp_path, fixture_model):
    """After the slider was used, `score` must still predict what the agent reports."""
    config = write_config(tmp_path, free_port(), fixture_model, "detection: {threshold: 0.6}\n")
    (tmp_path / "state.json").write_text('{"threshold": 0.425}')
    done = run_agent(config, "score", write_wav(tmp_path / "a.wav", cry_like(10)))
    assert done.returncode == 0, done.stderr
    assert summaries(done.stdout)[0]["threshold"] == 0.425
    assert "threshold 0.425 (saved from Home Assistant in" in done.stderr

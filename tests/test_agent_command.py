"""The camera command: failures, rates, stalls, children, and secrets kept out of the log."""

import base64
import logging
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
from support import RATE, paced_command

from cry_mqtt.audio import AudioError
from cry_mqtt.command import CommandSource, Redactor, url_credentials


def test_command_source_fails_when_the_command_exits():
    script = "import sys; sys.stdout.buffer.write(b'\\x00\\x40' * 1600); sys.exit(3)"
    blocks = CommandSource([sys.executable, "-c", script], RATE, 0.1, 5.0, 30.0).blocks()
    received = 0
    with pytest.raises(AudioError, match="exited with status 3"):
        for block in blocks:
            assert np.all(block == 0.5)
            received += len(block)
    assert received == 1600


def test_command_source_fails_when_the_command_stalls():
    script = "import os, time; os.write(1, b'0' * 320); time.sleep(60)"
    source = CommandSource([sys.executable, "-c", script], RATE, 0.1, 1.0, 30.0)
    start = time.monotonic()
    with pytest.raises(AudioError, match="sent nothing for 1 s"):
        list(source.blocks())
    assert time.monotonic() - start < 10


def test_missing_command_is_an_audio_error():
    with pytest.raises(AudioError, match="cannot run audio command"):
        CommandSource(["/nonexistent/ffmpeg"], RATE, 0.1, 5.0, 30.0)


def test_redactor_removes_url_credentials_and_marked_secrets():
    redact = Redactor(["s3cret", ""])
    assert (
        redact("rtsp://admin:p@ss@10.0.0.5:554/live opened")
        == "rtsp://***@10.0.0.5:554/live opened"
    )
    assert redact("a http://u:x@h/a and rtsps://v@h2/b") == "a http://***@h/a and rtsps://***@h2/b"
    assert redact("token=s3cret; rtsp://camera/stream") == "token=***; rtsp://camera/stream"


def test_a_cut_line_keeps_no_part_of_any_secret():
    """A line cut at 500 bytes may end inside a secret: whichever secret it ends in, and however
    much of it, none of it stays (a shorter secret's prefix must not hide a longer one's)."""
    redact = Redactor(url_credentials(["rtsp://admin:hunter2abc@cam/stream"]))
    assert redact("password=hunter2a", cut=True) == "password="
    assert redact("login admin:hunt", cut=True) == "login "


def test_a_password_cut_inside_a_character_leaves_nothing():
    redact = Redactor(url_credentials(["rtsp://admin:geheimö@cam/stream"]))
    cut = "pw=geheimö".encode()[:-1].decode("utf-8", "replace")  # the 500-byte cut
    assert redact(cut, cut=True) == "pw="


def test_every_at_sign_of_a_url_may_end_its_user_info():
    """``rtsp://admin:pw1@cam/stream@main``: the password is ``pw1``, whatever follows."""
    redact = Redactor(url_credentials(["rtsp://admin:pw1@cam/stream@main"]))
    basic = base64.b64encode(b"admin:pw1").decode()
    assert redact(f"pw1 and {basic}") == "*** and ***"


def test_passwords_in_a_query_string_are_removed():
    """Foscam, Reolink and others take the password as a URL parameter; ffmpeg prints the URL."""
    redact = Redactor()
    line = "http://cam/cgi?cmd=snap&user=admin&pwd=S3cr3t&token=abc.def: Server returned 401"
    assert (
        redact(line) == "http://cam/cgi?cmd=snap&user=admin&pwd=***&token=***: Server returned 401"
    )
    assert redact("rtsp://cam/live?password=x%20y&channel=1") == (
        "rtsp://cam/live?password=***&channel=1"
    )


def test_command_stderr_reaches_the_log_without_credentials(caplog):
    url = "rtsp://parent:hunter2@camera.lan/stream"
    script = (
        "import sys\n"
        "print(sys.argv[1] + ': Connection refused', file=sys.stderr)\n"
        "print('key s3cret rejected', file=sys.stderr)\n"
        "sys.exit(1)\n"
    )
    command = [sys.executable, "-c", script, url]
    with caplog.at_level(logging.INFO, logger="cry_mqtt"), pytest.raises(AudioError) as error:
        list(CommandSource(command, RATE, 0.1, 5.0, 30.0, Redactor(["s3cret"])).blocks())
    assert "hunter2" not in caplog.text and "s3cret" not in caplog.text
    assert "rtsp://***@camera.lan/stream: Connection refused" in caplog.text
    assert str(error.value) == "audio command exited with status 1: key *** rejected"


NAME = Path(sys.executable).name


SECRET_URLS = ["rtsp://admin:S3#c/ret@cam/stream", "rtsp://parent:my pass@cam2/live"]


def test_configured_user_info_is_removed_exactly_whatever_it_holds(caplog):
    script = "import sys\nfor url in sys.argv[1:]: print(url + ': refused', file=sys.stderr)\n"
    command = [sys.executable, "-c", script, *SECRET_URLS]
    with caplog.at_level(logging.INFO, logger="cry_mqtt"), pytest.raises(AudioError) as error:
        list(CommandSource(command, RATE, 0.1, 5.0, 30.0).blocks())
    for secret in ("S3#c", "ret@", "my pass", "S3%23c"):
        assert secret not in caplog.text and secret not in str(error.value)
    assert "rtsp://***@cam/stream: refused" in caplog.text
    assert str(error.value) == "audio command exited with status 0: rtsp://***@cam2/live: refused"


def test_the_command_gets_none_of_the_agents_secrets(tmp_path, monkeypatch):
    monkeypatch.setenv("CRY_MQTT_PASSWORD", "broker-31337")
    monkeypatch.setenv("SUPERVISOR_TOKEN", "supervisor-31337")
    seen = tmp_path / "environ"
    script = "import os, sys; open(sys.argv[1], 'w').write(repr(dict(os.environ)))"
    with pytest.raises(AudioError):
        list(
            CommandSource([sys.executable, "-c", script, str(seen)], RATE, 0.1, 5.0, 30.0).blocks()
        )
    environ = seen.read_text()
    assert "PATH" in environ and "31337" not in environ


def test_stderr_lines_are_bounded_and_redaction_is_linear(caplog):
    url = SECRET_URLS[0]
    script = (
        "import sys\n"
        "err = sys.stderr\n"
        "err.write('a1' * 500_000)\n"  # 1 MB in one line: letters and digits, no end
        "err.write('\\n' + 'x' * (500 - len('rtsp://admin:S3')) + sys.argv[1] + '\\n')\n"
        "err.write('y' * 490 + ' rtsp://parent:my pass@cam2/live\\n')\n"
        "err.write('b' * 60_000 + '\\n')\n"  # a long line that ends within one read
        "for i in range(5000): err.write(f'size={i}kB time=00:00:{i % 60:02d}\\r')\n"
        "err.write('last words\\n')\n"
    )
    command = [sys.executable, "-c", script, url, SECRET_URLS[1]]
    with caplog.at_level(logging.INFO, logger="cry_mqtt"), pytest.raises(AudioError) as error:
        list(CommandSource(command, RATE, 0.1, 5.0, 30.0).blocks())
    lines = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert len(lines) == 21 and lines[-1] == f"{NAME}: 4984 more lines not logged"
    assert all(len(line) < 600 for line in lines)
    # The line cut inside the URL loses the whole URL, here the whole line (one word).
    assert lines[0].endswith("a1a1 [...]") and lines[1].endswith("yyyy [...]")
    assert lines[2].endswith("bbbb [...]") and lines[3].endswith("size=0kB time=00:00:00")
    for secret in ("S3", "my pa", "my p"):
        assert not any(secret in line for line in lines), secret
    assert str(error.value) == "audio command exited with status 0: last words"


@pytest.mark.parametrize("rate", [48000, 8000])
def test_a_command_at_another_rate_is_an_audio_error(rate):
    source = CommandSource(paced_command(rate, 60), RATE, 0.1, 5.0, 30.0)
    with pytest.raises(AudioError, match=r"sends about (\d+) samples a second, not 16000") as error:
        list(source.blocks())
    sent = int(str(error.value).split()[4])
    assert 0.8 * rate < sent < 1.2 * rate
    assert "mono at 16000 Hz (ffmpeg: -ac 1 -ar 16000 -f s16le -)" in str(error.value)


def test_a_backlog_at_the_start_is_no_rate():
    source = CommandSource(paced_command(RATE, 12, backlog_seconds=15), RATE, 0.1, 5.0, 30.0)
    with pytest.raises(AudioError, match=r"exited with status 0$"):
        list(source.blocks())


def test_url_credentials_of_every_url_in_every_argument():
    """The user-info as written and decoded, the password alone, and HTTP Basic's base64."""
    command = ["ffmpeg", "-i", "rtsp://u:p@ss @c/x?next=http://v:w%23x@d/y", "http://h/p@q"]
    user_infos = {"u:p@ss ", "v:w%23x", "v:w#x", "h/p"}
    basic = {base64.b64encode(info.encode()).decode() for info in user_infos}
    passwords = {"p@ss ", "w%23x", "w#x"}
    assert set(url_credentials(command)) == user_infos | basic | passwords


def test_a_16_khz_camera_feeds_a_32_khz_model_at_its_pace():
    """The rate check counts the command's 16 kHz samples, not the model's 32 kHz ones."""
    source = CommandSource(paced_command(16000, 12), 32000, 0.1, 5.0, 30.0)
    received = 0
    with pytest.raises(AudioError, match=r"exited with status 0$"):
        for block in source.blocks():
            received += len(block)
    assert 0.95 * 32000 * 12 < received <= 32000 * 12


def _received_until_failure(source: CommandSource, timeout: float) -> tuple[int, AudioError]:
    """Samples the source gave before it failed, and its error; fails the test if the source
    neither fails nor ends within ``timeout`` seconds (the old source hung)."""
    outcome: dict = {"received": 0}

    def consume() -> None:
        try:
            for block in source.blocks():
                outcome["received"] += len(block)
        except AudioError as exc:
            outcome["error"] = exc

    reader = threading.Thread(target=consume, daemon=True)
    reader.start()
    reader.join(timeout)
    assert not reader.is_alive(), f"the source still runs after {timeout} s"
    return outcome["received"], outcome["error"]


def test_a_link_that_stalls_and_catches_up_is_no_wrong_rate():
    """A TCP camera: 3 s without a byte, then what is due at once, twice in 20 s (one 5-s window
    slow, the next fast: the old check failed it as a wrong rate)."""
    command = paced_command(RATE, 20, stalls=((3, 3), (13, 3.5)))
    received, error = _received_until_failure(CommandSource(command, RATE, 0.1, 5.0, 30.0), 40)
    assert str(error) == "audio command exited with status 0"
    assert received == 20 * RATE


def test_a_late_first_byte_gets_the_start_grace():
    """ffmpeg probing a camera's H.264 stream: 7 s before the first audio, then its backlog."""
    command = paced_command(RATE, 10, backlog_seconds=7, first_byte_after=7)
    received, error = _received_until_failure(CommandSource(command, RATE, 0.1, 5.0, 30.0), 40)
    assert str(error) == "audio command exited with status 0"
    assert received == 17 * RATE


def test_no_audio_within_the_start_grace_is_an_audio_error():
    command = paced_command(RATE, 10, first_byte_after=60)
    start = time.monotonic()
    _, error = _received_until_failure(CommandSource(command, RATE, 0.1, 5.0, 2.0), 20)
    assert str(error) == "audio command sent no audio within 2 s of its start (audio.start_seconds)"
    assert time.monotonic() - start < 10


def _alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ")[1][0] not in "ZX"
    except FileNotFoundError:
        return False


def test_a_command_that_closes_its_output_but_runs_on_is_stopped(tmp_path):
    pid_file = tmp_path / "sleep.pid"
    command = [
        "sh",
        "-c",
        'head -c 320000 /dev/urandom; exec 1>&-; sleep 300 & echo $! > "$0"; wait',
        str(pid_file),
    ]
    received, error = _received_until_failure(CommandSource(command, RATE, 0.1, 5.0, 30.0), 20)
    assert received == 160000
    assert str(error) == "audio command closed its output but kept running (stopped it)"
    assert not _alive(int(pid_file.read_text()))


def test_a_failed_command_leaves_none_of_its_children_behind(tmp_path):
    """A shell pipeline: the agent ends the command's whole process group."""
    pid_file = tmp_path / "child.pid"
    command = ["sh", "-c", 'sleep 600 & echo $! > "$0"; sleep 600 | cat', str(pid_file)]
    _, error = _received_until_failure(CommandSource(command, RATE, 0.1, 5.0, 1.0), 20)
    assert "sent no audio within 1 s" in str(error)
    child = int(pid_file.read_text())
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_an_authorization_header_and_a_bare_password_stay_private(caplog):
    """ffmpeg at -loglevel debug prints the HTTP header that carries the password in base64."""
    url = "http://admin:hunter2@camera.lan/audio"
    basic = base64.b64encode(b"admin:hunter2").decode()
    script = (
        "import sys\n"
        f"print('Authorization: Basic {basic}', file=sys.stderr)\n"
        f"print('[http] header: Proxy-Authorization: Digest username=\"admin\"', file=sys.stderr)\n"
        "print('login with password hunter2 failed', file=sys.stderr)\n"
        f"print('credentials {basic} refused', file=sys.stderr)\n"
    )
    with caplog.at_level(logging.INFO, logger="cry_mqtt"), pytest.raises(AudioError) as error:
        list(CommandSource([sys.executable, "-c", script, url], RATE, 0.1, 5.0, 30.0).blocks())
    assert "hunter2" not in caplog.text and basic not in caplog.text
    assert "Authorization: ***" in caplog.text and "Proxy-Authorization: ***" in caplog.text
    assert "login with password *** failed" in caplog.text
    assert str(error.value) == "audio command exited with status 0: credentials *** refused"

"""A camera's audio through real ffmpeg, from an HTTP stream the test serves: what ffmpeg prints
at its most talkative level, and a network link that stalls and catches up."""

import base64
import http.server
import json
import os
import shutil
import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest
from support import (
    BASE,
    RATE,
    REQUIRE_FFMPEG_ENV,
    Proxy,
    agent,
    assert_no_audio_leaves,
    changes,
    stop_agent,
    write_config,
)

USER, PASSWORD = "admin", "hunter2"


@pytest.fixture(scope="module")
def ffmpeg() -> str:
    path = shutil.which("ffmpeg")
    if path is None:
        message = "needs ffmpeg (apt install ffmpeg; .ci/run installs it)"
        if os.environ.get(REQUIRE_FFMPEG_ENV):
            pytest.fail(message)
        pytest.skip(message)
    return path


def _wav_header(seconds: int) -> bytes:
    size = seconds * RATE * 2
    return (
        b"RIFF"
        + (36 + size).to_bytes(4, "little")
        + b"WAVEfmt "
        + (16).to_bytes(4, "little")
        + (1).to_bytes(2, "little")  # PCM
        + (1).to_bytes(2, "little")  # mono
        + RATE.to_bytes(4, "little")
        + (2 * RATE).to_bytes(4, "little")
        + (2).to_bytes(2, "little")
        + (16).to_bytes(2, "little")
        + b"data"
        + size.to_bytes(4, "little")
    )


class Camera(http.server.ThreadingHTTPServer):
    """An HTTP camera on a free loopback port: ``/audio.wav`` is ``seconds`` of a quiet room as a
    16-bit WAV sent in real time, to a client that gives ``USER``:``PASSWORD`` (Basic)."""

    def __init__(self, seconds: int) -> None:
        super().__init__(("127.0.0.1", 0), _CameraHandler)
        self.seconds = seconds
        self.port = self.server_address[1]
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()


class _CameraHandler(http.server.BaseHTTPRequestHandler):
    server: Camera

    def do_GET(self) -> None:
        expected = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()
        given = self.headers.get("Authorization")
        if given is not None and given != expected:
            time.sleep(60)  # a camera that hangs on a wrong password: ffmpeg waits, silent
            return
        if given is None:
            self.send_response(401)
            self.send_header("WWW-Authenticate", 'Basic realm="camera"')
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "audio/wav")
        self.end_headers()
        self.wfile.write(_wav_header(self.server.seconds))
        noise = np.random.default_rng(0).normal(0, 30, RATE // 10).astype("<i2").tobytes()
        start = time.monotonic()
        try:
            for i in range(10 * self.server.seconds):
                self.wfile.write(noise)
                time.sleep(max(0.0, start + (i + 1) / 10 - time.monotonic()))
        except OSError:
            pass  # ffmpeg went away

    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def camera() -> Iterator[Camera]:
    server = Camera(seconds=30)
    yield server
    server.shutdown()
    server.server_close()


def _ffmpeg_config(tmp_path, port: int, model, ffmpeg: str, url: str, loglevel: str):
    command = [
        ffmpeg,
        "-nostdin",
        "-loglevel",
        loglevel,
        "-i",
        url,
        "-vn",
        "-ac",
        "1",
        "-ar",
        "16000",
        "-f",
        "s16le",
        "-",
    ]
    argv = ", ".join(json.dumps(part) for part in command)
    return write_config(tmp_path, port, model, f"audio: {{source: command, command: [{argv}]}}\n")


def test_ffmpeg_at_debug_level_leaks_no_credential(
    tmp_path, broker, subscriber, fixture_model, ffmpeg, camera
):
    """ffmpeg -loglevel debug prints the URL, and the Authorization header with the password in
    base64 as its last line while a camera that does not take the password hangs: that line
    explains the failure published to Home Assistant."""
    url = f"http://{USER}:wrong-{PASSWORD}@127.0.0.1:{camera.port}/audio.wav"
    config = _ffmpeg_config(tmp_path, broker.port, fixture_model, ffmpeg, url, "debug")
    config.write_text(config.read_text().replace("command: [", "start_seconds: 3, command: ["))
    run = agent(config)
    try:
        problem = subscriber.wait_for(
            lambda m: m.topic == f"{BASE}/audio_problem/attributes" and "within 3 s" in m.payload,
            timeout=30,
        )
    finally:
        err = stop_agent(run)
    assert json.loads(problem.payload)["error"] == (
        "audio command sent no audio within 3 s of its start (audio.start_seconds): "
        "Authorization: ***"
    )
    basic = base64.b64encode(f"{USER}:wrong-{PASSWORD}".encode()).decode()
    for secret in (PASSWORD, basic, basic[:12]):
        assert secret not in err
        assert not any(secret in m.payload for m in subscriber.messages)
    assert_no_audio_leaves(subscriber)


def test_ffmpeg_through_a_link_that_stalls_and_catches_up_keeps_listening(
    tmp_path, broker, subscriber, fixture_model, ffmpeg, camera
):
    """The camera's stream through a TCP link that carries nothing for 3 s twice, then what
    waited: ffmpeg writes it at once, and the agent must not take that for a wrong rate."""
    proxy = Proxy(camera.port)
    url = f"http://{USER}:{PASSWORD}@127.0.0.1:{proxy.port}/audio.wav"
    run = agent(_ffmpeg_config(tmp_path, broker.port, fixture_model, ffmpeg, url, "error"))
    try:
        subscriber.wait_for(lambda m: m.topic == f"{BASE}/sound_level", timeout=30)
        for _ in range(2):
            time.sleep(5)
            proxy.dark()
            time.sleep(3)
            proxy.light()
        ended = subscriber.wait_for(
            lambda m: m.topic == f"{BASE}/audio_problem/attributes" and "exited" in m.payload,
            timeout=40,
        )
    finally:
        err = stop_agent(run)
        proxy.close()
    # The stream's end is the first and only problem.
    assert json.loads(ended.payload)["error"].startswith("audio command exited with status 0")
    assert changes(subscriber, "audio_problem").count("ON") == 1, err

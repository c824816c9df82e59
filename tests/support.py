"""What the tests share: a fixture model, synthetic and real audio, a Mosquitto broker, a
subscriber, and the agent started on a config of the test's own. The add-on's helpers are in
``addon_support.py``, the fixtures in ``conftest.py``."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import av
import numpy as np
import paho.mqtt.client as paho
import soundfile
from paho.mqtt.enums import CallbackAPIVersion

from cry_mqtt.features import FeatureParams
from cry_mqtt.model import ModelInfo, Patches

RATE = 16000
REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CRY_MQTT_DATA", REPO.parent / "shared" / "data"))
REQUIRE_IMAGES_ENV = "CRY_MQTT_REQUIRE_IMAGES"
"""Set (to 1) by ``.ci/run``: there missing podman or debootstrap fail the image tests instead of
skipping them."""
REQUIRE_FFMPEG_ENV = "CRY_MQTT_REQUIRE_FFMPEG"
"""Set (to 1) by ``.ci/run``, which installs ffmpeg: there the tests of a camera's stream through
real ffmpeg fail instead of skipping."""
REQUIRE_FLUIDSYNTH_ENV = "CRY_MQTT_REQUIRE_FLUIDSYNTH"
"""Set (to 1) by ``.ci/run``, which installs FluidSynth and its sound font: there the sung
lullabies' tests fail instead of skipping."""
BASE = "cry_mqtt/nursery"
"""The topics of the agent that ``write_config`` configures (device.instance_id ``nursery``)."""
DISCOVERY = "homeassistant/{}/cry_mqtt_nursery/{}/config"
"""Its discovery topics: ``DISCOVERY.format(component, key)``."""
CRIES = [
    "donateacry-ios-upload-bucket/021DCB9F-2FC6-4247-859F-E58EDB682B79-1429977251-1.0-f-26-dk.caf",
    "donateacry-ios-upload-bucket/026895D0-6B93-4D1F-846F-AA279AD33991-1436865240-1.1-m-04-hu.caf",
    "donateacry-android-upload-bucket/006dbee7-715a-46ee-b592-1c4e7affb788-1430218353124-1.7-f-26-hu.3gp",
    "donateacry-android-upload-bucket/01a592eb-513d-4431-b7ba-b0fba5a00908-1430339263195-1.7-m-04-hu.3gp",
]
"""Real crying, in the shared corpus's ``donateacry-corpus`` folder."""
CRY_THEN_QUIET = """
import os, sys, time
import numpy as np
t = np.arange(16000 * 12) / 16000
cry = 0.3 * np.sin(2 * np.pi * 450 * t) * ((t % 1.5) < 1.2)
quiet = np.random.default_rng(0).normal(0, 0.003, 16000 * 3)
os.write(1, (np.concatenate([quiet, cry]) * 32767).astype("<i2").tobytes())
while True:
    os.write(1, (quiet[:1600] * 32767).astype("<i2").tobytes())
    time.sleep(0.1)
"""
"""A camera command stand-in (a Python script): 3 s of quiet, 12 s of crying, then quiet in real
time."""


def build_fixture_model(path: Path, metadata: dict[str, str] | None = None, frames: int = 215):
    """A tiny deterministic ONNX model: P = sigmoid((mean over frames of the loudest mel band
    in dB) / 5). Loud tonal sound scores near 1, quiet noise near 0. Follows the metadata
    contract unless ``metadata`` replaces it."""
    import onnx
    from onnx import TensorProto, helper

    info = ModelInfo(FeatureParams(), 7.0, 0.5, "fixture-1", {"note": "test fixture"})
    nodes = [
        helper.make_node("ReduceMax", ["logmel"], ["band_max"], axes=[1], keepdims=0),
        helper.make_node("ReduceMean", ["band_max"], ["level"], axes=[1], keepdims=0),
        helper.make_node("Div", ["level", "scale"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["prob"]),
    ]
    graph = helper.make_graph(
        nodes,
        "fixture",
        [helper.make_tensor_value_info("logmel", TensorProto.FLOAT, ["batch", 128, frames])],
        [helper.make_tensor_value_info("prob", TensorProto.FLOAT, ["batch"])],
        [helper.make_tensor("scale", TensorProto.FLOAT, [], [5.0])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    props = info.to_metadata() if metadata is None else metadata
    for key, value in props.items():
        model.metadata_props.add(key=key, value=value)
    onnx.save(model, str(path))
    return path


PRESETS = [
    {"name": "Quiet room", "threshold": 0.3, "trigger_windows": 1, "of_windows": 1},
    {"name": "Balanced", "threshold": 0.5, "trigger_windows": 3, "of_windows": 5},
    {"name": "Noisy room", "threshold": 0.9, "trigger_windows": 3, "of_windows": 5},
]
"""The learning fixture model's sensitivity presets (its own threshold and rule: Balanced)."""


def build_learning_model(path: Path, similarity: float = 0.9) -> Path:
    """A tiny streaming ONNX model (:mod:`cry_mqtt.model`) that outputs embeddings: a patch's
    logit is the mean over frames of its loudest mel band in dB / 5, as in
    :func:`build_fixture_model`; its embedding is its mean mel profile less that profile's mean,
    so two tones of different pitch are unlike and one tone is like itself. Names
    ``similarity`` for the false-alarm memory, and :data:`PRESETS`."""
    import onnx
    from onnx import TensorProto, helper

    params, patches = FeatureParams(), Patches(96, 48)
    details = {"learn": {"similarity": similarity}, "presets": PRESETS}
    info = ModelInfo(params, 7.0, 0.5, "learning-1", details, patches)
    count, mels = info.window_patches, params.n_mels
    nodes = [
        helper.make_node("ReduceMax", ["patches"], ["band_max"], axes=[1], keepdims=0),
        helper.make_node("ReduceMean", ["band_max"], ["level"], axes=[1], keepdims=0),
        helper.make_node("Div", ["level", "scale"], ["logits"]),
        helper.make_node("Concat", ["state", "logits"], ["all"], axis=0),
        helper.make_node("Slice", ["all", "start", "end"], ["new_state"]),
        helper.make_node("ReduceMax", ["new_state"], ["top"], axes=[0], keepdims=1),
        helper.make_node("Sigmoid", ["top"], ["prob"]),
        helper.make_node("ReduceMean", ["patches"], ["profile"], axes=[2], keepdims=0),
        helper.make_node("ReduceMean", ["profile"], ["offset"], axes=[1], keepdims=1),
        helper.make_node("Sub", ["profile", "offset"], ["embedding"]),
    ]
    value = helper.make_tensor_value_info
    graph = helper.make_graph(
        nodes,
        "learning",
        [
            value("patches", TensorProto.FLOAT, ["n", mels, patches.frames]),
            value("state", TensorProto.FLOAT, [count]),
        ],
        [
            value("prob", TensorProto.FLOAT, [1]),
            value("new_state", TensorProto.FLOAT, [count]),
            value("embedding", TensorProto.FLOAT, ["n", mels]),
        ],
        [
            helper.make_tensor("scale", TensorProto.FLOAT, [], [5.0]),
            helper.make_tensor("start", TensorProto.INT64, [1], [-count]),
            helper.make_tensor("end", TensorProto.INT64, [1], [2**62]),
        ],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    for key, value in info.to_metadata().items():
        model.metadata_props.add(key=key, value=value)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))
    return path


def tone(seconds: float, frequency: float, level: float = 0.3) -> np.ndarray:
    """A steady tone (with a little noise): loud enough for the fixture models to call it
    crying."""
    t = np.arange(round(seconds * RATE)) / RATE
    noise = 0.005 * np.random.default_rng(2).standard_normal(len(t))
    return (level * np.sin(2 * np.pi * frequency * t) + noise).astype(np.float32)


def cry_like(seconds: float, level: float = 0.3, seed: int = 0) -> np.ndarray:
    """Synthetic wail: a harmonic tone around 450 Hz with vibrato, in 1.2-s bursts."""
    rng = np.random.default_rng(seed)
    t = np.arange(round(seconds * RATE)) / RATE
    f0 = 450 + 40 * np.sin(2 * np.pi * 5 * t)
    phase = 2 * np.pi * np.cumsum(f0) / RATE
    tone = sum(np.sin(k * phase) / k for k in range(1, 6))
    bursts = (t % 1.5) < 1.2
    noise = 0.01 * rng.standard_normal(len(t))
    return (level * tone * bursts / 2 + noise).astype(np.float32)


def quiet_noise(seconds: float, level: float = 0.003, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return (level * rng.standard_normal(round(seconds * RATE))).astype(np.float32)


def write_wav(path: Path, samples: np.ndarray, rate: int = RATE) -> Path:
    soundfile.write(str(path), samples, rate, subtype="PCM_16")
    return path


def s16(samples: np.ndarray) -> bytes:
    """Raw s16le, as the agent reads it from standard input or a command."""
    return (np.clip(samples, -1, 1) * 32767).astype("<i2").tobytes()


def write_encoded(path: Path, samples: np.ndarray, container: str, codec: str, rate: int) -> None:
    """Encode mono float32 16-kHz ``samples`` with FFmpeg, as a phone or a camera would."""
    frame = av.AudioFrame.from_ndarray(samples[None].astype(np.float32), "flt", layout="mono")
    frame.sample_rate = RATE
    with av.open(str(path), "w", format=container) as out:
        stream = out.add_stream(codec, rate=rate, layout="mono")
        resampler = av.AudioResampler(stream.codec_context.format.name, "mono", rate)
        for piece in [*resampler.resample(frame), *resampler.resample(None), None]:
            for packet in stream.encode(piece):
                out.mux(packet)


def paced_command(
    rate: int,
    seconds: int,
    backlog_seconds: int = 0,
    first_byte_after: float = 0.0,
    stalls: tuple[tuple[float, float], ...] = (),
    sample: int = 256,
) -> list[str]:
    """A command writing raw s16le at ``rate`` samples a second in real time, each sample
    ``sample``: after ``first_byte_after`` seconds of nothing, a backlog of ``backlog_seconds``;
    then for each (start, length) of ``stalls`` (seconds into the stream) it holds its output
    back and then writes what is due at once, as TCP catches up after a link stalled."""
    script = (
        "import os, sys, time\n"
        f"block = ({sample}).to_bytes(2, 'little', signed=True) * {rate // 10}\n"
        f"time.sleep({first_byte_after})\n"
        f"os.write(1, block * {10 * backlog_seconds})\n"
        "start = time.monotonic()\n"
        f"for i in range({10 * seconds}):\n"
        f"    for at, length in {list(stalls)!r}:\n"
        "        if at <= i / 10 < at + length:\n"
        "            time.sleep(max(0, start + at + length - time.monotonic()))\n"
        "    os.write(1, block)\n"
        "    time.sleep(max(0, start + (i + 1) / 10 - time.monotonic()))\n"
    )
    return [sys.executable, "-c", script]


def write_config(tmp_path: Path, port: int, model: Path | None, extra: str = "") -> Path:
    """``tmp_path/config.yaml``: the broker on ``port``, the state file beside it, ``model`` (the
    shipped one if None), then the YAML lines of ``extra``."""
    path = tmp_path / "config.yaml"
    model_line = f"model: {{path: {model}}}\n" if model else ""
    path.write_text(
        f"mqtt: {{host: 127.0.0.1, port: {port}}}\n"
        f"state_file: {tmp_path / 'state.json'}\n{model_line}{extra}"
    )
    return path


def agent(
    config: Path | None,
    *args: str | Path,
    stdin: int = subprocess.DEVNULL,
    env: dict[str, str] | None = None,
) -> subprocess.Popen:
    """``python -m cry_mqtt [--config CONFIG] ARGS`` started, its output captured: as text, unless
    the test writes raw audio to it (``stdin=subprocess.PIPE``, see ``feed``)."""
    options = ["--config", str(config)] if config else []
    return subprocess.Popen(
        [sys.executable, "-m", "cry_mqtt", *options, *map(str, args)],
        stdin=stdin,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=stdin != subprocess.PIPE,
        env=env,
        preexec_fn=_interrupt_as_in_a_terminal,
    )


def _interrupt_as_in_a_terminal() -> None:
    """Ctrl-C's signal at its default in the agent, as a terminal starts it: a shell that runs
    the tests in the background ignores SIGINT, and its children would inherit that."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_agent(
    config: Path | None,
    *args: str | Path,
    stdin: bytes | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> subprocess.CompletedProcess:
    """``agent`` run to its end; given ``stdin``, it reads that and its output is bytes."""
    process = agent(
        config, *args, stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE, env=env
    )
    try:
        out, err = process.communicate(stdin, timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        raise
    return subprocess.CompletedProcess(process.args, process.returncode, out, err)


def feed(run: subprocess.Popen, samples: np.ndarray) -> None:
    """Write ``samples`` to the standard input of an agent run with ``--input -``."""
    run.stdin.write(s16(samples))
    run.stdin.flush()


def stop_agent(run: subprocess.Popen, timeout: float = 10) -> str:
    """SIGTERM, as a service manager stops the agent; what it logged."""
    run.send_signal(signal.SIGTERM)
    return run.communicate(timeout=timeout)[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Broker:
    """A real Mosquitto broker on a free loopback port, started and stopped by the test."""

    workdir: Path
    port: int = 0
    extra_config: str = ""
    anonymous: bool = True
    users: dict[str, str] = field(default_factory=dict)
    """Logins (name: password) for a password file; none, no password file."""
    persistence: Path | None = None
    """A folder where the broker saves its retained messages every second (none: it keeps
    nothing)."""
    process: subprocess.Popen | None = None

    def start(self) -> Broker:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not self.port:
            self.port = free_port()
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        # As root, mosquitto would drop to its own user, which cannot read the test's files.
        user = "user root\n" if os.geteuid() == 0 else ""
        persistence = (
            f"persistence true\npersistence_location {self.persistence}/\nautosave_interval 1\n"
            if self.persistence
            else "persistence false\n"
        )
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n{user}{persistence}"
            f"allow_anonymous {str(self.anonymous).lower()}\n{self._password_file()}"
            f"{self.extra_config}"
        )
        self.process = subprocess.Popen(
            [binary, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError(f"mosquitto failed: {self.process.stderr.read()}") from None
                time.sleep(0.05)
        raise RuntimeError("mosquitto did not start")

    def _password_file(self) -> str:
        """The ``password_file`` line for ``users``, the file written by ``mosquitto_passwd``."""
        if not self.users:
            return ""
        path = self.workdir / f"passwd-{self.port}"
        path.unlink(missing_ok=True)
        for name, password in self.users.items():
            create = [] if path.exists() else ["-c"]
            subprocess.run(
                ["mosquitto_passwd", "-b", *create, str(path), name, password], check=True
            )
        return f"password_file {path}\n"

    def freeze(self) -> None:
        """SIGSTOP: the connections stay open and nothing is answered (a half-open link)."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def kill(self) -> None:
        """SIGKILL, frozen or not: the broker dies without a word, its retained state with it."""
        assert self.process is not None
        self.process.kill()
        self.process.wait(5)

    def stop(self) -> None:
        if self.process is None:
            return
        if self.process.poll() is None:
            self.process.terminate()
            self.process.wait(5)
        self.process.stderr.close()


class Proxy:
    """A TCP proxy from a free loopback port to ``port``: :meth:`dark` stops it carrying anything
    either way while every connection stays open (a network gone dark: what was sent waits, as
    TCP holds it), :meth:`light` carries on."""

    def __init__(self, port: int) -> None:
        self._target = port
        self._open = threading.Event()
        self._open.set()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = self._listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def dark(self) -> None:
        self._open.clear()

    def light(self) -> None:
        self._open.set()

    def close(self) -> None:
        self._listener.close()
        self.light()

    def _accept(self) -> None:
        while True:
            try:
                near, _ = self._listener.accept()
            except OSError:
                return
            self._open.wait()
            try:
                far = socket.create_connection(("127.0.0.1", self._target))
            except OSError:
                near.close()
                continue
            for source, sink in ((near, far), (far, near)):
                threading.Thread(target=self._carry, args=(source, sink), daemon=True).start()

    def _carry(self, source: socket.socket, sink: socket.socket) -> None:
        try:
            while True:
                self._open.wait()
                data = source.recv(65536)
                self._open.wait()
                if not data:
                    break
                sink.sendall(data)
        except OSError:
            pass
        finally:
            for end in (source, sink):
                with contextlib.suppress(OSError):
                    end.shutdown(socket.SHUT_RDWR)


@dataclass
class Message:
    topic: str
    payload: str
    retain: bool
    raw: bytes = b""


class Subscriber:
    """Records every message on ``#`` (retained ones included) for assertions."""

    def __init__(self, port: int) -> None:
        self.messages: list[Message] = []
        self._cond = threading.Condition()
        self.client = paho.Client(CallbackAPIVersion.VERSION2, client_id=f"test-{port}-{id(self)}")
        self.client.on_connect = lambda c, u, f, rc, p: c.subscribe("#", 1)
        self.client.on_message = self._record
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _record(self, client, userdata, msg) -> None:
        with self._cond:
            self.messages.append(
                Message(msg.topic, msg.payload.decode(errors="replace"), msg.retain, msg.payload)
            )
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[Message], bool], timeout: float = 20.0) -> Message:
        """The first message (seen or yet to come) that satisfies ``predicate``."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for message in self.messages:
                    if predicate(message):
                        return message
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    seen = [(m.topic, m.payload[:60]) for m in self.messages[-15:]]
                    raise AssertionError(f"no matching message within {timeout} s; last: {seen}")
                self._cond.wait(remaining)

    def payloads(self, topic: str) -> list[str]:
        with self._cond:
            return [m.payload for m in self.messages if m.topic == topic]

    def publish(self, topic: str, payload: str | bytes, retain: bool = False) -> None:
        self.client.publish(topic, payload, qos=1, retain=retain).wait_for_publish(5)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


def states(sub: Subscriber, key: str) -> list[str]:
    """The payloads of the agent's state topic ``key`` (``crying``, ``confidence/attributes``),
    but for the empty one that clears what an older agent retained."""
    return [payload for payload in sub.payloads(f"{BASE}/{key}") if payload]


def changes(sub: Subscriber, key: str) -> list[str]:
    """The states of ``key`` as Home Assistant records them: a refresh that publishes the same
    value again (every ``mqtt.state_refresh_seconds``) is no change."""
    seen = states(sub, key)
    return [state for i, state in enumerate(seen) if i == 0 or state != seen[i - 1]]


def assert_no_audio_leaves(subscriber: Subscriber) -> None:
    """Privacy: every payload is a state word, a number, a preset's name, a small JSON object of
    known keys, or the last episode's picture (a PNG of a few tens of KB)."""
    allowed_json = {
        "clip",
        "test",
        "model_version",
        "episode_start",
        "episode_duration_s",
        "peak_confidence",
        "error",
        "windows_at_threshold",
        "windows_needed",
        "of_windows",
        "threshold",
        "rule",
        "meaning",
        "presets",
        "fine_tuned",
        "false_alarms_remembered",
        "of_at_most",
        "windows_remembered",
        "windows_kept_from_crying",
        "override_seconds",
    }
    presets = {preset["name"] for preset in PRESETS} | {"None"}
    for message in subscriber.messages:
        payload = message.payload
        if message.topic.endswith("/set") or message.topic == "homeassistant/status":
            continue  # sent by the test, playing Home Assistant
        assert message.topic.startswith((f"{BASE}/", "homeassistant/")), message.topic
        if message.topic.startswith("homeassistant/"):
            if not payload:
                continue  # an entity the model file cannot offer, removed
            config = json.loads(payload)
            topics = ("state_topic", "image_topic", "command_topic")  # a button has a command only
            assert len(payload) < 2000 and any(key in config for key in topics)
        elif message.topic == f"{BASE}/last_episode":
            assert message.raw.startswith(b"\x89PNG") and len(message.raw) < 100_000
        elif payload in ("ON", "OFF", "online", "offline", ""):
            continue
        elif message.topic == f"{BASE}/preset":
            assert payload in presets, payload
        elif payload.startswith("{"):
            assert set(json.loads(payload)) <= allowed_json, payload
        else:
            assert len(payload) <= 6 and np.isfinite(float(payload)), payload

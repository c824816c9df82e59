"""Helpers shared by the tests: a fixture model, synthetic audio, a broker and a subscriber."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import paho.mqtt.client as paho
import soundfile
from paho.mqtt.enums import CallbackAPIVersion

from cry_mqtt.features import FeatureParams
from cry_mqtt.model import ModelInfo

RATE = 16000
REPO = Path(__file__).resolve().parent.parent
DATA = Path(os.environ.get("CRY_MQTT_DATA", REPO.parent / "shared" / "data"))


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
    process: subprocess.Popen | None = None

    def start(self) -> Broker:
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        if not self.port:
            self.port = free_port()
        conf = self.workdir / f"mosquitto-{self.port}.conf"
        # As root, mosquitto would drop to its own user, which cannot read the test's files.
        user = "user root\n" if os.geteuid() == 0 else ""
        conf.write_text(
            f"listener {self.port} 127.0.0.1\n{user}persistence false\n"
            f"allow_anonymous {str(self.anonymous).lower()}\n{self.extra_config}"
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


@dataclass
class Message:
    topic: str
    payload: str
    retain: bool


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
                Message(msg.topic, msg.payload.decode(errors="replace"), msg.retain)
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

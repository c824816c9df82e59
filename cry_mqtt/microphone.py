"""The microphone: an input device through sounddevice (PortAudio), and the device lookups
behind ``cry-mqtt devices`` and the agent's start-up messages."""

from __future__ import annotations

import logging
import queue
import time
from collections.abc import Iterator

import numpy as np

from cry_mqtt.audio import AudioError, Resampler, mono
from cry_mqtt.stopping import POLL_SECONDS, check_stop

log = logging.getLogger(__name__)


def capture_rate(sd, device: str | int | None, channels: int, rate: int, info: dict) -> int:
    """The rate to open an input device at: the target rate where the device takes it (no
    resampling), else its default rate."""
    try:
        sd.check_input_settings(device=device, channels=channels, samplerate=rate)
    except (ValueError, sd.PortAudioError):
        return int(info["default_samplerate"])
    return rate


class MicrophoneSource:
    """An input device through sounddevice, at the target rate where it can, else at its own
    rate resampled to the target rate."""

    def __init__(
        self,
        device: str | int | None,
        rate: int,
        samplerate: int | None,
        channels: int,
        block_seconds: float,
        buffer_seconds: float,
        stall_seconds: float,
        start_seconds: float,
    ) -> None:
        sd = import_sounddevice()
        self._sd = sd
        self._stall = stall_seconds
        self._start = start_seconds
        info = find_input_device(device)
        try:
            self._device_rate = samplerate or capture_rate(sd, device, channels, rate, info)
            self._queue: queue.Queue[np.ndarray] = queue.Queue(
                maxsize=max(1, round(buffer_seconds / block_seconds))
            )
            self._overflows = 0
            self._stream = sd.InputStream(
                device=device,
                samplerate=self._device_rate,
                channels=channels,
                dtype="float32",
                blocksize=round(block_seconds * self._device_rate),
                callback=self._callback,
            )
        except (ValueError, sd.PortAudioError) as exc:
            raise AudioError(f"cannot open input device {device!r}: {exc}") from exc
        self._name = info["name"]
        self._resample = Resampler(self._device_rate, rate)

    def _callback(self, indata: np.ndarray, frames: int, time_info, status) -> None:
        if status.input_overflow:
            self._overflows += 1
        try:
            self._queue.put_nowait(indata.copy())
        except queue.Full:
            self._overflows += 1

    def blocks(self) -> Iterator[np.ndarray]:
        log.info("listening on %r at %d Hz", self._name, self._device_rate)
        reported, next_report = 0, 0.0
        try:
            self._stream.start()
        except self._sd.PortAudioError as exc:
            raise AudioError(f"cannot start input device {self._name!r}: {exc}") from exc
        try:
            block = self._next_block(
                self._start, f"sent no audio within {self._start:g} s (audio.start_seconds)"
            )
            while True:
                if self._overflows != reported and time.monotonic() >= next_report:
                    log.warning("audio buffer overflowed %d times so far", self._overflows)
                    reported, next_report = self._overflows, time.monotonic() + 60
                yield self._resample(mono(block))
                block = self._next_block(
                    self._stall,
                    f"stopped sending audio for {self._stall:g} s (audio.stall_seconds)",
                )
        finally:
            self._stream.close(ignore_errors=True)

    def _next_block(self, seconds: float, failure: str) -> np.ndarray:
        # Not interruptible: a signal raising inside the queue's lock could leave it held.
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            try:
                return self._queue.get(timeout=min(left, POLL_SECONDS))
            except queue.Empty:
                check_stop()
        raise AudioError(f"input device {self._name!r} {failure}")


def import_sounddevice():
    """sounddevice, or an :class:`AudioError` saying that PortAudio is missing."""
    try:
        import sounddevice
    except OSError as exc:
        raise AudioError(f"cannot load PortAudio ({exc}); install libportaudio2") from exc
    return sounddevice


def find_input_device(device: str | int | None) -> dict:
    """sounddevice's description of an input device (by index or name part; None: default)."""
    sd = import_sounddevice()
    try:
        return sd.query_devices(device, "input")
    except (ValueError, sd.PortAudioError) as exc:
        if device is None:
            what = "no microphone found (PortAudio sees no input device)"
        elif str(exc).startswith("No input device matching"):
            what = f"no input device matching {device!r}"
        else:
            what = f"no input device {device!r} ({exc})"
        raise AudioError(
            f"{what}. `cry-mqtt devices` lists the inputs (set audio.device); "
            "a camera's audio works with audio.source: command; `cry-mqtt --input FILE` runs the "
            "agent on a recording (`cry-mqtt score FILE` scores one offline)"
        ) from exc


def list_input_devices() -> list[str]:
    """One line per input device: index, name, channels and default rate."""
    sd = import_sounddevice()
    lines = []
    for index, device in enumerate(sd.query_devices()):
        if device["max_input_channels"] > 0:
            marker = "*" if index == sd.default.device[0] else " "
            lines.append(
                f"{marker}{index:3d}  {device['name']}  "
                f"({device['max_input_channels']} ch, {device['default_samplerate']:.0f} Hz)"
            )
    return lines

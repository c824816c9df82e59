"""Both images, built for real on Debian bookworm, and the agent run inside each.

podman builds them (there is no Docker daemon here: chroot isolation, the host's network so that
pip and apt reach their registries and the build reaches the test's own wheel server) FROM a
stand-in base made by debootstrap: Debian bookworm's minimal system, as ``debian:bookworm-slim``
and the add-on's Debian base are, with ca-certificates already in it (each build mounts the
host's CA bundle, for pip behind an intercepting proxy, and the package's setup cannot replace a
mounted file). Nothing can ``podman run`` here (cgroups), so each image's file system is exported
and its commands run through chroot with the image's user, environment and working directory,
against a Mosquitto broker on loopback. The stand-in base has no s6-overlay: the add-on's
``with-contenv`` becomes a plain ``exec``.
"""

from __future__ import annotations

import contextlib
import functools
import http.server
import json
import os
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from addon_support import ADDON, addon_config, release_step
from support import BASE, CRIES, DISCOVERY, REPO, REQUIRE_IMAGES_ENV, Subscriber, free_port

pytestmark = pytest.mark.slow

SBIN_PATH = f"{os.environ.get('PATH', '')}:/usr/sbin:/sbin"
CA_BUNDLE = Path("/etc/ssl/certs/ca-certificates.crt")


def tool(name: str) -> str | None:
    return shutil.which(name, path=SBIN_PATH)


def debian_mirror() -> str | None:
    """The Debian mirror that apt on this machine uses for bookworm (/etc/apt/sources.list*)."""
    sources = [Path("/etc/apt/sources.list"), *sorted(Path("/etc/apt/sources.list.d").glob("*"))]
    for path in sources:
        text = path.read_text() if path.is_file() else ""
        for stanza in text.split("\n\n"):  # deb822 .sources
            uris = re.search(r"^URIs:\s*(\S+)", stanza, re.M)
            suites = re.search(r"^Suites:(.*)$", stanza, re.M)
            if uris and suites and "bookworm" in suites.group(1).split():
                return uris.group(1)
        line = re.search(r"^deb\s+(?:\[[^\]]*\]\s+)?(\S+)\s+bookworm\s", text, re.M)
        if line:
            return line.group(1)
    return None


@dataclass
class Podman:
    """podman with storage of the test's own: the machine's images are never touched."""

    root: Path

    def __call__(self, *args: str, **kw: Any) -> subprocess.CompletedProcess:
        storage = ["--root", str(self.root / "storage"), "--runroot", str(self.root / "run")]
        return subprocess.run([tool("podman"), *storage, *args], **kw)

    def build(self, name: str, context: Path, *args: str) -> dict[str, Any]:
        """Build ``context`` as ``name``; podman's description of the image."""
        volume = [f"--volume={CA_BUNDLE}:{CA_BUNDLE}:ro"] if CA_BUNDLE.is_file() else []
        log = self.root / f"build-{name.rpartition('/')[2]}.log"
        with log.open("w") as out:
            done = self(
                *("build", "--isolation=chroot", "--network=host", "--pull=never"),
                *("--format=docker", *volume, f"--tag={name}", *args, str(context)),
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        assert done.returncode == 0, log.read_text()[-4000:]
        inspect = self("image", "inspect", name, capture_output=True, text=True, check=True)
        return json.loads(inspect.stdout)[0]

    def export(self, name: str, dest: Path) -> Path:
        """The image's file system, unpacked into ``dest``."""
        create = self("create", name, capture_output=True, text=True, check=True)
        container = create.stdout.split()[-1]
        dest.mkdir()
        with subprocess.Popen([tool("tar"), "-x", "-C", str(dest)], stdin=subprocess.PIPE) as tar:
            self("export", container, stdout=tar.stdin, check=True)
            tar.stdin.close()
        assert tar.returncode == 0
        self("rm", container, capture_output=True, check=True)
        return dest


@dataclass
class Image:
    """An image's exported file system and podman's description of it."""

    root: Path
    inspect: dict[str, Any]

    @property
    def user(self) -> str:
        return self.inspect["Config"].get("User") or "root"

    @property
    def default_command(self) -> list[str]:
        """What ``docker run IMAGE`` runs: the entry point and its arguments."""
        config = self.inspect["Config"]
        return [*(config.get("Entrypoint") or []), *(config.get("Cmd") or [])]

    def command(self, argv: list[str]) -> list[str]:
        """``argv`` as a container of the image runs it: chrooted into its files, as its user,
        in its working directory, in a mount namespace of its own with /dev and /proc."""
        script = (
            'root=$1 user=$2 dir=$3; shift 3; mount --rbind /dev "$root/dev" && '
            'mount -t proc proc "$root/proc" && '
            'exec "$0" --userspec="$user" "$root" env --chdir="$dir" "$@"'
        )
        workdir = self.inspect["Config"].get("WorkingDir") or "/"
        return [
            *(tool("unshare"), "--mount", "--fork", "--kill-child=SIGTERM"),
            *(tool("sh"), "-c", script, tool("chroot"), str(self.root), self.user, workdir),
            *argv,
        ]

    def env(self) -> dict[str, str]:
        return dict(item.split("=", 1) for item in self.inspect["Config"]["Env"])

    def run(self, *argv: str, timeout: float = 120) -> subprocess.CompletedProcess:
        return subprocess.run(
            self.command(list(argv)),
            env=self.env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )

    def start(self, log: Path, *argv: str) -> subprocess.Popen:
        """``argv`` in the background, in a process group of its own, its output to ``log``."""
        with log.open("w") as out:
            return subprocess.Popen(
                self.command(list(argv)),
                env=self.env(),
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def healthy(self) -> bool:
        """Whether the image's HEALTHCHECK command passes now."""
        kind, command = self.inspect["Healthcheck"]["Test"]
        assert kind == "CMD-SHELL"
        return self.run("/bin/sh", "-c", command, timeout=30).returncode == 0


@pytest.fixture(scope="module")
def podman(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Podman]:
    missing = [name for name in ("podman", "debootstrap", "chroot", "unshare") if not tool(name)]
    reason = None
    if missing:
        reason = f"needs {', '.join(missing)} (apt-get install podman debootstrap; .ci/run does)"
    elif os.geteuid() != 0:
        reason = "needs root (debootstrap, chroot)"
    elif debian_mirror() is None:
        reason = "needs a Debian bookworm mirror in /etc/apt/sources.list* for debootstrap"
    if reason:
        if os.environ.get(REQUIRE_IMAGES_ENV):
            pytest.fail(reason)
        pytest.skip(reason)
    instance = Podman(tmp_path_factory.mktemp("podman"))
    yield instance
    instance("rmi", "--all", "--force", capture_output=True)
    shutil.rmtree(instance.root, ignore_errors=True)


@pytest.fixture(scope="module")
def base(podman: Podman) -> str:
    """The stand-in for debian:bookworm-slim (the root Dockerfile's FROM) and the add-on's base."""
    name = re.search(r"^FROM (\S+)$", (REPO / "Dockerfile").read_text(), re.M).group(1)
    rootfs = podman.root / "bookworm"
    subprocess.run(
        [
            *(tool("debootstrap"), "--variant=minbase", "--include=ca-certificates"),
            *("bookworm", str(rootfs), debian_mirror() or ""),
        ],
        capture_output=True,
        check=True,
    )
    with subprocess.Popen(
        [tool("tar"), "-C", str(rootfs), "-c", "."], stdout=subprocess.PIPE
    ) as tar:
        podman(
            "import",
            "-",
            f"docker.io/library/{name}",
            stdin=tar.stdout,
            check=True,
            capture_output=True,
        )
    shutil.rmtree(rootfs)
    return name


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from the checkout's files as the release workflow builds it."""
    source = tmp_path_factory.mktemp("source")
    tracked = subprocess.run(
        ["git", "ls-files", "-z"], cwd=REPO, capture_output=True, text=True, check=True
    ).stdout.split("\0")
    for name in filter(None, tracked):
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    command = shlex.split(release_step("wheel", "Build the wheel")["run"])
    assert command[0] == "python"
    subprocess.run([sys.executable, *command[1:]], cwd=source, capture_output=True, check=True)
    [built] = (source / "dist").glob("*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_url(wheel: Path) -> Iterator[str]:
    """The wheel, served on loopback for the add-on's build."""
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=wheel.parent)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}/{wheel.name}"
    server.shutdown()
    server.server_close()


@pytest.fixture(scope="module")
def root_image(podman: Podman, base: str) -> Iterator[Image]:
    inspect = podman.build("localhost/cry-mqtt-test", REPO)
    image = Image(podman.export("localhost/cry-mqtt-test", podman.root / "root-image"), inspect)
    yield image
    shutil.rmtree(image.root, ignore_errors=True)


@pytest.fixture(scope="module")
def addon_image(podman: Podman, base: str, wheel_url: str) -> Iterator[Image]:
    version = addon_config()["version"]
    args = [f"--build-arg=BUILD_FROM=docker.io/library/{base}"]
    args += [f"--build-arg=BUILD_VERSION={version}", f"--build-arg=CRY_MQTT_WHEEL={wheel_url}"]
    inspect = podman.build("localhost/cry-mqtt-addon-test", ADDON, *args)
    image = Image(podman.export("localhost/cry-mqtt-addon-test", podman.root / "addon"), inspect)
    # The real base's s6-overlay runs the start script with the container's environment.
    contenv = image.root / "usr" / "bin" / "with-contenv"
    contenv.write_text('#!/bin/sh\nexec "$@"\n')
    contenv.chmod(0o755)
    yield image
    shutil.rmtree(image.root, ignore_errors=True)


def put_recording(image: Image, data_dir: Path) -> str:
    """A real cry recording inside the image, readable by its user; its path there."""
    target = image.root / "tmp" / "cry.caf"
    shutil.copyfile(data_dir / "donateacry-corpus" / CRIES[0], target)
    target.chmod(0o644)
    return "/tmp/cry.caf"


def test_the_root_image_runs_the_agent_as_its_user(root_image, broker, data_dir):
    image = root_image
    assert image.user not in ("root", "0")
    assert image.run("id", "-u").stdout.strip() != "0"
    assert "audio" in image.run("id", "-Gn").stdout.split()  # for /dev/snd
    ffmpeg = image.run("ffmpeg", "-version")
    assert ffmpeg.returncode == 0 and ffmpeg.stdout.startswith("ffmpeg version ")
    recording = put_recording(image, data_dir)
    config = image.root / "config" / "config.yaml"
    config.write_text(f"mqtt: {{host: 127.0.0.1, port: {broker.port}}}\n")
    assert not image.healthy()  # no heartbeat yet

    sub = Subscriber(broker.port)
    try:
        done = image.run(*image.default_command, "--input", recording, "--fast")
        assert done.returncode == 0, done.stderr
        sub.wait_for(lambda m: m.topic == DISCOVERY.format("binary_sensor", "crying"))
        sub.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload in ("ON", "OFF"))
        sub.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "offline")
    finally:
        sub.close()
    assert image.healthy()  # the heartbeat the audio loop touched, as the image's user


def test_the_add_on_image_runs_its_start_script_on_a_camera_command(addon_image, broker, data_dir):
    image = addon_image
    ffmpeg = image.run("ffmpeg", "-version")
    assert ffmpeg.returncode == 0 and ffmpeg.stdout.startswith("ffmpeg version ")
    recording = put_recording(image, data_dir)
    # As the Supervisor writes them: a camera command (ffmpeg reading the recording in real
    # time, over and over) and a broker of the user's own.
    options = json.loads(json.dumps(addon_config()["options"]))
    options["audio"] = {
        "source": "command",
        "command": f"ffmpeg -loglevel error -re -stream_loop -1 -i {recording} "
        "-vn -ac 1 -ar 16000 -f s16le -",
    }
    options["mqtt"] = {"host": "127.0.0.1", "port": broker.port}
    (image.root / "data").mkdir()  # the Supervisor mounts the add-on's /data
    (image.root / "data" / "options.json").write_text(json.dumps(options))
    assert not image.healthy()

    sub = Subscriber(broker.port)
    log = image.root.parent / "addon.log"
    agent = image.start(log, *image.default_command)
    try:
        sub.wait_for(lambda m: m.topic == DISCOVERY.format("binary_sensor", "crying"), timeout=60)
        sub.wait_for(lambda m: m.topic == f"{BASE}/crying" and m.payload in ("ON", "OFF"))
        level = sub.wait_for(
            lambda m: m.topic == f"{BASE}/sound_level" and m.payload != "", timeout=60
        )
        assert float(level.payload) > -60  # the crying came through ffmpeg
        assert image.healthy()
        os.killpg(agent.pid, signal.SIGTERM)
        sub.wait_for(lambda m: m.topic == f"{BASE}/availability" and m.payload == "offline")
        agent.wait(30)
    finally:
        sub.close()
        with contextlib.suppress(ProcessLookupError):
            os.killpg(agent.pid, signal.SIGKILL)  # whatever is left of the group (ffmpeg)
        agent.wait(30)
    assert "Traceback" not in log.read_text(), log.read_text()

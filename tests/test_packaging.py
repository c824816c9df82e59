"""What CI, the README and the Dockerfile promise must match the project."""

import re
import tomllib

from support import REPO, REQUIRE_FFMPEG_ENV, REQUIRE_IMAGES_ENV


def test_ci_runs_the_readme_test_command():
    readme = (REPO / "README.md").read_text()
    ci = (REPO / ".ci" / "run").read_text()
    command = ci.strip().splitlines()[-1]
    assert "pytest" in command
    assert command in readme
    assert "export CRY_MQTT_REQUIRE_DATA=1" in ci  # CI must not skip the tests that need data


def test_runtime_needs_no_torch_or_fastai():
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    runtime = " ".join(project["dependencies"]).lower()
    assert "torch" not in runtime and "fastai" not in runtime
    assert any(dep.startswith("torch==") for dep in project["optional-dependencies"]["train"])
    assert project["scripts"]["cry-mqtt"] == "cry_mqtt.__main__:main"


def test_dockerfile_copies_what_exists_and_runs_the_console_script():
    dockerfile = (REPO / "Dockerfile").read_text()
    for line in re.findall(r"^COPY (.+)$", dockerfile, re.MULTILINE):
        *sources, _ = line.split()
        for source in sources:
            assert (REPO / source).exists(), source
    assert 'ENTRYPOINT ["cry-mqtt"]' in dockerfile
    assert "torch" not in dockerfile
    assert re.search(r"^USER (?!root)\w+", dockerfile, re.MULTILINE)


def test_healthcheck_watches_the_heartbeat_the_agent_touches():
    dockerfile = (REPO / "Dockerfile").read_text()
    heartbeat = re.search(r"CRY_MQTT_HEARTBEAT_FILE=(\S+)", dockerfile).group(1)
    healthcheck = dockerfile[dockerfile.index("HEALTHCHECK") :]
    assert heartbeat in healthcheck and "-mmin -1" in healthcheck
    assert "XDG_STATE_HOME=/data" in dockerfile


def test_compose_and_systemd_examples_run_the_console_script():
    import yaml

    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())
    agent = compose["services"]["cry-mqtt"]
    assert agent["build"] == ".."
    assert "/dev/snd:/dev/snd" in agent["devices"]
    assert "./config.yaml:/config/config.yaml:ro" in agent["volumes"]
    assert "mosquitto" in compose["services"]
    assert (REPO / "deploy" / "mosquitto.conf").exists()
    unit = (REPO / "deploy" / "cry-mqtt.service").read_text()
    assert "ExecStart=/opt/cry-mqtt/bin/cry-mqtt --config /etc/cry-mqtt/config.yaml" in unit
    assert "User=cry-mqtt" in unit and "SupplementaryGroups=audio" in unit


def test_root_image_is_debian_bookworm_with_ffmpeg_and_sends_only_the_agent():
    dockerfile = (REPO / "Dockerfile").read_text()
    assert re.search(r"^FROM debian:bookworm-slim$", dockerfile, re.MULTILINE)
    assert re.search(r"apt-get install [^\n]*\sffmpeg\b", dockerfile)
    ignore = (REPO / ".dockerignore").read_text().split("\n")
    assert ignore[ignore.index("*") :][:4] == ["*", "!pyproject.toml", "!README.md", "!cry_mqtt"]


def test_ci_installs_and_requires_what_the_image_test_needs():
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(rf"^export .*\b{REQUIRE_IMAGES_ENV}=1\b", ci, re.MULTILINE)
    for package in ("podman", "debootstrap"):
        assert f"missing+=({package})" in ci


def test_ci_installs_and_requires_ffmpeg_for_the_camera_tests():
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(rf"^export .*\b{REQUIRE_FFMPEG_ENV}=1\b", ci, re.MULTILINE)
    assert "missing+=(ffmpeg)" in ci

"""The release workflow (it cannot run here): valid for GitHub, and consistent with the add-on."""

import re
import subprocess
import sys

import pytest
import yaml
from addon_support import (
    ADDON,
    DOCKER_IMAGE_BUILD,
    RELEASE_WORKFLOW,
    addon_config,
    release_step,
    release_workflow,
)

PLATFORMS = {"amd64": "linux/amd64", "aarch64": "linux/arm64"}
"""Docker's platform for each of the Supervisor's architectures."""


def check_workflow(path) -> subprocess.CompletedProcess:
    """check-jsonschema with the GitHub workflow schema it ships (SchemaStore's)."""
    command = ["-m", "check_jsonschema", "--builtin-schema", "vendor.github-workflows", str(path)]
    return subprocess.run([sys.executable, *command], capture_output=True, text=True)


def test_the_workflow_follows_githubs_schema(tmp_path):
    done = check_workflow(RELEASE_WORKFLOW)
    assert done.returncode == 0, done.stdout + done.stderr
    # The check is live: a job without runs-on fails it.
    broken = yaml.safe_load(RELEASE_WORKFLOW.read_text())
    del broken["jobs"]["wheel"]["runs-on"]
    (tmp_path / "broken.yml").write_text(yaml.safe_dump(broken))
    assert check_workflow(tmp_path / "broken.yml").returncode == 1


def test_a_version_tag_releases_the_wheel_first():
    workflow = release_workflow()
    assert workflow["on"] == {"push": {"tags": ["v*"]}}
    assert workflow["permissions"] == {"contents": "write", "packages": "write"}
    tag_check = release_step("wheel", "The tag names the add-on's version")["run"]
    assert "addon/config.yaml" in tag_check and '"$GITHUB_REF_NAME" = "v$version"' in tag_check
    assert release_step("wheel", "Build the wheel")["run"].endswith("--wheel-dir dist .")
    publish = release_step("wheel", "Publish it with the release")["run"]
    assert publish.startswith('gh release create "$GITHUB_REF_NAME" dist/*.whl ')
    assert workflow["jobs"]["addon"]["needs"] == "wheel"


def test_each_architecture_gets_the_image_the_supervisor_pulls():
    config = addon_config()
    image = config["image"]
    assert DOCKER_IMAGE_BUILD.match(image) and "{arch}" in image
    job = release_workflow()["jobs"]["addon"]
    matrix = job["strategy"]["matrix"]["include"]
    assert {entry["arch"]: entry["platform"] for entry in matrix} == {
        arch: PLATFORMS[arch] for arch in config["arch"]
    }
    [build] = [step for step in job["steps"] if step.get("uses", "").startswith("docker/build-")]
    settings = build["with"]
    assert settings["context"] == ADDON.name and settings["push"] is True
    assert settings["platforms"] == "${{ matrix.platform }}"
    outputs = "steps.addon.outputs"
    assert settings["build-args"].splitlines() == [
        f"BUILD_FROM=${{{{ {outputs}.from }}}}",
        f"BUILD_VERSION=${{{{ {outputs}.version }}}}",
    ]
    assert settings["tags"] == f"${{{{ {outputs}.image }}}}:${{{{ {outputs}.version }}}}"
    reads = release_step("addon", "Version, base image and image name from the add-on's files")
    for source in ("addon/config.yaml", "addon/build.yaml", "['build_from'][arch]"):
        assert source in reads["run"], source
    assert "config['image'].replace('{arch}', arch)" in reads["run"]


@pytest.mark.parametrize("job", ["wheel", "addon"])
def test_every_action_is_pinned_to_a_release(job):
    for step in release_workflow()["jobs"][job]["steps"]:
        if "uses" in step:
            assert re.fullmatch(r"[\w-]+/[\w-]+@v\d+", step["uses"]), step["uses"]


def test_the_image_names_its_source_and_must_be_pullable_without_credentials():
    """GitHub creates a package private: the release fails, saying what to do, until anyone
    (the Supervisor, anonymously) can pull the image."""
    steps = release_workflow()["jobs"]["addon"]["steps"]
    build = next(step for step in steps if step.get("uses", "").startswith("docker/build-push"))
    source = "org.opencontainers.image.source=https://github.com/${{ github.repository }}"
    assert source in build["with"]["labels"]
    check = steps[steps.index(build) + 1]
    assert "ghcr.io/token?scope=repository:$repository:pull" in check["run"]
    assert "make the package public" in check["run"]

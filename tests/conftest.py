from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path

import pytest
from addon_support import FakeSupervisor
from support import DATA, REPO, Broker, Subscriber, build_fixture_model


@pytest.fixture(scope="session")
def fixture_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic ONNX model that follows the metadata contract (loud tone = cry)."""
    return build_fixture_model(tmp_path_factory.mktemp("model") / "fixture.onnx")


REQUIRE_DATA_ENV = "CRY_MQTT_REQUIRE_DATA"
"""Set (to 1) by ``.ci/run``: there a missing corpus fails the run instead of skipping tests."""


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared corpus (``../shared/data``, or ``$CRY_MQTT_DATA``).

    Without it the tests that need real recordings are skipped, saying how to get them, unless
    ``$CRY_MQTT_REQUIRE_DATA`` is set.
    """
    needed = (
        "donateacry-corpus",
        "negatives",
        "negatives-extra",
        "independent",
        "pretrained/yamnet",
    )
    missing = [name for name in needed if not (DATA / name).is_dir()]
    if missing:
        message = (
            f"needs the shared audio data ({', '.join(missing)} not found in {DATA}): put it at "
            "../shared/data beside the repository or set CRY_MQTT_DATA (README.md, 'Tests')"
        )
        if os.environ.get(REQUIRE_DATA_ENV):
            pytest.fail(message)
        pytest.skip(message)
    return DATA


@pytest.fixture(autouse=True)
def own_state_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings saved from Home Assistant live in each test's own folder, not in the user's
    (an agent or ``score`` without a config would read and write them there)."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))


@pytest.fixture
def broker(tmp_path: Path) -> Iterator[Broker]:
    """A Mosquitto broker of the test's own on a free loopback port."""
    instance = Broker(tmp_path).start()
    yield instance
    instance.stop()


@pytest.fixture
def subscriber(broker: Broker) -> Iterator[Subscriber]:
    sub = Subscriber(broker.port)
    yield sub
    sub.close()


@pytest.fixture
def supervisor() -> Iterator[FakeSupervisor]:
    """A fake Supervisor of the test's own; the test says how it answers."""
    fake = FakeSupervisor().start()
    yield fake
    fake.stop()


def _missing_train_packages() -> list[str]:
    """The distributions of the ``train`` extra (pyproject.toml) that are not installed."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    names = [re.match(r"[\w.-]+", req).group() for req in project["optional-dependencies"]["train"]]
    missing = []
    for name in names:
        try:
            metadata.distribution(name)
        except metadata.PackageNotFoundError:
            missing.append(name)
    return missing


class _TrainAwareModule(pytest.Module):
    """A test module that imports what only the ``train`` extra installs is skipped, saying so,
    where that extra is missing: ``pip install -e '.[dev]'`` runs the agent's tests alone."""

    def collect(self):
        try:
            return super().collect()
        except pytest.Collector.CollectError as error:
            cause = error.__cause__
            missing = _missing_train_packages()
            if isinstance(cause, ModuleNotFoundError) and missing:
                pytest.skip(
                    f"{self.path.name} needs the train extra (no module {cause.name!r}; "
                    f"not installed: {', '.join(missing)}): pip install -e '.[dev,train]'"
                )
            raise


def pytest_pycollect_makemodule(module_path: Path, parent: pytest.Collector) -> pytest.Module:
    return _TrainAwareModule.from_parent(parent, path=module_path)

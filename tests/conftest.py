from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import DATA, Broker, Subscriber, build_fixture_model


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

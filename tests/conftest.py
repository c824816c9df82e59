from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import DATA, Broker, Subscriber, build_fixture_model


@pytest.fixture(scope="session")
def fixture_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A deterministic ONNX model that follows the metadata contract (loud tone = cry)."""
    return build_fixture_model(tmp_path_factory.mktemp("model") / "fixture.onnx")


@pytest.fixture(scope="session")
def data_dir() -> Path:
    """The shared corpus (``../shared/data``, or ``$CRY_MQTT_DATA``)."""
    if not all((DATA / name).is_dir() for name in ("donateacry-corpus", "negatives")):
        pytest.fail(f"shared audio data not found at {DATA}; set CRY_MQTT_DATA")
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

"""The Home Assistant add-on's files, the Supervisor's rules for its options, a fake Supervisor."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import yaml
from support import REPO

ADDON = REPO / "addon"
RELEASE_WORKFLOW = REPO / ".github" / "workflows" / "release.yml"

# The Supervisor's schema language (supervisor/addons/options.py, RE_SCHEMA_ELEMENT).
SCHEMA_ELEMENT = re.compile(
    r"^(?:"
    r"|bool|email|url|port"
    r"|device(?:\((?P<filter>subsystem=[a-z]+)\))?"
    r"|str(?:\((?P<s_min>\d+)?,(?P<s_max>\d+)?\))?"
    r"|password(?:\((?P<p_min>\d+)?,(?P<p_max>\d+)?\))?"
    r"|int(?:\((?P<i_min>\d+)?,(?P<i_max>\d+)?\))?"
    r"|float(?:\((?P<f_min>[\d\.]+)?,(?P<f_max>[\d\.]+)?\))?"
    r"|match\((?P<match>.*)\)"
    r"|list\((?P<list>.+)\)"
    r")\??$"
)
# supervisor/addons/validate.py: an add-on's ``image`` name.
DOCKER_IMAGE_BUILD = re.compile(r"^([a-zA-Z\-\.:\d{}]+/)*?([\-\w{}]+)/([\-\w{}]+)(:[\.\-\w{}]+)?$")


def addon_config() -> dict[str, Any]:
    return yaml.safe_load((ADDON / "config.yaml").read_text())


def release_workflow() -> dict[str, Any]:
    """The release workflow, its ``on`` key as written (YAML 1.1 reads a bare ``on`` as True)."""
    workflow = yaml.safe_load(RELEASE_WORKFLOW.read_text())
    if True in workflow:
        workflow["on"] = workflow.pop(True)
    return workflow


def release_step(job: str, name: str) -> dict[str, Any]:
    """The step of the release workflow's ``job`` called ``name``."""
    [step] = [s for s in release_workflow()["jobs"][job]["steps"] if s.get("name") == name]
    return step


def leaves(tree: dict[str, Any], prefix: str = "") -> dict[str, Any]:
    """Dotted option paths (``detection.threshold``) and their values in a nested mapping."""
    out = {}
    for key, value in tree.items():
        if isinstance(value, dict):
            out.update(leaves(value, f"{prefix}{key}."))
        else:
            out[prefix + key] = value
    return out


def validate_options(schema: dict[str, Any], options: dict[str, Any], where: str = "root"):
    """Options as the Supervisor validates them before it writes ``/data/options.json``
    (``AddonOptions``): every key in the schema, the right types, required ones present."""
    for key, value in options.items():
        assert key in schema, f"option {key!r} in {where} is not in the schema"
        typ = schema[key]
        if isinstance(typ, dict):
            assert isinstance(value, dict), f"option {key!r}: expected a mapping"
            validate_options(typ, value, key)
        elif isinstance(typ, list):
            assert isinstance(value, list), f"option {key!r}: expected a list"
            for item in value:
                validate_options({key: typ[0]}, {key: item}, where)
        else:
            _validate_element(typ, value, key)
    for key in set(schema) - set(options):
        typ = schema[key]
        typ = typ[0] if isinstance(typ, list) and typ else typ
        assert isinstance(typ, str) and typ.endswith("?"), f"missing option {key!r} in {where}"


def _validate_element(typ: str, value: Any, key: str) -> None:
    match = SCHEMA_ELEMENT.match(typ)
    assert match, f"unknown type {typ!r} for option {key!r}"
    assert value is not None, f"missing required option {key!r}"
    base = typ.rstrip("?")
    if base.startswith(("str", "password")):
        assert isinstance(value, str), f"option {key!r}: expected a string"
    elif base.startswith("int"):
        assert isinstance(value, int) and not isinstance(value, bool), f"{key!r}: not an int"
        _in_range(value, match.group("i_min"), match.group("i_max"), key)
    elif base.startswith("float"):
        assert isinstance(value, int | float) and not isinstance(value, bool), f"{key!r}: float"
        _in_range(value, match.group("f_min"), match.group("f_max"), key)
    elif base == "bool":
        assert isinstance(value, bool), f"option {key!r}: expected true or false"
    elif base == "port":
        assert isinstance(value, int) and 1 <= value <= 65535, f"option {key!r}: not a port"
    elif base.startswith("list("):
        assert value in match.group("list").split("|"), f"option {key!r}: {value!r} not listed"
    elif base.startswith("match("):
        assert re.match(match.group("match"), str(value)), f"option {key!r}: no match"


def _in_range(value: float, low: str | None, high: str | None, key: str) -> None:
    """The Supervisor's ``int(min,max)`` and ``float(min,max)``: both bounds included."""
    assert low is None or value >= float(low), f"option {key!r}: below {low}"
    assert high is None or value <= float(high), f"option {key!r}: above {high}"


def write_options(path: Path, options: dict[str, Any]) -> Path:
    """Options as the Supervisor writes them (after checking them against the schema)."""
    validate_options(addon_config()["schema"], options)
    path.write_text(json.dumps(options))
    return path


def write_agent_config(
    options: Path, config: Path, supervisor_url: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess:
    """``python -m cry_mqtt.addon OPTIONS CONFIG``, as the add-on's ``run.sh`` runs it before
    the agent, asking ``supervisor_url`` for the broker."""
    return subprocess.run(
        [sys.executable, "-m", "cry_mqtt.addon", options, config, "--supervisor", supervisor_url],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


@dataclass
class FakeSupervisor:
    """The Supervisor's services API on a free loopback port: ``GET /services/mqtt``."""

    status: int = 200
    answer: dict[str, Any] = field(default_factory=dict)
    requests: list[tuple[str, str | None]] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        assert self.server is not None
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def broker(self, **data: Any) -> None:
        """Answer as the Supervisor does while the Mosquitto add-on provides the service."""
        self.status, self.answer = 200, {"result": "ok", "data": data}

    def refuse(self, status: int, message: str) -> None:
        self.status, self.answer = status, {"result": "error", "message": message}

    def start(self) -> FakeSupervisor:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                fake.requests.append((self.path, self.headers.get("Authorization")))
                body = json.dumps(fake.answer).encode()
                status = fake.status if self.path == "/services/mqtt" else 404
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.shutdown()
            self.server.server_close()

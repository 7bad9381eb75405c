"""A local NDIF server (PyPI ``ndif`` 0.1.2, the server nnsight talks to) on 127.0.0.1, CPU only.

The real stack, each piece started as its own process session (:mod:`.services`):

- ``redis-server`` (request queue and response pub/sub), bound to 127.0.0.1, no persistence;
- ``moto_server`` as the S3-compatible object store for large results and non-blocking requests;
- a Ray head with one *logical* GPU and the ``cuda_memory_bytes`` resource the controller places
  models by (it only schedules on nodes that report a GPU), kept on loopback by
  ``RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER=0``, every port fixed outside Ray's worker range;
- the controller, launched with :mod:`.ndif_server`'s CPU model actor and folder-aware evaluator;
- the API: gunicorn bound to 127.0.0.1 with ``--no-control-socket`` (else every instance shares
  one control socket in ``$HOME``), serving ndif's app through :mod:`.ndif_api`: a request with the
  stack's trusted key (``LocalNdif.trusted_key``) runs trusted, in the model actor's process; any
  other runs in ndif's process sandbox, as every ordinary API key's request does on NDIF.

Models are loaded in float32 (``NDIF_DEFAULT_DTYPE``) with the Hub offline; a local checkpoint is
addressed by its absolute path. ``up`` returns once the API answers; ``down`` stops the recorded
sessions. Measured on a 2-core machine: docs/how-to/ndif.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .cluster import ray_environment
from .services import (Running, ServiceError, claim_folder, free_ports, log_tail, program, require_folder, stop_recorded,
                       wait_for_port)

PORT_NAMES = ("redis", "store", "api", "gcs", "client", "node_manager", "object_manager", "dashboard",
              "dashboard_grpc", "dashboard_agent", "metrics", "runtime_env")
#: the logical GPU's memory as the controller sees it: room for any model a CPU can serve
LOGICAL_GPU_BYTES = 64 << 30


@dataclass
class LocalNdif(Running):
    """A running local stack: its folder (record, logs, Ray's temp dir), the API's address and the
    key whose requests run trusted (any other key's run in the sandbox)."""

    host: str
    trusted_key: str


def required_programs() -> dict[str, str | None]:
    """The executables the stack needs, and where each was found (None: missing)."""
    return {name: program(name) for name in ("redis-server", "ray", "gunicorn", "moto_server")}


def check_requirements() -> None:
    """Refuse to start (before anything runs) when a program or package is missing."""
    missing = [name for name, path in required_programs().items() if path is None]
    import importlib.util

    missing += [f"python package {p}" for p in ("ndif", "moto") if importlib.util.find_spec(p) is None]
    if missing:
        raise InputError(f"a local NDIF needs {', '.join(missing)}: apt install redis-server; "
                         "pip install 'instruction-anchors[remote]'")


def _environment(folder: Path, ports: dict[str, int], trusted_key: str) -> dict[str, str]:
    env = {k: v for k, v in ray_environment(folder).items() if not k.startswith("NDIF_")}
    env.update({
        "NDIF_REDIS_URL": f"redis://127.0.0.1:{ports['redis']}",
        "NDIF_OBJECT_STORE_URL": f"http://127.0.0.1:{ports['store']}",
        "NDIF_OBJECT_STORE_ACCESS_KEY": "anchors",
        "NDIF_OBJECT_STORE_SECRET_KEY": "anchors",
        "NDIF_RAY_ADDRESS": f"ray://127.0.0.1:{ports['client']}",
        "NDIF_API_URL": f"http://127.0.0.1:{ports['api']}",
        "NDIF_API_PORT": str(ports["api"]),
        "NDIF_MODEL_IMPORT_PATH": "anchors.backends.ndif_server.CpuModelActor",
        "NDIF_CONTROLLER_IMPORT_PATH": "anchors.backends.ndif_server.ControllerActor",
        "NDIF_DEFAULT_DTYPE": "float32",
        "NDIF_SANDBOX_POOL_SIZE": "2",
        "ANCHORS_NDIF_TRUSTED_KEY": trusted_key,
        "NDIF_HOME": str(folder),
        "AWS_ACCESS_KEY_ID": "anchors",
        "AWS_SECRET_ACCESS_KEY": "anchors",
    })
    return env


def _ray_head_command(ray: str, folder: Path, ports: dict[str, int], num_cpus: int) -> list[str]:
    resources = {"head": 10, "cuda_memory_bytes": LOGICAL_GPU_BYTES, "cpu_memory_bytes": LOGICAL_GPU_BYTES}
    return [ray, "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={ports['gcs']}",
            f"--ray-client-server-port={ports['client']}", f"--node-manager-port={ports['node_manager']}",
            f"--object-manager-port={ports['object_manager']}", "--include-dashboard=true",
            "--dashboard-host=127.0.0.1", f"--dashboard-port={ports['dashboard']}",
            f"--dashboard-agent-grpc-port={ports['dashboard_grpc']}",
            f"--dashboard-agent-listen-port={ports['dashboard_agent']}", f"--metrics-export-port={ports['metrics']}",
            f"--runtime-env-agent-port={ports['runtime_env']}", f"--num-cpus={num_cpus}", "--num-gpus=1",
            f"--resources={json.dumps(resources)}", f"--temp-dir={folder / 'ray'}", "--disable-usage-stats"]


def up(folder: str | Path | None = None, *, num_cpus: int = 4, timeout: float = 180.0) -> LocalNdif:
    """Start the stack in ``folder`` (a new temporary one by default) and wait until the API answers
    and reaches the Ray cluster. ``num_cpus`` are Ray's logical CPUs (Ray starts that many idle
    workers): the controller takes one and each deployed model half of one, so 4 serve 6 models.

    On any failure everything already started is stopped and the error carries the failing
    service's log tail."""
    check_requirements()
    folder, temporary, group = claim_folder(folder, "andif-", "a local NDIF", "anchors ndif down")
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
    trusted_key = str(uuid.uuid4())
    env = _environment(folder, ports, trusted_key)
    programs = required_programs()
    host = f"http://127.0.0.1:{ports['api']}"
    group.record(ports=ports, host=host, trusted_key=trusted_key)
    try:
        redis = group.start("redis", [programs["redis-server"], "--port", str(ports["redis"]), "--bind", "127.0.0.1",
                                      "--save", "", "--appendonly", "no", "--dir", str(folder)], env)
        store = group.start("store", [programs["moto_server"], "-H", "127.0.0.1", "-p", str(ports["store"])], env)
        ray = group.start("ray", _ray_head_command(programs["ray"], folder, ports, num_cpus), env)
        for port, service in ((ports["redis"], redis), (ports["store"], store), (ports["client"], ray)):
            wait_for_port(port, service, timeout)
        _launch_controller(folder, {**env, "RAY_ADDRESS": f"127.0.0.1:{ports['gcs']}"}, timeout)
        api = group.start("api", [programs["gunicorn"], "--config", "python:ndif.services.api.gunicorn_conf",
                                  "--bind", f"127.0.0.1:{ports['api']}", "--no-control-socket",
                                  "anchors.backends.ndif_api:app"], env)
        wait_for_port(ports["api"], api, timeout)
        _wait_until_ready(host, api.log, timeout)
    except BaseException:
        stop_recorded(folder, remove=temporary)
        raise
    return LocalNdif(folder, host, trusted_key, temporary=temporary)


def _launch_controller(folder: Path, env: dict[str, str], timeout: float, attempts: int = 3) -> None:
    """Deploy the controller into the stack's Ray cluster; retried, since on a loaded machine the
    cluster's GCS can still refuse drivers a while after its port opens (seen in CI: "Timed out
    while waiting for GCS to become available")."""
    for attempt in range(1, attempts + 1):
        launch = subprocess.run([sys.executable, "-m", "anchors.backends.ndif_server"], cwd=folder, timeout=timeout,
                                env=env, capture_output=True, text=True)
        if launch.returncode == 0:
            return
        if attempt < attempts and "GCS" in launch.stderr:
            time.sleep(2.0 * attempt)
            continue
        raise ServiceError(f"the NDIF controller did not launch:\n{launch.stderr[-3000:]}")


def _wait_until_ready(host: str, log: str, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        try:
            # /status answers only once the API's connection to the Ray cluster is up
            with urllib.request.urlopen(f"{host}/status", timeout=10) as response:
                if response.status == 200:
                    return
        except OSError as error:
            last = str(error)
        time.sleep(0.5)
    raise ServiceError(f"the NDIF API at {host} did not answer /status ({last}); log tail:\n{log_tail(log)}")


def down(folder: str | Path) -> None:
    """Stop the stack recorded in ``folder`` (by its process-session ids) and remove Ray's files."""
    stop_recorded(folder)


def host_of(folder: str | Path) -> str:
    """The API address of the stack recorded in ``folder``."""
    return require_folder(folder).info()["host"]


def trusted_key_of(folder: str | Path) -> str:
    """The key whose requests the stack recorded in ``folder`` runs trusted."""
    return require_folder(folder).info()["trusted_key"]

"""A local Ray cluster on 127.0.0.1 (``anchors ray up`` / ``down``, and the tests' fixture): one
head node started as its own process session, every port fixed outside Ray's worker range, no
dashboard, stopped by the recorded session id (never ``ray stop``, which kills by name)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from ..errors import InputError
from .services import Running, claim_folder, free_ports, program, require_folder, stop_recorded, wait_for_port

PORT_NAMES = ("gcs", "node_manager", "object_manager", "metrics", "runtime_env", "dashboard_agent", "dashboard_grpc",
              "dashboard")


@dataclass
class LocalCluster(Running):
    """A running local cluster: its folder and its GCS address."""

    address: str


def ray_environment(folder: Path) -> dict[str, str]:
    """The environment Ray processes run in: loopback only, no usage reports, TMPDIR in ``folder``."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAY_")}
    tmp = folder / "tmp"
    tmp.mkdir(parents=True, exist_ok=True)
    env.update(TMPDIR=str(tmp), RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER="0", RAY_USAGE_STATS_ENABLED="0",
               GRPC_ENABLE_FORK_SUPPORT="0", HF_HUB_OFFLINE="1")
    return env


def ray_program() -> str:
    found = program("ray")
    if found is None:
        raise InputError("a Ray cluster needs Ray: pip install 'instruction-anchors[cluster]'")
    return found


def up(folder: str | Path | None = None, *, num_cpus: int = 2, num_gpus: int = 0, timeout: float = 120.0) -> LocalCluster:
    """Start a one-node Ray cluster in ``folder`` (a new temporary one by default) with ``num_cpus``
    logical CPUs (one per worker of a sweep) and ``num_gpus`` GPUs."""
    folder, temporary, group = claim_folder(folder, "aray-", "a Ray cluster", "anchors ray down")
    ports = dict(zip(PORT_NAMES, free_ports(len(PORT_NAMES))))
    address = f"127.0.0.1:{ports['gcs']}"
    group.record(ports=ports, address=address)
    command = [ray_program(), "start", "--head", "--block", "--node-ip-address=127.0.0.1", f"--port={ports['gcs']}",
               f"--node-manager-port={ports['node_manager']}", f"--object-manager-port={ports['object_manager']}",
               f"--metrics-export-port={ports['metrics']}", f"--runtime-env-agent-port={ports['runtime_env']}",
               f"--dashboard-agent-listen-port={ports['dashboard_agent']}",
               f"--dashboard-agent-grpc-port={ports['dashboard_grpc']}", "--include-dashboard=false",
               "--dashboard-host=127.0.0.1", f"--dashboard-port={ports['dashboard']}",
               f"--num-cpus={num_cpus}", f"--num-gpus={num_gpus}", f"--temp-dir={folder / 'ray'}",
               "--disable-usage-stats"]
    head = group.start("ray", command, ray_environment(folder))
    try:
        wait_for_port(ports["gcs"], head, timeout)
    except BaseException:
        stop_recorded(folder, remove=temporary)
        raise
    return LocalCluster(folder, address, temporary=temporary)


def down(folder: str | Path) -> None:
    """Stop the cluster recorded in ``folder`` by its process-session id."""
    stop_recorded(folder)


def address_of(folder: str | Path) -> str:
    return require_folder(folder).info()["address"]

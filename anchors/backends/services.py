"""Background services started for real and stopped by the process-session ids recorded at start.

Each service is spawned as the leader of a new process session (``setsid``); whatever it forks
(Ray's GCS, raylet and workers; gunicorn's workers) stays in that session. Stopping signals every
process whose session id was recorded, never a process found by name, so a user's own Ray or NDIF
on the same machine is left alone. The record is a JSON file in the stack's folder, written before
the stack is used, so ``down`` works from another process (``anchors ndif down FOLDER``).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

from ..errors import InputError

#: Ray hands its workers ports 10002–19999; fixed ports are drawn outside that range.
RAY_WORKER_PORTS = range(10002, 20000)
RECORD = "services.json"


class ServiceError(RuntimeError):
    """A service did not come up (its log's tail is in the message) or could not be stopped."""


@dataclass
class Started:
    """One started service: its name, the leader's pid (= its session id) and its log file."""

    name: str
    session: int
    log: str


def program(name: str) -> str | None:
    """The executable ``name``: this environment's own (beside its python), else from ``PATH``."""
    local = Path(sys.executable).parent / name
    return str(local) if local.exists() else shutil.which(name)


#: Ray puts unix sockets at FOLDER/ray/session_<date>_<time>_<pid>/sockets/plasma_store: 70 bytes
#: after the folder, of the 107 a socket path may have
RAY_SOCKET_SUFFIX = 70


def check_socket_room(folder: Path) -> None:
    """Refuse a folder too long for Ray's unix socket paths, before anything starts."""
    if len(str(folder.resolve())) + RAY_SOCKET_SUFFIX > 107:
        raise InputError(f"{folder}: too long a path for Ray's unix sockets (at most {107 - RAY_SOCKET_SUFFIX} "
                         "characters); use a short folder such as /tmp/anchors-ray")


@dataclass
class Running:
    """Services running from ``folder``; ``temporary``: ``up`` made the folder, so ``down`` removes
    it (logs and record too)."""

    folder: Path
    temporary: bool = field(default=False, kw_only=True)

    def down(self) -> None:
        """Stop them (again: nothing happens)."""
        if (self.folder / RECORD).exists():
            stop_recorded(self.folder, remove=self.temporary)


def claim_folder(folder: str | Path | None, prefix: str, what: str, stop_command: str
                 ) -> tuple[Path, bool, ServiceGroup]:
    """The folder to start ``what`` in (a new short one in /tmp named ``prefix…`` when None, then
    temporary), its service group, and whether it is temporary; refused when too long for Ray's
    sockets or when something recorded there still runs."""
    temporary = folder is None
    folder = Path(folder) if folder is not None else Path(tempfile.mkdtemp(prefix=prefix, dir="/tmp"))
    check_socket_room(folder)
    group = ServiceGroup(folder)
    if group.alive():
        raise InputError(f"{folder} already runs {what} (pids {group.alive()}); stop it with {stop_command} {folder}")
    return folder, temporary, group


def free_ports(count: int) -> list[int]:
    """``count`` distinct free loopback ports outside Ray's worker range."""
    ports: list[int] = []
    held = []
    while len(ports) < count:
        s = socket.socket()
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
        held.append(s)
        if port not in RAY_WORKER_PORTS and port not in ports:
            ports.append(port)
    for s in held:
        s.close()
    return ports


def wait_for_port(port: int, service: Started, timeout: float = 120.0) -> None:
    """Block until 127.0.0.1:``port`` accepts connections; fail with the service's log if it dies."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        if not session_pids(service.session):
            break
        time.sleep(0.2)
    raise ServiceError(f"{service.name} did not listen on 127.0.0.1:{port}; log tail:\n{log_tail(service.log)}")


def log_tail(path: str, lines: int = 30) -> str:
    try:
        return "\n".join(Path(path).read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class ServiceGroup:
    """Services started in ``folder`` (logs beside the record), stopped in reverse order."""

    def __init__(self, folder: str | Path):
        self.folder = Path(folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        self.started: list[Started] = [Started(**s) for s in self._read().get("services", [])]

    def _read(self) -> dict:
        path = self.folder / RECORD
        return json.loads(path.read_text()) if path.exists() else {}

    def record(self, **info: object) -> None:
        """Write the started services (and ``info``, e.g. ports) atomically."""
        data = {**self._read(), **info, "services": [asdict(s) for s in self.started]}
        tmp = self.folder / (RECORD + ".tmp")
        tmp.write_text(json.dumps(data, indent=1))
        tmp.replace(self.folder / RECORD)

    def info(self) -> dict:
        return self._read()

    def start(self, name: str, command: Sequence[str], env: dict[str, str]) -> Started:
        """Spawn ``command`` as a new session's leader, its output in ``folder/NAME.log``."""
        log = self.folder / f"{name}.log"
        with open(log, "ab") as out:
            process = subprocess.Popen(list(command), env=env, stdout=out, stderr=subprocess.STDOUT,
                                       stdin=subprocess.DEVNULL, start_new_session=True, cwd=self.folder)
        service = Started(name, process.pid, str(log))
        self.started.append(service)
        self.record()
        return service

    def stop(self, timeout: float = 5.0) -> None:
        """Stop every recorded session, newest first: SIGTERM, then SIGKILL what is left after
        ``timeout`` seconds. Redis, moto and gunicorn exit within 2 s of SIGTERM; a Ray head whose
        workers hold models leaves some of them running however long one waits (measured: still
        there after 20 s), and the stack's state is thrown away, so a longer grace only delays."""
        for service in reversed(self.started):
            stop_session(service.session, timeout)
        self.started = []
        self.record()

    def alive(self) -> list[int]:
        """Pids still running in any recorded session."""
        return [pid for s in self.started for pid in session_pids(s.session)]


def session_pids(session: int) -> list[int]:
    """Every live process whose session id is ``session`` (read from ``/proc``)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()  # after "pid (comm)": state ppid pgrp session …
        if int(fields[3]) == session and fields[0] != "Z":
            pids.append(int(entry.name))
    return pids


def stop_session(session: int, timeout: float) -> None:
    for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5.0)):
        pids = session_pids(session)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + wait
        while session_pids(session) and time.monotonic() < deadline:
            time.sleep(0.1)
    if session_pids(session):
        raise ServiceError(f"processes of session {session} survived SIGKILL: {session_pids(session)}")


def stop_recorded(folder: str | Path, *, remove: bool = False) -> None:
    """Stop the services recorded in ``folder`` and remove Ray's session files there (with
    ``remove``, the whole folder: logs and record too)."""
    require_folder(folder).stop()
    shutil.rmtree(Path(folder) if remove else Path(folder) / "ray", ignore_errors=True)


def require_folder(folder: str | Path) -> ServiceGroup:
    """The services recorded in ``folder``, or a clear error if none were."""
    if not (Path(folder) / RECORD).exists():
        raise InputError(f"{folder}: no {RECORD} here; nothing was started in this folder")
    return ServiceGroup(folder)

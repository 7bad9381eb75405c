"""``.ci/system-packages``, the one place the Debian packages the tests need are named: as root it
installs the missing ones with apt-get, otherwise it names them and stops (exit 2). ``dpkg``, ``id``,
``java`` and ``apt-get`` are stand-ins on PATH here, so the real system is left as it is."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / ".ci" / "system-packages"


def _stand_ins(folder: Path, *, uid: int, installed: set[str], java: bool) -> Path:
    folder.mkdir()
    listed = " ".join(sorted(installed))
    scripts = {
        "dpkg": f'for p in {listed}; do [ "$2" = "$p" ] && exit 0; done; exit 1',
        "id": f"echo {uid}",
        "apt-get": f'echo "apt-get $*" >> {folder}/apt.log',
    }
    if java:
        scripts["java"] = "exit 0"
    for name, body in scripts.items():
        (folder / name).write_text(f"#!/bin/sh\n{body}\n")
        (folder / name).chmod(0o755)
    for tool in ("mktemp", "rm", "tail"):  # the only other programs the script runs
        (folder / tool).symlink_to(shutil.which(tool))
    return folder


def _run(bin_dir: Path) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": str(bin_dir)}  # nothing else: the real java must not be found
    return subprocess.run([shutil.which("bash"), str(SCRIPT)], capture_output=True, text=True, env=env, timeout=60)


def test_as_another_user_it_names_the_missing_packages_and_stops(tmp_path):
    bin_dir = _stand_ins(tmp_path / "bin", uid=1000, installed={"wordnet-base", "chromium"}, java=False)
    done = _run(bin_dir)
    assert done.returncode == 2
    assert done.stderr.strip() == ("the tests need these Debian packages; install them as root: apt-get install "
                                   "wordnet-sense-index chromium-driver redis-server default-jre-headless")
    assert not (bin_dir / "apt.log").exists()


def test_as_root_it_installs_only_what_is_missing(tmp_path):
    bin_dir = _stand_ins(tmp_path / "bin", uid=0, installed={"wordnet-base", "wordnet-sense-index", "chromium", "chromium-driver"}, java=True)
    done = _run(bin_dir)
    assert done.returncode == 0, done.stderr
    assert (bin_dir / "apt.log").read_text().splitlines() == ["apt-get update -qq", "apt-get install -y -qq redis-server"]


def test_with_everything_there_it_does_nothing(tmp_path):
    everything = {"wordnet-base", "wordnet-sense-index", "chromium", "chromium-driver", "redis-server"}
    bin_dir = _stand_ins(tmp_path / "bin", uid=1000, installed=everything, java=True)
    done = _run(bin_dir)
    assert done.returncode == 0 and done.stderr == "" and not (bin_dir / "apt.log").exists()

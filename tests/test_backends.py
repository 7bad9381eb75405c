"""Beyond one machine, tested on the real engines: a local NDIF 0.1.2 server (redis, moto, Ray,
the controller and the gunicorn API, all on 127.0.0.1) and a local Ray cluster. Remote results equal
local ones; a batch's reply stays small; a server killed mid-run fails naming the batch and the
re-run resumes; Ray workers (one killed mid-sweep) give identical data; nothing listens outside
loopback and nothing is left running."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import tempfile
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import psutil
import pytest
import xarray as xr
from nnsight import CONFIG
from nnsight.intervention.backends.remote import RemoteBackend

from anchors.backends import cluster, ndif
from anchors.backends.ray_sweep import run_on_ray
from anchors.backends.services import ServiceGroup, session_pids
from anchors.cli import main
from anchors.datasets import DataFolder
from anchors.errors import InputError
from anchors.experiments import HeadIntervention, ImageAttention, KnockoutProfile, LensProfile, PositionControls
from anchors.models import ModelSpec
from anchors.models.organisms import organism_path
from anchors.models.tiny import tiny_model
from anchors.tracer import EditsIgnoredError, check_edits_reach
from anchors.organism.task import write_data
from anchors.runner import RemoteBatchError, Retry, run

from .test_experiments import followed_and_failed

pytestmark = pytest.mark.slow
TOLERANCE = 1e-5
KNOCKOUT = dict(method="naive", windows=(3,), layers=(0, 2), pathways=("instruction->generated", "visual->instruction"))


@pytest.fixture(scope="module")
def organism_samples(tmp_path_factory):
    data = write_data(tmp_path_factory.mktemp("remote") / "data", 8)
    return DataFolder.open(data).traced(ModelSpec("organism").adapter().tokenizer)


@pytest.fixture(scope="module")
def family_samples():
    """Samples of the tiny families run remotely, half followed and half failed."""
    return {spec: followed_and_failed(tiny_model(spec.split(":")[1], "sdpa")) for spec in ("tiny:qwen2_5_vl", "tiny:gemma3")}


def assert_close(local: xr.Dataset, remote: xr.Dataset) -> None:
    assert set(local.data_vars) == set(remote.data_vars)
    for name in local.data_vars:
        mine, theirs = local[name].values, remote[name].values
        if mine.dtype.kind == "f":
            np.testing.assert_allclose(theirs, mine, rtol=0, atol=TOLERANCE, err_msg=name)
        else:
            np.testing.assert_array_equal(theirs, mine, err_msg=name)


def _analyses(lens: xr.Dataset, image: bool = True) -> dict:
    """The analyses run remotely; image attention (the same trace primitives) on the organism only."""
    return {"lens": LensProfile(top_k=3), "knockout": KnockoutProfile(**KNOCKOUT),
            "knockout-reuse": KnockoutProfile(**{**KNOCKOUT, "method": "reuse"}),
            "intervene": HeadIntervention(lens, ks=(1, 2), alphas=(2.0,), n_random=2),
            **({"image-attention": ImageAttention(lens, top_k=2, n_random=1, n_boxes=2)} if image else {})}


@contextmanager
def sent(stack: ndif.LocalNdif, trusted: bool):
    """Requests sent with the stack's trusted key (run in the model actor's process) or with an
    ordinary key (run in ndif's process sandbox, as every ordinary API key's request is)."""
    previous = CONFIG.API.APIKEY
    CONFIG.API.APIKEY = stack.trusted_key if trusted else "an-ordinary-key"
    try:
        yield
    finally:
        CONFIG.API.APIKEY = previous


@pytest.mark.parametrize("spec", ["organism", "tiny:qwen2_5_vl", "tiny:gemma3"])
def test_remote_analyses_equal_local(ndif_stack, spec, organism_samples, family_samples):
    """Sandboxed and trusted alike: readouts call modules instead of reading weights (a sandboxed
    block sees a weightless model), so lens, knockout, intervene (and image attention and the
    position controls on the organism) equal the local results, computed once in batches of 4,
    within 1e-5. Per path the model is loaded once (its norms measured in one request); each
    editing run first passes the canary (one request). Trusted runs take two batches of 4,
    sandboxed ones one of 8 (each request waits for a fresh sandbox process)."""
    data = organism_samples[:4] + organism_samples[8:12] if spec == "organism" else family_samples[spec]
    local_lens = run(LensProfile(top_k=3), ModelSpec(spec), data, batch_size=4)
    analyses = _analyses(local_lens, image=spec == "organism")
    variants = {"default": data, "swapped": data}
    if spec == "organism":  # the position controls (reuse: one request per variant)
        analyses["controls"] = PositionControls(window=1, layers=(0, 2))
    local = {name: local_lens if name == "lens" else run(analysis, ModelSpec(spec),
                                                         variants if name == "controls" else data, batch_size=4)
             for name, analysis in analyses.items()}
    for trusted, batch_size in ((True, 4), (False, 8)):
        with sent(ndif_stack, trusted):
            remote_model = ModelSpec(spec, remote=True).load()
            for name, analysis in analyses.items():
                remote = run(analysis, remote_model, variants if name == "controls" else data, batch_size=batch_size)
                assert remote.attrs["backend"] == f"ndif:{ndif_stack.host}", name
                assert_close(local[name], remote)


def test_a_deployment_that_ignores_mask_edits_is_refused_before_the_sweep(ndif_stack, organism_samples, tmp_path):
    """A copy of the organism deployed with attention that never receives the 4-D mask (as flash
    attention): the canary's knockout changes nothing, so the sweep is refused before its first
    batch, naming the cause; head scaling still takes effect there and is not blamed. On the
    organism's own deployment both edits move the answer."""
    folder = Path(shutil.copytree(organism_path(), tmp_path / "maskless"))
    pinned = {"attn_implementation": "causal-only", "pin_attention": True}  # kept whatever the client asks
    (ndif_stack.folder / "deployments.json").write_text(json.dumps({str(folder): pinned}))
    out = tmp_path / "knockout.nc"
    with sent(ndif_stack, True), pytest.raises(EditsIgnoredError, match=r"ignores mask edits \(a knockout\): .*flash") as caught:
        run(KnockoutProfile(**KNOCKOUT), ModelSpec(str(folder), remote=True), organism_samples[:4], out=out)
    assert "head scaling" not in str(caught.value)
    assert not out.exists() and not list((tmp_path / "knockout.nc.parts").glob("batch-*"))
    with sent(ndif_stack, True):
        moved = check_edits_reach(ModelSpec("organism", remote=True).load(), organism_samples[0])
    assert min(moved.values()) > 1e-2, moved


def test_remote_reply_per_batch_of_8_is_small(ndif_stack, organism_samples, monkeypatch, capsys):
    """Readouts are reduced inside the trace: what comes back per batch is kilobytes."""
    received: list[int] = []
    finalize = RemoteBackend.finalize
    monkeypatch.setattr(RemoteBackend, "finalize", lambda self, content: received.append(len(content))
                        or finalize(self, content))
    lens = run(LensProfile(top_k=3), ModelSpec("organism"), organism_samples, batch_size=8)
    monkeypatch.setattr(CONFIG.API, "APIKEY", ndif_stack.trusted_key)
    per_batch: dict[str, list[tuple[int, int]]] = {}
    for name, analysis in _analyses(lens).items():
        batches = per_batch[name] = []

        def log(message: str) -> None:  # noqa: B023 - each analysis's own list
            if message.endswith(": done"):
                batches.append((sum(received), len(received)))
                received.clear()

        received.clear()
        run(analysis, ModelSpec("organism", remote=True), organism_samples, batch_size=8, log=log)
    with capsys.disabled():
        print(f"\nbytes returned per batch of 8 (organism, {len(organism_samples)} samples):",
              "; ".join(f"{k} {max(b for b, _ in v):,} B at most, {v[-1][1]} requests" for k, v in per_batch.items()))
    assert all(len(v) == -(-len(organism_samples) // 8) for v in per_batch.values())
    assert all(b <= 1 << 20 for v in per_batch.values() for b, _ in v), per_batch
    # a lens batch is one request, and so is a naive knockout batch (the first also measures the norms);
    # an intervene batch is two: the unedited batch, then every setting in one session
    assert per_batch["lens"][-1][1] == 1 and per_batch["knockout"][-1][1] == 1 and per_batch["intervene"][-1][1] == 2


def test_remote_refuses_the_backward_pass(organism_samples):
    """``atp`` reads gradients, which a sandboxed request cannot: refused before anything loads or
    is sent (no server runs for this test), naming what runs instead."""
    for method in ("atp", "atp+verify"):
        with pytest.raises(InputError, match=rf"--method {re.escape(method)} cannot run remotely: .*gradients.*"
                                             "use --method naive or reuse"):
            run(KnockoutProfile(method=method), ModelSpec("organism", remote=True), organism_samples)


def test_server_killed_mid_run_fails_naming_the_batch_then_resumes(ndif_stack, tmp_path, organism_samples,
                                                                  monkeypatch):
    """A private stack started with the CLI is stopped with the CLI as the first of 4 batches
    finishes, with 3 batches in flight (``in_flight=3``): the run retries, then fails naming a batch;
    the batches that finished are kept, and the session's server finishes the rest (3 in flight
    again) without recomputing them, equal to a local run. ``down`` stops every process the stack
    started, found by the session ids it recorded, and keeps the folder's logs. Requests go with
    each stack's trusted key (no sandbox start per request; the sandbox is tested above)."""
    organism_samples = organism_samples[:8]
    out = tmp_path / "lens.nc"
    folder = Path(tempfile.mkdtemp(prefix="andif-", dir="/tmp"))  # short: Ray's socket paths
    assert main(["ndif", "up", "--folder", str(folder), "--quiet"]) == 0
    group = ServiceGroup(folder)
    assert {s.name for s in group.started} == {"redis", "store", "ray", "api"}
    assert len(group.alive()) >= 8
    sessions = [s.session for s in group.started]
    messages: list[str] = []

    def log(message: str) -> None:
        messages.append(message)
        if message.endswith(": done") and sum(m.endswith(": done") for m in messages) == 1:
            assert main(["ndif", "down", str(folder), "--quiet"]) == 0

    CONFIG.API.HOST = ndif.host_of(folder)
    monkeypatch.setattr(CONFIG.API, "APIKEY", ndif.trusted_key_of(folder))
    try:
        with pytest.raises(RemoteBatchError, match=r"batch [1-4]/4 \(samples .*\) failed on the server .* 2 times"):
            run(LensProfile(top_k=3), ModelSpec("organism", remote=True), organism_samples, batch_size=2, out=out,
                log=log, retry=Retry(attempts=2, backoff=0.1), in_flight=3)
    finally:
        CONFIG.API.HOST = ndif_stack.host
        ndif.down(folder)  # again: nothing happens if the run got as far as the first batch
    assert any("retrying" in m for m in messages)
    assert not any(session_pids(s) for s in sessions) and group.alive() == []
    assert (folder / "api.log").is_file() and not (folder / "ray").exists()  # down by folder keeps the logs
    shutil.rmtree(folder)
    done = sorted(int(m.split("/")[0].split()[1]) for m in messages if m.endswith(": done"))
    kept = sorted(p.name for p in (tmp_path / "lens.nc.parts").glob("batch-*.nc"))
    assert 1 <= len(done) < 4 and kept == [f"batch-{i - 1:05d}.nc" for i in done]
    messages.clear()
    monkeypatch.setattr(CONFIG.API, "APIKEY", ndif_stack.trusted_key)
    resumed = run(LensProfile(top_k=3), ModelSpec("organism", remote=True), organism_samples, batch_size=2, out=out,
                  log=messages.append, in_flight=3)
    assert [m for m in messages if m.endswith("skipped")] == [f"batch {i}/4: already done, skipped" for i in done]
    assert sorted(m for m in messages if m.endswith(": done")) == [f"batch {i}/4: done" for i in range(1, 5)
                                                                     if i not in done]
    assert_close(run(LensProfile(top_k=3), ModelSpec("organism"), organism_samples, batch_size=2), resumed)


def test_a_stack_up_made_is_removed_by_its_down():
    """``up`` without a folder makes a temporary one; ``down`` stops everything and removes it (a
    Ray cluster: the same service group as NDIF's stack, started in seconds)."""
    local = cluster.up(num_cpus=1)
    group = ServiceGroup(local.folder)
    assert group.alive() and local.temporary
    local.down()
    assert group.alive() == [] and not local.folder.exists()
    local.down()  # again: nothing happens


def _listeners(pids: set[int]) -> list[str]:
    return [f"{c.laddr.ip}:{c.laddr.port} (pid {c.pid})" for c in psutil.net_connections(kind="inet")
            if c.status == psutil.CONN_LISTEN and c.pid in pids]


def test_nothing_listens_outside_loopback(ndif_stack, ray_cluster):
    pids = set(ServiceGroup(ndif_stack.folder).alive()) | set(ServiceGroup(ray_cluster.folder).alive())
    listening = _listeners(pids)
    assert len(listening) >= 10  # redis, moto, the API and Ray's many services
    assert all(entry.startswith(("127.0.0.1:", "::ffff:127.0.0.1:", "::1:")) for entry in listening), listening


def test_a_folder_too_long_for_rays_sockets_is_refused_before_starting(tmp_path):
    with pytest.raises(InputError, match="too long a path for Ray's unix sockets"):
        cluster.up(tmp_path / ("x" * 40))
    assert not (tmp_path / ("x" * 40)).exists()


def _single_threaded_reference(analysis, samples) -> xr.Dataset:
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each Ray worker computes (one CPU each)
    try:
        return run(analysis, ModelSpec("organism"), samples, batch_size=2)
    finally:
        torch.set_num_threads(threads)


def test_ray_two_workers_equal_one_process(ray_cluster, organism_samples, tmp_path):
    analysis = KnockoutProfile(**KNOCKOUT)
    messages: list[str] = []
    result = run_on_ray(analysis, "organism", organism_samples, out=tmp_path / "k.nc", address=ray_cluster.address,
                        batch_size=2, log=messages.append)
    xr.testing.assert_identical(result.drop_attrs(), _single_threaded_reference(analysis, organism_samples).drop_attrs())
    workers = {m.rsplit(" ", 1)[1] for m in messages if "started on worker pid" in m}
    assert len(workers) == 2
    again: list[str] = []
    run_on_ray(analysis, "organism", organism_samples, out=tmp_path / "k.nc", address=ray_cluster.address,
               batch_size=2, log=again.append)
    assert again == [f"{tmp_path / 'k.nc'} is already complete"]


def test_ray_worker_killed_mid_sweep_is_replaced(ray_cluster, organism_samples, tmp_path):
    organism_samples = organism_samples[:8]
    analysis = LensProfile(top_k=3)
    messages: list[str] = []
    killed: list[str] = []

    def log(message: str) -> None:
        messages.append(message)
        if message.startswith("batch 3/4: started on worker pid") and not killed:
            killed.append(message)
            os.kill(int(message.rsplit(" ", 1)[1]), signal.SIGKILL)

    result = run_on_ray(analysis, "organism", organism_samples, out=tmp_path / "lens.nc",
                        address=ray_cluster.address, batch_size=2, log=log)
    assert "batch 3/4: its worker died; rescheduled on a new worker" in messages
    xr.testing.assert_identical(result.drop_attrs(), _single_threaded_reference(analysis, organism_samples).drop_attrs())


def test_ray_cli_sweep_and_cluster_commands(ray_cluster, organism_samples, tmp_path, capsys):
    """``ray up``/``ray down`` on a private cluster; the sweep on the session's (one cluster start,
    and one set of workers, fewer)."""
    folder = Path(tempfile.mkdtemp(prefix="aray-", dir="/tmp"))  # short: Ray's socket paths
    assert main(["ray", "up", "--folder", str(folder), "--cpus", "2", "--quiet"]) == 0
    address, stop = capsys.readouterr().out.strip().splitlines()
    assert stop == f"# stop it with: anchors ray down {folder}"
    try:
        assert address == cluster.address_of(folder)
    finally:
        assert main(["ray", "down", str(folder), "--quiet"]) == 0
    assert not ServiceGroup(folder).alive() and (folder / "services.json").is_file()  # down by folder keeps the logs
    shutil.rmtree(folder)
    data = write_data(tmp_path / "data", 4)
    assert main(["lens", "--data", str(data), "--out", str(tmp_path / "lens.nc"), "--batch-size", "2",
                 "--ray", ray_cluster.address, "--quiet"]) == 0
    assert xr.open_dataset(tmp_path / "lens.nc").attrs["experiment"] == "lens_profile"

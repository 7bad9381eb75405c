"""``--dry-run`` and :func:`anchors.dry_run`: the plan from the config, processor and data alone.
Its forwards equal the traces (and stacked reruns) the run then performs, per knockout method, for
the lens and for the head intervention, on the organism and a tiny model; the command loads no
weights and writes nothing; a Qwen2.5-VL-7B config (no weights) gets a plan under the paper preset."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

import anchors
from anchors.cli import main
from anchors.datasets import DataFolder
from anchors.experiments import HeadIntervention, KnockoutProfile, LensProfile
from anchors.models import ModelSpec
from anchors.organism.task import write_data
from anchors.runner import dry_run, run
from anchors.experiments.knockout import knockout_cost
from anchors.interventions.specs import Knockout
from anchors.tracer import sweep
from anchors.tracer.batching import encode_samples

from .test_experiments import followed_and_failed

KNOCKOUT = dict(windows=(1, 3), layers=(0, 1, 2), pathways=("instruction->generated", "visual->instruction", "cues->instruction"))


@pytest.fixture(scope="module")
def organism_data(tmp_path_factory):
    return write_data(tmp_path_factory.mktemp("dry") / "data", 4)


@pytest.fixture
def counted(monkeypatch):
    """Counts every trace and generation any nnsight model opens, and every stacked rerun."""
    calls: Counter = Counter()
    from nnsight import TransformersModel

    for name in ("trace", "generate"):
        original = getattr(TransformersModel, name)

        def counting(self, *args, _original=original, **kwargs):
            calls["forwards"] += 1
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(TransformersModel, name, counting)
    rerun = sweep.rerun
    monkeypatch.setattr(sweep, "rerun", lambda *a, **k: calls.update(["forwards"]) or rerun(*a, **k))
    return calls


def _model_and_samples(name: str, organism_data: Path):
    if name == "organism":
        return "organism", DataFolder.open(organism_data).traced(ModelSpec("organism").adapter().tokenizer)
    loaded = ModelSpec("tiny:qwen2_5_vl").load()
    return loaded, followed_and_failed(loaded)


@pytest.mark.parametrize("name", ["organism", "tiny:qwen2_5_vl"])
@pytest.mark.parametrize("method", ["naive", "reuse", "atp", "atp+verify"])
def test_knockout_forwards_equal_the_traces_run(name, method, organism_data, counted):
    model, samples = _model_and_samples(name, organism_data)
    counted.clear()
    analysis = KnockoutProfile(method=method, verify_top=1, max_batch_rows=8, **KNOCKOUT)
    planned = dry_run(analysis, model, samples, batch_size=4)
    assert counted["forwards"] == 0  # the plan runs nothing
    run(analysis, model, samples, batch_size=4)
    if planned.bound:  # atp+verify: which settings are verified is known only after the estimate
        assert counted["forwards"] <= planned.forwards
    else:
        assert counted["forwards"] == planned.forwards
    assert planned.naive == len(planned.costs) * (1 + 3 * 2 * 3)
    if method != "naive":
        assert planned.forwards < planned.naive


@pytest.mark.parametrize("name", ["organism", "tiny:qwen2_5_vl"])
def test_lens_and_intervene_forwards_equal_the_traces_run(name, organism_data, counted):
    """The intervention's count is an upper bound, reached on a batch where each instructed
    modality has followed and failed samples (the tiny model's: :func:`followed_and_failed`)."""
    model, samples = _model_and_samples(name, organism_data)
    counted.clear()
    lens = run(LensProfile(top_k=3), model, samples, batch_size=8)
    assert dry_run(LensProfile(top_k=3), model, samples, batch_size=8).forwards == counted["forwards"]
    counted.clear()
    analysis = HeadIntervention(lens, ks=(1, 2), alphas=(2.0,), n_random=2)
    planned = dry_run(analysis, model, samples, batch_size=8)
    result = run(analysis, model, samples, batch_size=8)
    assert planned.bound and counted["forwards"] <= planned.forwards
    groups = {(bool(f), m) for f, m in zip(result.followed.values, result.instructed.values)}
    if len(groups) == 4:
        assert counted["forwards"] == planned.forwards


def test_the_command_loads_no_weights_and_writes_nothing(organism_data, tmp_path, capsys, monkeypatch):
    from anchors.models.spec import ModelSpec as Spec

    monkeypatch.setattr(Spec, "load", lambda self: pytest.fail("the dry run loaded weights"))
    out = tmp_path / "out" / "knockout.nc"
    out.parent.mkdir()
    assert main(["knockout", "--data", str(organism_data), "--out", str(out), "--method", "reuse", "--dry-run"]) == 0
    printed = "".join(capsys.readouterr())
    assert "forwards (--method reuse)" in printed and "peak memory" in printed
    assert list(out.parent.iterdir()) == []
    assert main(["intervene", "--data", str(organism_data), "--out", str(out), "--lens", str(out), "--dry-run",
                 "--remote"]) == 2  # the lens result must exist: refused as a run would be


def qwen25_vl_7b_folder(folder: Path) -> Path:
    """Qwen2.5-VL-7B-Instruct's config (its sizes, as its config.json gives them) and processor
    settings (image pixel limits), with the tiny tokenizer's ids: no weights."""
    from transformers import Qwen2_5_VLConfig, Qwen2VLImageProcessor

    from anchors.models.tiny import tiny_config

    tiny, processor = tiny_config("qwen2_5_vl")
    text = {k: v for k, v in tiny.get_text_config().to_dict().items() if k != "layer_types"} | dict(
        hidden_size=3584, intermediate_size=18944, num_hidden_layers=28, num_attention_heads=28, num_key_value_heads=4,
        head_dim=128, vocab_size=152064, max_position_embeddings=128000, rope_parameters={
            "rope_type": "default", "mrope_section": [16, 24, 24], "rope_theta": 1000000.0})
    vision = tiny.vision_config.to_dict() | dict(depth=32, hidden_size=1280, intermediate_size=3420, num_heads=16,
                                                 out_hidden_size=3584, patch_size=14, spatial_merge_size=2,
                                                 window_size=112, fullatt_block_indexes=[7, 15, 23, 31])
    ids = {k: getattr(tiny, k) for k in ("image_token_id", "video_token_id", "vision_start_token_id")}
    Qwen2_5_VLConfig(text_config=text, vision_config=vision, **ids).save_pretrained(folder)
    processor.image_processor = Qwen2VLImageProcessor(min_pixels=3136, max_pixels=12845056)
    processor.save_pretrained(folder)
    return folder


def test_a_7b_plan_under_the_paper_preset(organism_data, tmp_path, capsys):
    folder = qwen25_vl_7b_folder(tmp_path / "qwen2.5-vl-7b")
    assert not list(folder.glob("*.safetensors"))
    assert main(["knockout", "--model", str(folder), "--data", str(organism_data), "--out", str(tmp_path / "ko.nc"),
                 "--config", "paper", "--dtype", "bfloat16", "--dry-run"]) == 0
    printed = "".join(capsys.readouterr())
    assert "(bfloat16)" in printed and "forwards (--method reuse)" in printed
    planned = dry_run(KnockoutProfile(windows=(9,)), ModelSpec(str(folder), dtype="bfloat16"),
                      DataFolder.open(organism_data).traced(ModelSpec(str(folder)).adapter().tokenizer))
    assert planned.settings == 6 * 28 and 14e9 < planned.weights_bytes < 17.5e9  # 6 pathways × 28 layers; 8.3 B params
    assert planned.peak_bytes > planned.weights_bytes and planned.forwards < planned.naive
    assert json.loads(json.dumps(planned.rows()))  # plain strings
    assert anchors.dry_run is dry_run


def test_a_remote_reuse_plan_counts_what_the_remote_sweep_runs(organism_data):
    """On a remote model ``reuse`` runs its clean trace twice (keys and values, then layer inputs):
    the plan counts what runs, through nnsight's in-process simulation of a server
    (``remote="local"``), counted as calls of the last decoder layer (which every forward and rerun
    passes once)."""
    loaded = ModelSpec("organism", remote="local").load()
    samples = DataFolder.open(organism_data).traced(loaded.adapter.tokenizer)[:4]
    batch, space = encode_samples(loaded.adapter, samples)
    n_layers = loaded.adapter.shape.n_layers
    knockouts = [Knockout(source, target, layer, 3) for source, target in (("visual", "instruction"),
                                                                          ("instruction", "generated"))
                 for layer in range(n_layers)]
    calls = []
    hook = loaded.adapter.layers(loaded.module)[-1].register_forward_hook(lambda *args: calls.append(1))
    try:
        sweep.sweep_knockouts(loaded, batch, space, knockouts, method="reuse")
    finally:
        hook.remove()
    planned = knockout_cost(loaded.adapter, samples, {"a": ("visual", "instruction"), "b": ("instruction", "generated")},
                            (3,), range(n_layers), "reuse", None)
    assert len(calls) == planned.on(remote=True) == planned.forwards + 1

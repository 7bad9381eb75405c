"""What a new user hits in the first hour, one test per reported problem: portable data folders,
every check before any work (and nothing left behind), options that do what they say, the
answer-position analyses from the command line, messages that name the user-facing thing,
readable figures and self-describing NetCDF."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import matplotlib.pyplot as plt
import numpy as np
import pytest
import xarray as xr

from anchors.cli import main
from anchors.datasets import DataFolder
from anchors.experiments import KnockoutProfile
from anchors.models import ModelSpec
from anchors.models.tiny import tiny_folder
from anchors.organism.task import write_data
from anchors.report import FIGURES, write_report
from anchors.results import load
from anchors.runner import run

from .mc2_fixture import write_image

FIXTURES = Path(__file__).parent / "fixtures"
TINY = ["--model", "tiny:qwen2_5_vl", "--quiet", "--batch-size", "4"]
RECORDS = [("red", "green", "color"), ("tennis", "soccer", "sport_recognition"),
           ("happy", "sad", "sentiment_understanding"), ("left", "right", "positional_reasoning")]


def _records(folder: Path, rows=RECORDS) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    lines = []
    for i, (vision, text, task) in enumerate(rows):
        write_image(folder / f"{i}.jpg", i)
        lines.append(json.dumps({"id": f"r{i}", "image": f"{i}.jpg", "context": f"The passage says {text}.",
                                 "question": "What is the answer?", "answer_vision": vision, "answer_text": text,
                                 "task": task}))
    (folder / "records.jsonl").write_text("\n".join(lines) + "\n")
    return folder / "records.jsonl"


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("first-hour")
    records = _records(root / "mine")
    assert main(["data", "build", "--jsonl", str(records), "--variants", "default", "swapped", "system_before",
                 "system_between", "--out", str(root / "data"), "--quiet"]) == 0
    return root / "data"


@pytest.fixture(scope="module")
def weightless(tmp_path_factory) -> Path:
    """A tiny checkpoint without weights: a command that reaches the weights fails differently."""
    folder = tmp_path_factory.mktemp("weightless") / "model"
    shutil.copytree(tiny_folder("qwen2_5_vl"), folder)
    (folder / "model.safetensors").unlink()
    return folder


def _error(capsys, argv: list[str]) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return [line for line in err.splitlines() if line.strip()][-1]


# -- 1. portable data folders ------------------------------------------------------------------


def test_a_moved_data_folder_still_runs_from_another_directory(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _records(Path("mydata"))
    assert main(["data", "build", "--jsonl", "mydata/records.jsonl", "--out", "built", "--quiet"]) == 0
    # images outside the folder are stored absolute, so the folder can move and be used from anywhere
    assert json.loads(Path("built/samples.jsonl").read_text().splitlines()[0])["image"].startswith("/")
    shutil.move("built", tmp_path / "elsewhere")
    (tmp_path / "cwd").mkdir()
    monkeypatch.chdir(tmp_path / "cwd")
    assert main(["lens", *TINY, "--data", str(tmp_path / "elsewhere"), "--no-heads", "--out", "lens.nc"]) == 0


def test_images_inside_the_data_folder_are_stored_relative(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_data(Path("demo-data"), 2)
    rows = [json.loads(line) for line in Path("demo-data/samples.jsonl").read_text().splitlines()]
    assert all(row["image"].startswith("images/") for row in rows)
    shutil.move("demo-data", tmp_path / "moved")
    folder = DataFolder.open(tmp_path / "moved")
    assert all(Path(s.image).is_file() for s in folder.samples)


def test_a_missing_image_names_the_sample_and_path(tmp_path, capsys):
    write_data(tmp_path / "d", 2)
    (tmp_path / "d" / "images" / "in0.png").unlink()
    line = _error(capsys, ["lens", *TINY, "--model", "organism", "--data", str(tmp_path / "d"), "--out", str(tmp_path / "l.nc")])
    assert "sample in0: field 'image': cannot open" in line and "in0.png" in line


# -- 2. every check before any work, nothing left behind ---------------------------------------


def test_intervene_with_an_unwritable_output_fails_before_any_setting(tmp_path, capsys, weightless, data):
    (tmp_path / "file").write_text("")
    line = _error(capsys, ["intervene", "--model", str(weightless), "--quiet", "--data", str(data), "--lens",
                           str(FIXTURES / "lens.nc"), "--out", str(tmp_path / "file" / "h.nc")])
    assert "cannot write there" in line and "is a file, not a folder" in line


def test_an_output_that_is_a_folder_is_refused_and_nothing_is_left(tmp_path, capsys, weightless, data):
    (tmp_path / "out.nc").mkdir()
    line = _error(capsys, ["lens", "--model", str(weightless), "--quiet", "--data", str(data), "--out", str(tmp_path / "out.nc")])
    assert "is a folder; give a file name" in line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.nc"] and not any((tmp_path / "out.nc").iterdir())


def test_a_refused_sweep_leaves_no_state_and_the_corrected_command_runs(tmp_path, capsys, data):
    out = tmp_path / "new" / "k.nc"
    assert "layers [10] outside 0…2" in _error(capsys, ["knockout", *TINY, "--data", str(data), "--layers", "10",
                                                          "--windows", "1", "--out", str(out)])
    assert not (tmp_path / "new").exists()
    assert main(["knockout", *TINY, "--data", str(data), "--layers", "1", "--windows", "1", "--out", str(out)]) == 0


def test_a_lens_result_from_another_model_is_refused_naming_both_head_grids(tmp_path, capsys, data):
    organism_lens = tmp_path / "organism-lens.nc"
    organism = write_data(tmp_path / "o", 2)
    assert main(["lens", "--model", "organism", "--quiet", "--data", str(organism), "--out", str(organism_lens)]) == 0
    line = _error(capsys, ["intervene", *TINY, "--data", str(data), "--lens", str(organism_lens), "--out", str(tmp_path / "h.nc")])
    assert "6 layers × 8 heads" in line and "3 layers × 4 heads" in line and not (tmp_path / "h.nc.parts").exists()


# -- 3. options do what they say or are refused -------------------------------------------------


def test_an_unknown_dtype_is_refused(capsys, data, tmp_path):
    assert "--dtype float7: not a floating-point torch dtype" in _error(
        capsys, ["lens", *TINY, "--dtype", "float7", "--data", str(data), "--out", str(tmp_path / "l.nc")])


def test_dtype_applies_to_tiny_models_too(data, tmp_path):
    out = tmp_path / "l.nc"
    assert main(["lens", *TINY, "--dtype", "bfloat16", "--no-heads", "--data", str(data), "--out", str(out)]) == 0
    assert load(out).attrs["dtype"] == "bfloat16"


def test_a_cuda_device_map_without_cuda_is_refused(monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    with pytest.raises(ValueError, match="--device-map cuda: no CUDA device is available"):
        ModelSpec("tiny:qwen2_5_vl", device_map="cuda")


def test_quantized_loading_without_cuda_is_refused_before_anything_loads(monkeypatch, capsys, data, tmp_path):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert "--quantization 4bit: bitsandbytes' 4bit loading needs a CUDA device" in _error(
        capsys, ["lens", *TINY, "--quantization", "4bit", "--data", str(data), "--out", str(tmp_path / "l.nc")])


def test_hybrid_decoder_knockouts_say_which_layers_they_cut(capsys, data, tmp_path):
    """Qwen3.5 (linear attention at layers 0 and 2, softmax at 1 and 3): a window cuts only its
    softmax layers and the result says how many; a window of linear layers alone is refused before
    any work, and so is prefix reuse."""
    hybrid = ["--model", "tiny:qwen3_5", "--quiet", "--batch-size", "4", "--data", str(data)]
    out = tmp_path / "k.nc"
    assert main(["knockout", *hybrid, "--method", "naive", "--windows", "3", "--layers", "1", "2",
                 "--pathways", "cues->instruction", "--out", str(out)]) == 0
    assert load(out).cut_layers.sel(window=3).values.tolist() == [1, 2]  # layers 0-2: 1; layers 1-3: 1 and 3
    assert ("knockout at layer 0 (window 1: layers 0) covers only linear-attention layers, which have no attention "
            "mask to edit; softmax attention layers: 1, 3") in _error(
        capsys, ["knockout", *hybrid, "--method", "naive", "--windows", "1", "--out", str(tmp_path / "w.nc")])
    assert "use --method naive" in _error(capsys, ["knockout", *hybrid, "--windows", "3", "--out", str(tmp_path / "r.nc")])


def test_an_empty_record_file_is_refused_at_build_time(tmp_path, capsys):
    (tmp_path / "empty.jsonl").write_text("")
    assert "no usable record (0 records loaded, 0 skipped); nothing to build" in _error(
        capsys, ["data", "build", "--jsonl", str(tmp_path / "empty.jsonl"), "--out", str(tmp_path / "d")])
    assert not (tmp_path / "d").exists()


def test_data_build_refuses_to_overwrite_without_the_flag(tmp_path, capsys):
    records = _records(tmp_path / "r")
    build = ["data", "build", "--jsonl", str(records), "--out", str(tmp_path / "d"), "--quiet"]
    assert main(build) == 0
    assert "already holds a data set; use --overwrite" in _error(capsys, build)
    assert main([*build, "--overwrite"]) == 0


def test_a_window_wider_than_the_model_is_noted():
    model = ModelSpec("organism")
    traced = DataFolder.open(write_data(Path(__import__("tempfile").mkdtemp()) / "d", 1)).traced(model.adapter().tokenizer)
    notes: list[str] = []
    run(KnockoutProfile(pathways=("instruction->generated",), layers=(0,)), model, traced[:1], log=notes.append)
    assert any("window 9 is wider than the model's 6 layers" in note for note in notes)


def test_limit_counts_samples_after_the_variant_filter(data, tmp_path):
    out = tmp_path / "c.nc"
    assert main(["controls", *TINY, "--data", str(data), "--limit", "2", "--window", "1", "--layers", "0",
                 "--out", str(out)]) == 0
    assert load(out).sizes["sample"] == 2 and load(out).sizes["variant"] == 4


# -- 4. answer-position analyses and heads on stdout --------------------------------------------


def test_answer_position_analyses_from_the_command_line(data, tmp_path):
    lens, heads = tmp_path / "lens.nc", tmp_path / "heads.nc"
    assert main(["lens", *TINY, "--data", str(data), "--readout-role", "generated", "--out", str(lens)]) == 0
    assert json.loads(load(lens).attrs["config"])["readout_role"] == "generated"
    assert main(["intervene", *TINY, "--data", str(data), "--lens", str(lens), "--role", "generated", "--ks", "1",
                 "--n-random", "1", "--alphas", "2", "--out", str(heads)]) == 0
    assert json.loads(load(heads).attrs["config"])["role"] == "generated"


@pytest.mark.parametrize("fmt", ["table", "csv", "json"])
def test_heads_prints_its_ranking_on_stdout_even_when_quiet(capsys, fmt):
    assert main(["heads", str(FIXTURES / "lens.nc"), "--top", "3", "--quiet", "--format", fmt]) == 0
    out = capsys.readouterr().out
    if fmt == "json":
        rows = json.loads(out)
        assert len(rows) == 6 and {"modality", "rank", "layer", "head", "score", "ranked_on"} <= set(rows[0])
        assert rows[0]["ranked_on"].startswith("followed samples (n=")
    elif fmt == "csv":
        assert out.splitlines()[0] == "modality,rank,layer,head,score,ranked_on" and len(out.splitlines()) == 7
    else:
        assert "followed samples (n=" in out and "vision" in out


def test_heads_says_when_it_ranked_all_samples_because_none_followed(tmp_path, capsys):
    lens = load(FIXTURES / "lens.nc")
    lens["followed"] = lens.followed * False
    lens.to_netcdf(tmp_path / "none-followed.nc")
    assert main(["heads", str(tmp_path / "none-followed.nc"), "--format", "json", "--quiet"]) == 0
    assert {row["ranked_on"].split(" ")[0] for row in json.loads(capsys.readouterr().out)} == {"all"}


def test_models_lists_every_verified_type_with_its_adapter_and_the_refused_ones(capsys):
    from anchors.models.tiny import TINY_MODEL_TYPES

    assert main(["models", "--format", "json"]) == 0
    rows = {row["model_type"]: row for row in json.loads(capsys.readouterr().out)}
    assert {t for t, row in rows.items() if row["status"] == "verified"} == set(TINY_MODEL_TYPES)
    assert rows["qwen2_5_vl"]["adapter"] == "mrope" and rows["llava_onevision"]["adapter"] == "structural"
    assert rows["mllama"]["status"] == "refused" and "cross-attention" in rows["mllama"]["image tokens and roles"]


# -- 5. messages ---------------------------------------------------------------------------------


def test_data_pointing_at_a_file_says_to_give_the_folder(capsys, data, tmp_path):
    line = _error(capsys, ["lens", *TINY, "--data", str(data / "samples.jsonl"), "--out", str(tmp_path / "l.nc")])
    assert "is a file; give the folder made by 'anchors data build'" in line


def test_a_result_path_that_is_a_folder_says_so(capsys, tmp_path):
    (tmp_path / "x.nc").mkdir()
    assert "x.nc: is a folder, not a result file" in _error(capsys, ["plot", str(tmp_path / "x.nc")])


def test_report_skips_an_unreadable_file_with_a_warning(tmp_path):
    shutil.copy(FIXTURES / "lens.nc", tmp_path / "lens.nc")
    (tmp_path / "broken.nc").write_bytes((FIXTURES / "knockout.nc").read_bytes()[:500])
    warnings: list[str] = []
    page = write_report(tmp_path, log=warnings.append).read_text()
    assert len(warnings) == 1 and "broken.nc" in warnings[0]
    assert "Skipped files" in page and "broken.nc" in page and "fig3b_ldar" in page


def test_dropped_samples_are_named(tmp_path):
    from anchors.datasets import AnswerDictionary

    folder = DataFolder.open(write_data(tmp_path / "d", 2))
    first = folder.samples[0]
    key = (first.compliant_answer, first.task)  # its compliant dictionary now holds the competing answer too
    folder.dictionaries[key] = AnswerDictionary(*key, (first.compliant_answer, first.competing_answer))
    logged: list[str] = []
    folder.traced(ModelSpec("organism").adapter().tokenizer, log=logged.append)
    assert "shared ids" in logged[0] and first.sample_id in logged[0]


def test_quiet_silences_the_weight_loading_bar(data, tmp_path):
    anchors = str(Path(sys.executable).with_name("anchors"))
    done = subprocess.run([anchors, "lens", *TINY, "--no-heads", "--data", str(data), "--out", str(tmp_path / "l.nc")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Loading weights" not in done.stderr and done.stderr.strip() == ""


def test_an_interrupted_run_says_how_to_resume(monkeypatch, capsys, data, tmp_path):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("anchors.runner.run_folder", interrupted)
    assert main(["lens", *TINY, "--data", str(data), "--out", str(tmp_path / "l.nc")]) == 130
    assert "run the same command again to resume" in capsys.readouterr().err


# -- 6. figures ------------------------------------------------------------------------------------


def test_window_sensitivity_panels_share_one_scale_and_order_windows():
    figure = FIGURES["knockout_profile"]["fig6_window_sensitivity"](load(FIXTURES / "knockout.nc"))
    visible = [ax for ax in figure.axes if ax.get_visible()]
    assert len({ax.get_ylim() for ax in visible}) == 1
    assert [t.get_text() for t in figure.legends[0].get_texts()] == ["window 1", "window 3"]
    plt.close(figure)


def test_mfr_curves_plot_shared_heads_only_where_they_exist(tmp_path):
    ds = load(FIXTURES / "heads.nc")
    figure = FIGURES["head_intervention"]["fig5c_mfr_curves"](ds)
    n_shared = int(ds.shared.sum())
    for ax in figure.axes:
        for line in ax.get_lines():
            if line.get_label() == "shared":
                assert max(line.get_xdata()) <= n_shared
    labels = [t.get_text() for t in figure.legends[0].get_texts()]
    assert "no intervention" in labels and ("shared" in labels) == bool(n_shared)
    assert "random draws" in figure.get_supxlabel()
    plt.close(figure)


def test_heatmap_marks_the_heads_intervened_on_with_integer_ticks():
    ds = load(FIXTURES / "heads.nc")
    figure = FIGURES["head_intervention"]["fig5b_head_heatmap"](ds)
    k = json.loads(ds.attrs["config"])["alpha_k"]
    assert f"the top {k} heads" in figure.get_supxlabel()
    ax = figure.axes[0]
    assert list(ax.get_yticks()) == list(range(ds.sizes["layer"])) and len(ax.collections[0].get_offsets()) == k
    plt.close(figure)


def test_the_report_shows_the_head_heatmap_once(tmp_path):
    for name in ("lens.nc", "heads.nc"):
        shutil.copy(FIXTURES / name, tmp_path / name)
    page = write_report(tmp_path).read_text()
    assert page.count("fig5b_head_heatmap</figcaption>") == 1


def test_subspace_figure_keeps_colours_to_one_meaning():
    figure = FIGURES["lens_profile"]["fig4_subspace_evolution"](load(FIXTURES / "lens.nc"))
    readout_colours = {line.get_color() for ax in figure.axes[:2] for line in ax.get_lines()}
    attribution_colours = {line.get_color() for line in figure.axes[2].get_lines() if line.get_label()[0] != "_"}
    assert readout_colours and attribution_colours and not readout_colours & attribution_colours
    plt.close(figure)


# -- 7. self-describing NetCDF ------------------------------------------------------------------


def test_every_variable_of_every_result_describes_itself(tmp_path):
    shutil.copy(FIXTURES / "lens.nc", tmp_path / "lens.nc")
    assert main(["heads", str(tmp_path / "lens.nc"), "--out", str(tmp_path / "ranking.nc"), "--quiet"]) == 0
    for path in [*FIXTURES.glob("*.nc"), tmp_path / "ranking.nc"]:
        with xr.open_dataset(path) as ds:
            for name, variable in ds.data_vars.items():
                assert variable.attrs.get("long_name") and "description" in variable.attrs, (path.name, name)


def test_every_coordinate_of_every_result_describes_itself():
    from anchors.results.variables import describe

    for path in FIXTURES.rglob("*.nc"):
        with xr.open_dataset(path) as ds:
            described = describe(ds)
            for name in [*ds.coords, *ds.data_vars]:
                assert described[name].attrs.get("long_name") and described[name].attrs.get("description"), (path, name)


def test_rankings_decode_to_layer_and_head_and_coordinates_are_sorted():
    heads, knockout, lens = (load(FIXTURES / f"{n}.nc") for n in ("heads", "knockout", "lens"))
    n_heads = heads.sizes["head"]
    np.testing.assert_array_equal(heads.ranking_layer * n_heads + heads.ranking_head, heads.ranking)
    for ds, name in ((knockout, "window"), (heads, "k"), (heads, "alpha")):
        assert list(ds[name].values) == sorted(ds[name].values), name
    assert "style" in lens.coords and set(lens["style"].values) == {"default"}


def test_the_organism_wording_split_is_a_sample_coordinate(tmp_path):
    model = ModelSpec("organism")
    traced = DataFolder.open(write_data(tmp_path / "d", 2)).traced(model.adapter().tokenizer)
    result = run(KnockoutProfile(pathways=("instruction->generated",), windows=(1,), layers=(0,)), model, traced)
    assert list(result["style"].values) == ["held_in"] * 2 + ["held_out"] * 2


# -- 8. help without torch -------------------------------------------------------------------------


@pytest.mark.parametrize("argv", [["--help"], ["knockout", "--help"], ["knockout", "--no-such-flag"]])
def test_help_and_argument_errors_load_no_torch(argv):
    code = (f"import sys\nfrom anchors.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print('torch' in sys.modules, 'nnsight' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "False False", done.stderr

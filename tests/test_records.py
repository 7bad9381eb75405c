"""One record per experiment (issue 22): everything derives from the records, analyses resolve into
immutable plans and keep no state, results are written by one function, and results written
before the change still load, plot and report."""

from __future__ import annotations

import ast
import json
import shutil
from pathlib import Path

import pytest
import xarray as xr

import anchors
from anchors import experiments
from anchors.cli import build_parser, main
from anchors.experiments import configs
from anchors.results.records import RECORDS, NAMES, commands, record
from anchors.report import FIGURES, key_numbers, write_report
from anchors.report import figures as figure_module
from anchors.report import numbers as key_number_module
from anchors.results import SCHEMA_VERSION, load, load_result, save
from anchors.results.provenance import MODEL_KEYS
from anchors.errors import InputError

from .fixtures.organism_reference import HERE as ORGANISM_MAIN, organism_results

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "fixtures"
# A result of every experiment, written by main before this change (no schema_version).
RESULT_FILES = {"knockout_profile": "knockout.nc", "lens_profile": "lens.nc", "head_intervention": "heads.nc",
                "position_controls": "controls.nc", "capability": "capability.nc",
                "caption_conflict": "caption_conflict.nc", "organism_agreement": "agreement.nc",
                "head_ranking": "organism-main/ranking.nc", "image_attention": "image_attention/image_attention.nc"}
PROVENANCE = {*MODEL_KEYS, "experiment", "config", "dictionary_hash", "n_samples", "batch_size", "versions", "command",
              "schema_version"}


def _copy_result(name: str, to: Path) -> None:
    """A fixture result copied to ``to``, with the data folder its overlays read images from, if any."""
    shutil.copy(FIXTURES / RESULT_FILES[name], to)
    data = (FIXTURES / RESULT_FILES[name]).parent / "data"
    if data.is_dir():
        shutil.copytree(data, to.parent / "data", dirs_exist_ok=True)


def _subcommands(parser) -> dict:
    group = next(a for a in parser._actions if a.__class__.__name__ == "_SubParsersAction")  # noqa: SLF001
    return group.choices


@pytest.mark.parametrize("experiment", RECORDS, ids=NAMES)
def test_every_record_is_known_everywhere_and_its_result_plots(experiment, tmp_path):
    if experiment.command:
        sub = _subcommands(build_parser())[experiment.command]
        assert sub.get_default("handler").__name__ == "cmd_experiment"
        flags = {option for action in sub._actions for option in action.option_strings}  # noqa: SLF001
        assert {"--out", "--model"} <= flags and ({"--data"} <= flags) == ("data" in experiment.reads)
        assert ({"--lens"} <= flags) == ("lens" in experiment.reads)
        assert getattr(anchors, experiment.analysis[1]) is getattr(experiments, experiment.analysis[1])
        assert getattr(anchors, experiment.config) is getattr(configs, experiment.config)
        assert getattr(experiments, experiment.analysis[1]).experiment == experiment.name
    assert set(FIGURES[experiment.name]) == {name for name, _ in experiment.figures} and experiment.figures
    assert callable(getattr(key_number_module, experiment.key_numbers))
    assert all(callable(getattr(figure_module, function)) for _, function in experiment.figures)
    result = tmp_path / "result.nc"
    _copy_result(experiment.name, result)
    assert load_result(result, NAMES).attrs["experiment"] == experiment.name
    assert key_numbers(load_result(result, NAMES))
    assert main(["plot", str(result), "--out", str(tmp_path / "figures"), "--quiet"]) == 0
    assert {p.stem for p in (tmp_path / "figures").glob("*.png")} >= {
        f"result-{name}" for name, _ in experiment.figures if name != "fig6_window_sensitivity"}


def test_a_result_of_every_record_reports_in_the_records_order(tmp_path):
    for name, file in RESULT_FILES.items():
        _copy_result(name, tmp_path / f"{name}.nc")
    assert main(["report", str(tmp_path), "--quiet"]) == 0
    page = (tmp_path / "report.html").read_text()
    assert "could not be drawn" not in page and "Skipped files" not in page
    positions = [page.index(f"<code>{r.name}.nc</code>") for r in RECORDS]
    assert positions == sorted(positions) and all(r.title in page for r in RECORDS)


def test_saving_names_survive_nnsight():
    """nnsight gives every object a ``save`` attribute: the exported ``save`` must still be ours."""
    import nnsight  # noqa: F401
    from anchors.results import netcdf

    assert anchors.save is netcdf.save and anchors.results.save is netcdf.save and save is netcdf.save


def test_commands_come_from_the_records():
    assert {r.command for r in commands()} <= set(_subcommands(build_parser()))
    assert [r.name for r in commands()] == [r.name for r in RECORDS if r.analysis]
    with pytest.raises(InputError, match="unknown experiment 'nope'"):
        record("nope")


def _assignments_outside_init(path: Path) -> list[str]:
    """``self.X = …`` (or augmented) in any method of any class of ``path`` but ``__init__``."""
    found = []
    for node in ast.walk(ast.parse(path.read_text())):
        if not isinstance(node, ast.ClassDef):
            continue
        for method in [n for n in node.body if isinstance(n, (ast.FunctionDef, ast.AsyncFunctionDef))]:
            if method.name == "__init__":
                continue
            for inner in ast.walk(method):
                targets = inner.targets if isinstance(inner, ast.Assign) else \
                    [inner.target] if isinstance(inner, (ast.AugAssign, ast.AnnAssign)) else []
                for target in targets:
                    base = target
                    while isinstance(base, (ast.Attribute, ast.Subscript)):
                        if isinstance(base, ast.Attribute) and isinstance(base.value, ast.Name) and base.value.id == "self":
                            found.append(f"{path.name}:{inner.lineno} {node.name}.{method.name}")
                        base = base.value
    return found


def test_no_experiment_class_assigns_an_attribute_outside_init(tmp_path):
    modules = sorted((ROOT / "anchors" / "experiments").glob("*.py"))
    assert [f for path in modules for f in _assignments_outside_init(path)] == []
    planted = tmp_path / "planted.py"  # the check itself finds what it must
    planted.write_text("class A:\n    def __init__(self):\n        self.a = 1\n    def resolve(self):\n        self.b = 2\n")
    assert _assignments_outside_init(planted) == ["planted.py:5 A.resolve"]


def test_organism_results_are_identical_to_those_main_wrote_before_the_change(tmp_path):
    for name, ds in organism_results(tmp_path).items():
        before = load(ORGANISM_MAIN / f"{name}.nc")
        xr.testing.assert_identical(ds.drop_attrs(), before.drop_attrs())
        for key in ("config", "sweep_fingerprint", "dictionary_hash", "n_samples", "experiment"):
            assert ds.attrs[key] == before.attrs[key], (name, key)
        assert ds.attrs["schema_version"] == SCHEMA_VERSION and "schema_version" not in before.attrs


def _calls_to_save(path: Path) -> list[str]:
    """Calls of ``save`` (anchors.results.netcdf's) and of xarray's ``to_netcdf`` in ``path``."""
    tree = ast.parse(path.read_text())
    return [f"{path.relative_to(ROOT)}:{n.lineno}" for n in ast.walk(tree) if isinstance(n, ast.Call)
            and (getattr(n.func, "id", None) == "save" or getattr(n.func, "attr", None) == "to_netcdf")]


def test_results_are_saved_from_one_place():
    calls = [c for path in sorted((ROOT / "anchors").rglob("*.py")) for c in _calls_to_save(path)
             if not c.startswith("anchors/results/netcdf.py")]
    places = {c.split(":")[0] for c in calls}
    # write_result (every result), and the runner's per-batch parts (not results: merged by finish)
    assert places == {"anchors/results/provenance.py", "anchors/runner/batches.py"}, calls
    assert len([c for c in calls if c.startswith("anchors/runner")]) == 1


def test_heads_out_carries_every_results_provenance(tmp_path):
    ranking = tmp_path / "ranking.nc"
    assert main(["heads", str(FIXTURES / "lens.nc"), "--out", str(ranking), "--quiet", "--format", "csv"]) == 0
    lens = load(FIXTURES / "lens.nc")
    ranked = load(ranking)
    assert PROVENANCE <= set(ranked.attrs) and ranked.attrs["experiment"] == "head_ranking"
    assert all(ranked.attrs[k] == lens.attrs[k] for k in ("model", "model_revision", "dictionary_hash"))
    assert json.loads(ranked.attrs["config"])["lens_fingerprint"] == lens.attrs["sweep_fingerprint"]
    # the organism's agreement check: tests/test_organism.py (it needs the organism's lens run)


def test_results_written_before_schema_version_load_plot_and_report(tmp_path):
    run_dir = tmp_path / "before"
    shutil.copytree(ORGANISM_MAIN, run_dir)
    assert all("schema_version" not in load(p).attrs for p in run_dir.glob("*.nc"))
    assert load_result(run_dir / "ranking.nc").attrs["experiment"] == "head_ranking"  # was rank_heads
    messages: list[str] = []
    page = write_report(run_dir, log=messages.append).read_text()
    assert "Skipped files" not in page and "could not be drawn" not in page, messages
    assert page.count("<section>") == 5
    future = load(FIXTURES / "lens.nc")
    future.attrs["schema_version"] = SCHEMA_VERSION + 1
    save(future, tmp_path / "future.nc")
    with pytest.raises(InputError, match=f"future.nc: written with result schema version {SCHEMA_VERSION + 1}"):
        load_result(tmp_path / "future.nc")


def test_key_numbers_say_why_a_value_is_missing_and_do_not_report_noise():
    knockout = load(FIXTURES / "knockout.nc")
    flat = knockout.assign(nssd=knockout.nssd * 0)
    assert all("no effect" in value for label, value in key_numbers(flat) if label.startswith("min mean NSSD"))
    heads = load(FIXTURES / "heads.nc")
    empty = heads.assign(n_evaluated=heads.n_evaluated.where(heads["mode"] != "amplify", 0))
    rows = dict(key_numbers(empty))
    assert rows["all, amplify"] == "— (no failed samples to amplify)"
    assert not any("nan" in value for value in rows.values())


def test_no_module_is_over_300_lines_and_the_cli_is_short():
    sizes = {str(p.relative_to(ROOT)): len(p.read_text().splitlines()) for p in (ROOT / "anchors").rglob("*.py")}
    assert {p: n for p, n in sizes.items() if n > 300} == {}
    assert sizes["anchors/cli.py"] <= 250


def test_every_analysis_option_help_lists_its_default_and_choices():
    for experiment in commands():
        sub = _subcommands(build_parser())[experiment.command]
        group = next(g for g in sub._action_groups if g.title == "analysis")  # noqa: SLF001
        for action in group._group_actions:  # noqa: SLF001
            assert "default: " in action.help or action.const is not None, (experiment.command, action.dest)
            if action.choices:
                assert all(str(c) in action.help for c in action.choices), (experiment.command, action.dest)

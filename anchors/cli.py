"""The ``anchors`` command line: one command per analysis.

Exit codes: 0 success; 2 usage or input error (one line on stderr, no traceback); 1 internal
error. Options may also come from a TOML file (``--config``): top-level keys apply to every
command, a ``[command]`` table to that command; command-line flags win. The resolved options are
stored in each result's attrs.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import tomllib
import traceback
import warnings
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2


class UsageError(Exception):
    """Bad options or input, reported in one line with exit code 2."""


# ----------------------------------------------------------------------------------------------
# shared helpers


class Reporter:
    """Progress bars, logs and summary tables on stderr (silent with --quiet)."""

    def __init__(self, quiet: bool) -> None:
        from rich.console import Console

        self.quiet = quiet
        self.console = Console(stderr=True, quiet=quiet)

    def log(self, message: str) -> None:
        self.console.log(message)

    @contextmanager
    def progress(self, description: str, total: int, unit: str = "samples") -> Iterator[Callable[[int], None]]:
        from rich.progress import (
            BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn,
            TimeRemainingColumn,
        )

        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                   TextColumn(f"{{task.fields[rate]}} {unit}/s"), TimeElapsedColumn(), TextColumn("ETA"),
                   TimeRemainingColumn())
        with Progress(*columns, console=self.console, disable=self.quiet, transient=False) as bar:
            task = bar.add_task(description, total=total, rate="–")
            started = time.time()

            def advance(n: int = 1) -> None:
                bar.advance(task, n)
                done = bar.tasks[0].completed
                bar.update(task, rate=f"{done / max(time.time() - started, 1e-9):.1f}")

            yield advance

    def table(self, title: str, rows: list[tuple[str, str]]) -> None:
        from rich.table import Table

        table = Table(title=title)
        table.add_column("quantity")
        table.add_column("value")
        for key, value in rows:
            table.add_row(key, value)
        self.console.print(table)


def _resolved(args: argparse.Namespace) -> dict[str, Any]:
    skip = {"handler", "config", "quiet", "out", "overwrite"}  # where and how to write is not the computation
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items()) if k not in skip}


def _load(args: argparse.Namespace, reporter: Reporter):
    from .organism import load_organism
    from .tracer.adapters import TINY_MODEL_TYPES
    from .tracer.loading import load_model
    from .tracer.tiny import tiny_model

    spec = args.model
    reporter.log(f"loading model {spec}")
    if spec.startswith("organism"):
        _, _, name = spec.partition(":")
        return load_organism(name or "qwen2_5_vl", attn_implementation=args.attn)
    if spec.startswith("tiny:"):
        model_type = spec.split(":", 1)[1]
        if model_type not in TINY_MODEL_TYPES:
            raise UsageError(f"--model {spec}: no tiny model {model_type!r}; choose from {', '.join(TINY_MODEL_TYPES)}")
        return tiny_model(model_type, args.attn)
    return load_model(spec, dtype=args.dtype, device_map=args.device_map, attn_implementation=args.attn,
                      revision=args.revision)


def _modality_samples(args: argparse.Namespace):
    from .datasets import load_dictionaries, load_samples

    data = Path(args.data)
    samples_file, dictionaries_file = data / "samples.jsonl", data / "dictionaries.jsonl"
    for path in (samples_file, dictionaries_file):
        if not path.is_file():
            raise UsageError(f"--data {data}: missing {path.name} (build it with 'anchors data build')")
    samples = load_samples(samples_file)
    if args.limit is not None:
        samples = samples[: args.limit]
    return samples, load_dictionaries(dictionaries_file)


def _traced(args: argparse.Namespace, loaded, reporter: Reporter, samples=None, dictionaries=None):
    """Tokenised traced samples: ``samples`` with ``dictionaries`` when given (already loaded),
    else the data folder's default-variant samples."""
    from .datasets import to_traced, tokenise

    if samples is None:
        samples, dictionaries = _modality_samples(args)
        samples = [s for s in samples if s.variant == "default"] or samples
    kept, coverage = tokenise(samples, dictionaries, loaded.adapter.tokenizer)
    reporter.log(f"dictionaries: {coverage.summary()}")
    if not kept:
        raise UsageError(f"--data {args.data}: no sample left after the dictionary coverage filter ({coverage.summary()})")
    return to_traced(kept)


def _sweep(args, reporter: Reporter, description: str, experiment, samples, finalise=None):
    from .tracer.results import save
    from .tracer.sweep import run_sweep

    with reporter.progress(description, len(samples)) as advance:
        result = run_sweep(experiment, samples, args.out, batch_size=args.batch_size, config=_resolved(args),
                           overwrite=args.overwrite, finalise=finalise, log=reporter.log, advance=advance)
    result.attrs["cli_config"] = json.dumps(_resolved(args), sort_keys=True)
    save(result, args.out)
    return result


def _finish(reporter: Reporter, result, out: Path) -> None:
    from .report import key_numbers

    reporter.table(f"{result.attrs.get('experiment')} — {out}", key_numbers(result))
    print(out)


# ----------------------------------------------------------------------------------------------
# commands


def cmd_data_build(args: argparse.Namespace, reporter: Reporter) -> int:
    from .datasets import build_samples, dictionaries_for, load_extra_forms, load_jsonl, load_mc2, save_dictionaries, save_samples

    if bool(args.mc2) == bool(args.jsonl):
        raise UsageError("give exactly one of --mc2 FILE (with --images DIR) or --jsonl FILE")
    if args.mc2:
        if not args.images:
            raise UsageError("--mc2 needs --images DIR (the COCO 2014 root holding train2014/ and val2014/)")
        report = load_mc2(args.mc2, args.images, strict=args.strict)
    else:
        report = load_jsonl(args.jsonl, strict=args.strict, tasks=args.tasks)
    for problem in report.problems:
        reporter.log(f"skipped: {problem}")
    samples = build_samples(report.records, styles=tuple(args.styles), variants=tuple(args.variants))
    extras = load_extra_forms(args.extra_forms) if args.extra_forms else None
    dictionaries = dictionaries_for(samples, extra_forms=extras)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    save_samples(out / "samples.jsonl", samples)
    save_dictionaries(out / "dictionaries.jsonl", dictionaries.values())
    reporter.table("data build", [("records", report.summary()), ("samples", str(len(samples))),
                                  ("dictionaries", str(len(dictionaries)))])
    print(out)
    return EXIT_OK


def cmd_knockout(args: argparse.Namespace, reporter: Reporter) -> int:
    from .tracer import experiments as ex

    pathways = {}
    for name in args.pathways:
        if name in ex.DEFAULT_PATHWAYS:
            pathways[name] = ex.DEFAULT_PATHWAYS[name]
        elif "->" in name:
            source, target = name.split("->", 1)
            pathways[name] = (tuple(source.split("+")), tuple(target.split("+")))
        else:
            raise UsageError(f"--pathways: {name!r} is neither one of {', '.join(ex.DEFAULT_PATHWAYS)} nor 'source->target'")
    loaded = _load(args, reporter)
    samples = _traced(args, loaded, reporter)
    result = _sweep(args, reporter, "knockout", lambda chunk: ex.knockout_profile(
        loaded, chunk, pathways=pathways, windows=tuple(args.windows), layers=args.layers, batch_size=args.batch_size),
        samples)
    _finish(reporter, result, Path(args.out))
    return EXIT_OK


def cmd_lens(args: argparse.Namespace, reporter: Reporter) -> int:
    from .tracer import experiments as ex

    loaded = _load(args, reporter)
    samples = _traced(args, loaded, reporter)
    result = _sweep(args, reporter, "lens", lambda chunk: ex.lens_profile(
        loaded, chunk, top_k=args.top_k, heads=not args.no_heads, batch_size=args.batch_size), samples,
        finalise=ex.with_lens_aggregates)
    _finish(reporter, result, Path(args.out))
    return EXIT_OK


def cmd_controls(args: argparse.Namespace, reporter: Reporter) -> int:
    import dataclasses

    from .tracer import experiments as ex

    loaded = _load(args, reporter)
    samples, dictionaries = _modality_samples(args)
    variants = {}
    for variant in args.variants:
        chosen = [dataclasses.replace(s, sample_id=s.sample_id.rsplit(":", 1)[0]) for s in samples if s.variant == variant]
        if not chosen:
            raise UsageError(f"--variants: the data has no '{variant}' samples (build it with --variants {variant})")
        variants[variant] = chosen
    traced = {name: _traced(args, loaded, reporter, chosen, dictionaries) for name, chosen in variants.items()}
    common = set.intersection(*({s.sample_id for s in t} for t in traced.values()))
    traced = {name: [s for s in t if s.sample_id in common] for name, t in traced.items()}
    first = list(traced)[0]
    order = [s.sample_id for s in traced[first]]
    by_id = {name: {s.sample_id: s for s in t} for name, t in traced.items()}

    def experiment(chunk):
        ids = [s.sample_id for s in chunk]
        return ex.position_controls(loaded, {name: [by_id[name][i] for i in ids] for name in traced},
                                    layers=args.layers, window=args.window, batch_size=args.batch_size)

    result = _sweep(args, reporter, "controls", experiment, [by_id[first][i] for i in order])
    _finish(reporter, result, Path(args.out))
    return EXIT_OK


def cmd_heads(args: argparse.Namespace, reporter: Reporter) -> int:
    from .tracer.experiments import rank_heads
    from .tracer.results import load, save

    lens = load(_existing(args.lens))
    ranked = rank_heads(lens)
    n_heads = ranked.sizes["head"]
    for modality in ranked.modality.values:
        rows = []
        for rank, flat in enumerate(ranked.ranking.sel(modality=modality).values[: args.top]):
            layer, head = divmod(int(flat), n_heads)
            rows.append((f"#{rank + 1}", f"layer {layer} head {head}: {float(ranked.score.sel(modality=modality, layer=layer, head=head)):+.4f}"))
        reporter.table(f"top heads, {modality} following", rows)
    if args.out:
        ranked.attrs = {**lens.attrs, "experiment": "rank_heads"}
        save(ranked, args.out)
        print(args.out)
    return EXIT_OK


def cmd_intervene(args: argparse.Namespace, reporter: Reporter) -> int:
    from .tracer import experiments as ex
    from .tracer.results import load, save

    lens = load(_existing(args.lens))
    loaded = _load(args, reporter)
    samples = _traced(args, loaded, reporter)
    if args.out.exists() and not args.overwrite:
        raise UsageError(f"{args.out} exists; use --overwrite to replace it")
    total = 2 * len(args.ks) * (2 + args.n_random) + len(args.alphas)
    with reporter.progress("interventions", total, unit="settings") as advance:
        done = [0]

        def on_batch(now: int, _total: int) -> None:
            advance(now - done[0])
            done[0] = now

        result = ex.head_intervention(
            loaded, samples, lens, ks=tuple(args.ks), amplify_alpha=args.amplify_alpha, alphas=tuple(args.alphas),
            alpha_k=args.alpha_k, n_random=args.n_random, seed=args.seed, batch_size=args.batch_size, on_batch=on_batch)
    result.attrs["cli_config"] = json.dumps(_resolved(args), sort_keys=True)
    save(result, args.out)
    _finish(reporter, result, Path(args.out))
    return EXIT_OK


def cmd_plot(args: argparse.Namespace, reporter: Reporter) -> int:
    from .report import render
    from .tracer.results import load

    path = _existing(args.result)
    out = Path(args.out) if args.out else path.parent / "figures"
    for png in render(load(path), out, stem=f"{path.stem}-"):
        print(png)
    return EXIT_OK


def cmd_report(args: argparse.Namespace, reporter: Reporter) -> int:
    from .report import write_report

    run_dir = Path(args.run_dir)
    if not run_dir.is_dir():
        raise UsageError(f"{run_dir} is not a directory")
    print(write_report(run_dir))
    return EXIT_OK


def cmd_demo(args: argparse.Namespace, reporter: Reporter) -> int:
    from .organism.demo import run_demo

    out = Path(args.out) if args.out else Path("runs") / time.strftime("demo-%Y%m%d-%H%M%S")
    report = run_demo(out, n_samples=args.samples, batch_size=args.batch_size, reporter=reporter)
    reporter.console.print(f"[bold green]demo finished[/]: results, figures and report in {out}")
    print(report)
    return EXIT_OK


def cmd_organism_train(args: argparse.Namespace, reporter: Reporter) -> int:
    from .organism.train import TrainConfig, train_and_save

    config = TrainConfig(steps=args.steps, batch_size=args.batch_size, lr=args.lr, seed=args.seed, threads=args.threads,
                         architecture=args.architecture)
    with reporter.progress("training", config.steps, unit="steps") as advance:
        record = train_and_save(args.out, config, on_step=lambda step, loss: advance(1))
    reporter.table("organism", [("final loss", f"{record['loss_every_100'][-1]:.4f}"),
                                ("held-in", json.dumps(record["metrics"]["held_in"])),
                                ("held-out", json.dumps(record["metrics"]["held_out"]))])
    print(args.out)
    return EXIT_OK


def cmd_roles(args: argparse.Namespace, reporter: Reporter) -> int:
    from PIL import Image
    from rich.table import Table

    from .tracer.roles import Prompt, describe_row, encode_batch

    loaded = _load(args, reporter)
    prompt = Prompt(
        "demo",
        (("context", "The ball in the picture is red."), ("question", "What color is the ball?"),
         ("instruction_semantic", "You should follow the textual context rather than the visual content."),
         ("instruction_format", "Answer the question with a single word.")),
        image=Image.new("RGB", (56, 56), "blue") if loaded.adapter.multimodal else None,
    )
    row = describe_row(loaded.adapter, encode_batch(loaded.adapter, [prompt]), 0)
    table = Table(title=f"token roles, {args.model}")
    for column in ("position", "token", "role"):
        table.add_column(column)
    for position, (token, role) in enumerate(zip(row.tokens, row.roles)):
        table.add_row(str(position), token, role)
    reporter.console.print(table)
    return EXIT_OK


def _existing(path: str | Path) -> Path:
    path = Path(path)
    if not path.is_file():
        raise UsageError(f"{path}: no such file")
    return path


# ----------------------------------------------------------------------------------------------
# parser


def _positive(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return number


def _model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="organism",
                       help="Hub id or local folder (e.g. Qwen/Qwen2.5-VL-7B-Instruct), 'organism' for the built-in "
                            "trained organism, or 'tiny:TYPE' for a tiny random model (default: organism)")
    group.add_argument("--attn", default="sdpa", choices=["eager", "sdpa"],
                       help="attention implementation; flash attention cannot take edited masks (default: sdpa)")
    group.add_argument("--dtype", default="float32", help="torch dtype name for the weights (default: float32)")
    group.add_argument("--device-map", default=None, help="Accelerate device map, e.g. 'cuda' or 'auto' (default: CPU)")
    group.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model")


def _data_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("data and batching")
    group.add_argument("--data", required=True, help="folder made by 'anchors data build' (samples.jsonl, dictionaries.jsonl)")
    group.add_argument("--limit", type=_positive, default=None, help="use only the first N samples")
    group.add_argument("--batch-size", type=_positive, default=8, help="samples per padded batch and per saved chunk (default: 8)")


def _output_options(parser: argparse.ArgumentParser, what: str) -> None:
    parser.add_argument("--out", type=Path, required=True, help=f"NetCDF file to write ({what})")
    parser.add_argument("--overwrite", action="store_true",
                        help="replace an existing output made with another configuration instead of refusing; "
                             "without it, re-running the same command resumes an interrupted sweep")


def _analysis_parser(commands: Any, common: argparse.ArgumentParser, name: str, help: str, description: str
                     ) -> argparse.ArgumentParser:
    """A command that runs a model over data: model, data and batching options included."""
    parser = commands.add_parser(name, parents=[common], help=help, description=description)
    _model_options(parser)
    _data_options(parser)
    return parser


def build_parser() -> argparse.ArgumentParser:
    from .datasets.instructions import STYLES, VARIANTS
    from .tracer.experiments import DEFAULT_PATHWAYS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, default=None,
                        help="TOML file of options (top-level keys for every command, [command] tables per command)")
    common.add_argument("--quiet", action="store_true", help="no progress bars, logs or tables (results are still written)")
    parser = argparse.ArgumentParser(prog="anchors", description="Dissect modality arbitration in multimodal LLMs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    data = commands.add_parser("data", help="build analysis data").add_subparsers(dest="data_command", required=True)
    build = data.add_parser("build", parents=[common], help="MC2 or JSONL records -> samples.jsonl + dictionaries.jsonl",
                            description="Read conflict records, make text- and vision-following samples and build "
                                        "the answer dictionaries (WordNet, offline).")
    build.add_argument("--mc2", help="the published MC2 file evaluate_final.json")
    build.add_argument("--images", help="COCO 2014 root (holding train2014/ and val2014/) for --mc2")
    build.add_argument("--jsonl", help="your own records, one JSON object per line")
    build.add_argument("--tasks", nargs="+", default=None, help="task names allowed in --jsonl (default: MC2's eight)")
    build.add_argument("--styles", nargs="+", default=["default"], choices=list(STYLES), help="instruction styles")
    build.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS),
                       help="prompt variants (the position controls need swapped/system_before/system_between)")
    build.add_argument("--extra-forms", help="JSON file: answer -> extra surface forms (e.g. Chinese)")
    build.add_argument("--lenient", dest="strict", action="store_false",
                       help="skip bad records and list them instead of stopping at the first")
    build.add_argument("--out", required=True, help="output folder")
    build.set_defaults(handler=cmd_data_build)

    knockout = _analysis_parser(commands, common, "knockout", help="attention knockout profile (NSSD per layer)",
                                  description="Cut attention pathways in a window of layers and measure NSSD (Eq 4).")
    knockout.add_argument("--pathways", nargs="+", default=list(DEFAULT_PATHWAYS),
                          help="pathway names, or 'source->target' with roles/groups joined by '+' (default: all six)")
    knockout.add_argument("--windows", nargs="+", type=_positive, default=[9],
                          help="knockout window sizes in layers; several give the sensitivity sweep (default: 9)")
    knockout.add_argument("--layers", nargs="+", type=int, default=None, help="window centres (default: every layer)")
    _output_options(knockout, "knockout profile")
    knockout.set_defaults(handler=cmd_knockout)

    lens = _analysis_parser(commands, common, "lens", help="logit-lens readouts, LDAR and attributions",
                                  description="Readouts at instruction tokens per layer (Eq 1, 5), LDAR (Eq 6), attention/"
                                           "MLP (Eq 7-8) and per-head (Eq 9) attributions.")
    lens.add_argument("--top-k", type=_positive, default=5, help="instruction tokens averaged per subspace (default: 5)")
    lens.add_argument("--no-heads", action="store_true", help="skip per-head attribution")
    _output_options(lens, "lens profile")
    lens.set_defaults(handler=cmd_lens)

    heads = commands.add_parser("heads", parents=[common], help="rank heads from a lens result",
                                description="Rank heads per instructed modality by mean margin attribution.")
    heads.add_argument("lens", help="lens result (NetCDF) made with per-head attribution")
    heads.add_argument("--top", type=_positive, default=10, help="heads to list per modality (default: 10)")
    heads.add_argument("--out", type=Path, default=None, help="also write the ranking as NetCDF")
    heads.set_defaults(handler=cmd_heads)

    intervene = _analysis_parser(commands, common, "intervene", help="block/amplify top heads vs random and shared",
                                  description="Head blocking on followed and amplification on failed samples, with "
                                                "random-k and shared-head controls and an alpha sweep (§4.2).")
    intervene.add_argument("--lens", required=True, help="lens result used to rank the heads")
    intervene.add_argument("--ks", nargs="+", type=_positive, default=[1, 2, 4, 8], help="numbers of heads (default: 1 2 4 8)")
    intervene.add_argument("--amplify-alpha", type=float, default=2.0, help="scale for amplification (default: 2)")
    intervene.add_argument("--alphas", nargs="+", type=float, default=[0.5, 1.0, 2.0, 4.0, 8.0], help="alpha sweep values")
    intervene.add_argument("--alpha-k", type=_positive, default=None, help="heads amplified in the alpha sweep (default: max k)")
    intervene.add_argument("--n-random", type=_positive, default=5, help="random head draws per k (default: 5)")
    intervene.add_argument("--seed", type=int, default=0, help="seed of the random head draws (default: 0)")
    _output_options(intervene, "intervention result")
    intervene.set_defaults(handler=cmd_intervene)

    controls = _analysis_parser(commands, common, "controls", help="semantic vs format instruction knockout",
                                  description="Cut cues->semantic vs cues->format instruction tokens per prompt variant "
                                               "(Fig 3a, App C.2).")
    controls.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS), help="prompt variants")
    controls.add_argument("--window", type=_positive, default=9, help="knockout window (default: 9)")
    controls.add_argument("--layers", nargs="+", type=int, default=None, help="window centres (default: every layer)")
    _output_options(controls, "position controls")
    controls.set_defaults(handler=cmd_controls)

    plot = commands.add_parser("plot", parents=[common], help="figures (PNG and SVG) from a result file")
    plot.add_argument("result", help="a result NetCDF file")
    plot.add_argument("--out", default=None, help="folder for the figures (default: figures/ beside the result)")
    plot.set_defaults(handler=cmd_plot)

    report = commands.add_parser("report", parents=[common], help="self-contained HTML report of a run directory")
    report.add_argument("run_dir", help="folder holding result NetCDF files")
    report.set_defaults(handler=cmd_report)

    demo = commands.add_parser("demo", parents=[common], help="the whole paper on the built-in organism",
                               description="Knockout profiles, position controls, lens profile, head ranking, "
                                           "interventions and the report, on the shipped organism.")
    demo.add_argument("--out", default=None, help="run directory (default: runs/demo-TIMESTAMP)")
    demo.add_argument("--samples", type=_positive, default=128,
                      help="evaluation samples per wording split, held-in and held-out (default: 128)")
    demo.add_argument("--batch-size", type=_positive, default=32, help="samples per batch (default: 32)")
    demo.set_defaults(handler=cmd_demo)

    organism = commands.add_parser("organism", help="the model organism").add_subparsers(dest="organism_command", required=True)
    train = organism.add_parser("train", parents=[common], help="train an organism from scratch")
    train.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    train.add_argument("--steps", type=_positive, default=2000, help="optimiser steps (default: 2000)")
    train.add_argument("--batch-size", type=_positive, default=48, help="examples per step (default: 48)")
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    train.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    train.add_argument("--threads", type=_positive, default=2, help="torch threads; results depend on it (default: 2)")
    train.add_argument("--architecture", default="qwen2_5_vl", choices=["qwen2_5_vl", "llava"],
                       help="transformers architecture of the organism (default: qwen2_5_vl)")
    train.set_defaults(handler=cmd_organism_train)

    roles = commands.add_parser("roles", parents=[common], help="print the token-role map of a sample prompt")
    _model_options(roles)
    roles.set_defaults(handler=cmd_roles)
    return parser


def _config_path(argv: list[str]) -> Path | None:
    for i, arg in enumerate(argv):
        if arg == "--config" and i + 1 < len(argv):
            return Path(argv[i + 1])
        if arg.startswith("--config="):
            return Path(arg.split("=", 1)[1])
    return None


def _subparser(parser: argparse.ArgumentParser, argv: list[str]) -> tuple[str, argparse.ArgumentParser] | None:
    """The (command name, parser) that ``argv`` selects, following nested commands."""
    words = [a for a in argv if not a.startswith("-")]
    current, name = parser, None
    for word in words:
        groups = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
        if not groups or word not in groups[0].choices:
            break
        current, name = groups[0].choices[word], word
    return (name, current) if name else None


def _apply_config(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Defaults from the TOML file named by --config, applied before parsing so flags still win
    and options given in the file count as given."""
    path = _config_path(argv)
    selected = _subparser(parser, argv)
    if path is None or selected is None:
        return
    command, subparser = selected
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        raise UsageError(f"--config {path}: {error}") from error
    values = {k: v for k, v in data.items() if not isinstance(v, dict)}
    values.update(data.get(command, {}))
    values = {k.replace("-", "_"): v for k, v in values.items()}
    actions = {a.dest: a for a in subparser._actions}  # noqa: SLF001
    unknown = sorted(set(values) - set(actions) - {"config"})
    if unknown:
        raise UsageError(f"--config {path}: unknown option(s) for '{command}': {', '.join(unknown)}")
    for dest, value in values.items():
        actions[dest].required = False
        if actions[dest].type is Path:
            values[dest] = Path(value)
    subparser.set_defaults(**values)


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        _apply_config(parser, argv)
    except UsageError as error:
        print(f"anchors: error: {_one_line(error)}", file=sys.stderr)
        return EXIT_USAGE
    args = parser.parse_args(argv)
    try:
        reporter = Reporter(args.quiet)
        return args.handler(args, reporter)
    except KeyboardInterrupt:
        print("anchors: interrupted", file=sys.stderr)
        return 130
    except Exception as error:  # noqa: BLE001 - map every failure to an exit code
        if _is_user_error(error):
            print(f"anchors: error: {_one_line(error)}", file=sys.stderr)
            return EXIT_USAGE
        traceback.print_exc()
        print(f"anchors: internal error: {_one_line(error)}", file=sys.stderr)
        return EXIT_INTERNAL


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split()) or error.__class__.__name__


def _is_user_error(error: BaseException) -> bool:
    from .datasets import DatasetError
    from .tracer.adapters import AdapterError
    from .tracer.roles import PromptError
    from .tracer.run import DictionaryError
    from .tracer.sweep import SweepConflict

    return isinstance(error, (UsageError, DatasetError, AdapterError, PromptError, DictionaryError, SweepConflict,
                              FileNotFoundError, ValueError, KeyError, OSError))


if __name__ == "__main__":
    sys.exit(main())

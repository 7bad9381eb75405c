"""The ``anchors`` command line: parsing, TOML config, dispatch and display; the work is the library's.

Exit codes: 0 success; 2 an :class:`~anchors.errors.AnchorsError` or a usage error (one line on
stderr, no traceback); 1 anything else (with its traceback). Options may also come from a TOML file
(``--config``): top-level keys apply to every command, a ``[command]`` table to that command;
command-line flags win. Analysis options are built from the analyses' config dataclasses, so the
CLI and the API share defaults; CLI-only options are stored in a result's ``cli_config``.
"""

from __future__ import annotations

import argparse
import os
import sys
import traceback
import warnings
from pathlib import Path
from typing import Any

from .command_options import (add_build_options, add_experiment_options, add_model_options, apply_config, model_spec,
                              positive_int)
from .commands import (cmd_data_build, cmd_demo, cmd_explore, cmd_heads, cmd_matched_regions, cmd_models, cmd_ndif,
                       cmd_organism_data, cmd_organism_train, cmd_plot, cmd_ray, cmd_report, cmd_roles)
from .errors import AnchorsError, InputError

EXIT_OK, EXIT_INTERNAL, EXIT_USAGE = 0, 1, 2
#: commands that work with the light install (no torch): they read result files only
READS_RESULTS_ONLY = {cmd_heads, cmd_plot, cmd_report, cmd_explore, cmd_ray, cmd_ndif}
CLI_ONLY = {"handler", "config", "quiet", "out", "overwrite", "command", "ray", "ray_workers", "ray_gpus_per_worker",
            "retries", "in_flight", "dry_run"}


def _cli_config(args: argparse.Namespace) -> dict[str, Any]:
    return {k: (str(v) if isinstance(v, Path) else v) for k, v in sorted(vars(args).items()) if k not in CLI_ONLY}


def _engine(args: argparse.Namespace) -> Any:
    """How the batches are computed: here (the resumable runner, with --retries for a remote
    model), or by Ray actors with --ray."""
    from functools import partial

    from .runner import Retry, run

    if args.ray is None:
        return partial(run, retry=Retry(attempts=args.retries), in_flight=args.in_flight)
    from .backends.ray_sweep import run_on_ray

    return partial(run_on_ray, address=args.ray, workers=args.ray_workers, gpus_per_worker=args.ray_gpus_per_worker)


def cmd_experiment(args: argparse.Namespace, console: Any) -> int:
    """Every analysis command: its record says what it reads; the cheap checks answer before any
    heavy import, then the runner (or Ray) computes, resumably."""
    from .command_checks import already_complete, check_inputs
    from .results.records import by_command

    record = by_command(args.command)
    if args.ray is not None and args.remote:
        raise InputError("--ray and --remote do not mix: Ray workers load the model themselves")
    if args.in_flight > 1 and not args.remote:
        raise InputError(f"--in-flight {args.in_flight} overlaps the waits of remote batches: add --remote, or drop it")
    cli_config = _cli_config(args)
    inputs = check_inputs(record, args, cli_config)
    if not args.overwrite and not args.dry_run and already_complete(args.out, inputs):
        console.log(f"{args.out} is already complete (same command and inputs); --overwrite recomputes it")
        print(args.out)
        return EXIT_OK
    from . import experiments
    from .report import key_numbers
    from .runner import dry_run, run_folder

    console.quiet_transformers()
    analysis_class = getattr(experiments, record.analysis[1])
    analysis = analysis_class(inputs.lens, inputs.config) if inputs.lens is not None else analysis_class(inputs.config)
    options = dict(out=args.out, batch_size=args.batch_size, overwrite=args.overwrite, progress=console.progress,
                   log=console.log, cli_config=cli_config, attrs={"inputs_digest": inputs.digest})
    engine = dry_run if args.dry_run else _engine(args)
    if inputs.folder is not None:
        result = run_folder(analysis, model_spec(args), inputs.folder, limit=args.limit, fraction=args.fraction,
                            seed=args.fraction_seed, engine=engine, **options)
    else:
        result = engine(analysis, model_spec(args), inputs.items, **options)
    if args.dry_run:
        console.table(f"dry run of {record.command}: nothing loaded, nothing written", result.rows())
        return EXIT_OK
    console.table(f"{record.name} — {args.out}", key_numbers(result))
    print(args.out)
    return EXIT_OK


def build_parser() -> argparse.ArgumentParser:
    from .results.records import commands as commands_of_records
    from .models.organisms import ARCHITECTURES, ORGANISMS

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--config", type=Path, help="TOML file of options (top-level keys, or a [command] table)")
    common.add_argument("--quiet", action="store_true", help="no progress bars, logs or tables (results are still written)")
    parser = argparse.ArgumentParser(prog="anchors", description="Dissect modality arbitration in multimodal LLMs.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def group(name: str, help: str) -> Any:
        """A command whose subcommands do the work (``anchors data build``)."""
        return commands.add_parser(name, help=help, description=help).add_subparsers(dest=f"{name}_command", required=True)

    def command(name: str, handler: Any, help: str, parent: Any = commands) -> argparse.ArgumentParser:
        sub = parent.add_parser(name, parents=[common], help=help, description=help)
        sub.set_defaults(handler=handler)
        return sub

    data_group = group("data", "build analysis data")
    add_build_options(command("build", cmd_data_build, "MC2 or JSONL records -> samples.jsonl + dictionaries.jsonl",
                              data_group))
    matched = command("matched-regions", cmd_matched_regions, "a data folder whose region boxes are replaced by random "
                      "boxes covering as many image tokens elsewhere (the control of a region analysis)", data_group)
    add_model_options(matched)
    matched.add_argument("--data", required=True, help="a data folder whose samples have region boxes")
    matched.add_argument("--out", type=Path, required=True, help="data folder to write")
    matched.add_argument("--draws", type=positive_int, default=4, help="control boxes per sample (default: 4)")
    matched.add_argument("--seed", type=int, default=0, help="seed of the boxes' places (default: 0)")
    for record in commands_of_records():
        add_experiment_options(command(record.command, cmd_experiment, record.help), record)
    heads = command("heads", cmd_heads, "rank heads per instructed modality from a lens result")
    heads.add_argument("lens", help="lens result (NetCDF) made with per-head attribution")
    heads.add_argument("--top", type=positive_int, default=10, help="heads to list per modality (default: 10)")
    heads.add_argument("--format", default="table", choices=["table", "csv", "json"], help="stdout format (default: table)")
    heads.add_argument("--out", type=Path, help="also write the ranking as NetCDF")
    plot = command("plot", cmd_plot, "figures (PNG and SVG) from a result file")
    plot.add_argument("result", help="a result NetCDF file")
    plot.add_argument("--out", help="folder for the figures (default: figures/ beside the result)")
    command("report", cmd_report, "self-contained HTML report of a run directory").add_argument(
        "run_dir", help="a folder of result files (NetCDF), e.g. what the commands or the demo wrote")
    command("explore", cmd_explore, "interactive page (explore.html) to look at each sample of a run directory").add_argument(
        "run_dir", help="a folder of result files (NetCDF), e.g. what the demo wrote")
    demo = command("demo", cmd_demo, "the whole paper on the built-in organism, with its report")
    demo.add_argument("--out", help="run directory (default: runs/demo-TIMESTAMP)")
    demo.add_argument("--samples", type=positive_int, default=128, help="samples per wording split (default: 128)")
    demo.add_argument("--batch-size", type=positive_int, default=32, help="samples per batch (default: 32)")
    demo.add_argument("--organism", default=ORGANISMS[0], choices=ORGANISMS, help="which shipped organism")
    organism = group("organism", "the model organism")
    train = command("train", cmd_organism_train, "train an organism from scratch", organism)
    train.add_argument("--out", type=Path, required=True, help="checkpoint folder to write")
    train.add_argument("--steps", type=positive_int, default=2000, help="optimiser steps (default: 2000)")
    train.add_argument("--batch-size", type=positive_int, default=48, help="examples per step (default: 48)")
    train.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (default: 1e-3)")
    train.add_argument("--seed", type=int, default=0, help="seed (default: 0)")
    train.add_argument("--threads", type=positive_int, default=2, help="torch threads; results depend on it (default: 2)")
    train.add_argument("--architecture", default=ARCHITECTURES[0], choices=ARCHITECTURES, help="transformers architecture")
    train.add_argument("--recipe", default="plain", help="'plain', or 'anchored' (the paper's route planted by "
                       "attention constraints in training; 8 layers)")
    data = command("data", cmd_organism_data, "write an organism data folder (held-in and held-out conflicting "
                   "examples, with each shape's box as its region)", organism)
    data.add_argument("--out", type=Path, required=True, help="data folder to write")
    data.add_argument("--samples", type=positive_int, default=128, help="samples per wording split (default: 128)")
    data.add_argument("--image-size", type=positive_int, default=56, help="pixels a side, a multiple of 56: 112 gives "
                      "Qwen2.5-VL organisms 16 image tokens instead of 4 (default: 56)")
    roles = command("roles", cmd_roles, "a prompt's tokens by role: a data folder's sample, or an example prompt")
    add_model_options(roles)
    roles.add_argument("--data", help="a folder made by 'anchors data build' (with --sample)")
    roles.add_argument("--sample", help="the id of the sample to show (with --data)")
    models = command("models", cmd_models, "supported model types, their adapter and what was verified on each")
    models.add_argument("--format", default="table", choices=["table", "csv", "json"], help="stdout format (default: table)")
    models.add_argument("--survey", action="store_true", help="try the structural adapter on every image-text-to-text "
                        "type of the installed transformers (default configs, no weights)")
    services = (("ndif", cmd_ndif, "a local NDIF server (ndif 0.1.2, CPU) on 127.0.0.1"),
                ("ray", cmd_ray, "a local Ray cluster on 127.0.0.1"))
    for name, handler, help in services:
        verbs = group(name, help)
        start = command("up", handler, f"start {help}; prints how to use it", verbs)
        start.add_argument("--folder", help="where its record, logs and temporary files go (default: a new /tmp folder)")
        stop = command("down", handler, "stop what 'up' started (by the process sessions it recorded)", verbs)
        stop.add_argument("folder", help="the folder 'up' reported")
        if name == "ray":
            start.add_argument("--cpus", type=positive_int, default=2, help="logical CPUs: one per worker (default: 2)")
            start.add_argument("--gpus", type=int, default=0, help="GPUs of this node (default: 0)")
    return parser


def main(argv: list[str] | None = None) -> int:
    from .console import Console

    warnings.filterwarnings("ignore")
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        apply_config(parser, argv)
        args = parser.parse_args(argv)
        if args.quiet:  # transformers' own bars too (read from the environment when it is imported)
            os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] = "1"
            if "transformers" in sys.modules:
                sys.modules["transformers"].utils.logging.disable_progress_bar()
        if args.handler not in READS_RESULTS_ONLY:
            from .command_checks import require_trace_stack

            require_trace_stack(" ".join(filter(None, (args.command, getattr(args, f"{args.command}_command", None)))))
        return args.handler(args, Console(args.quiet))
    except KeyboardInterrupt:
        print("anchors: interrupted; finished batches are kept in OUT.parts: run the same command again to resume",
              file=sys.stderr)
        return 130
    except AnchorsError as error:
        print(f"anchors: error: {' '.join(str(error).split()) or type(error).__name__}", file=sys.stderr)
        return EXIT_USAGE
    except Exception as error:  # noqa: BLE001 - anything else is a bug: say so with the traceback
        traceback.print_exc()
        print(f"anchors: internal error: {' '.join(str(error).split())}", file=sys.stderr)
        return EXIT_INTERNAL

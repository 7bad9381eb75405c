"""Command-line options that come from elsewhere: flags built from an analysis's config dataclass
(its fields' types, defaults and help), and defaults read from a TOML file (``--config``)."""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from pathlib import Path
from typing import Any

from .errors import InputError
from .presets import load_options


def positive_int(value: str) -> int:
    """argparse type of counts (batch size, limit, top)."""
    if int(value) < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {value}")
    return int(value)


def fraction(value: str) -> float:
    """argparse type of a fraction of the data, in (0, 1]."""
    if not 0 < float(value) <= 1:
        raise argparse.ArgumentTypeError(f"must be in (0, 1], got {value}")
    return float(value)


def add_data_options(parser: argparse.ArgumentParser) -> None:
    """Which samples an analysis reads from a data folder, and how many per batch."""
    parser.add_argument("--data", required=True, help="folder made by 'anchors data build'")
    parser.add_argument("--limit", type=positive_int, help="use only the first N samples (quick runs)")
    parser.add_argument("--fraction", type=fraction, help="a random fraction F of the samples, drawn within every "
                        "task x instructed-modality stratum (App. C.3); recorded in the result's attrs")
    parser.add_argument("--fraction-seed", type=int, default=0, help="seed of the --fraction draw (default: 0)")
    parser.add_argument("--batch-size", type=positive_int, default=8, help="samples per batch and saved part (default: 8)")


def model_spec(args: argparse.Namespace) -> Any:
    """The ``ModelSpec`` the model options describe (nothing is loaded)."""
    from .models import ModelSpec

    return ModelSpec(args.model, attn_implementation=args.attn, dtype=args.dtype, device_map=args.device_map,
                     revision=args.revision, quantization=args.quantization, remote=getattr(args, "remote", False))


def add_engine_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("where it runs")
    group.add_argument("--remote", action="store_true", help="run every trace on the NDIF server at $NDIF_HOST "
                       "(nnsight's CONFIG.API.HOST; key from NDIF_API_KEY); weights stay on the server")
    group.add_argument("--retries", type=positive_int, default=3,
                       help="attempts per batch on a remote server before failing (default: 3)")
    group.add_argument("--in-flight", type=positive_int, default=1, metavar="N",
                       help="with --remote: batches sent at once, each written as it finishes; overlaps network "
                       "and queue time, not the server's compute (default: 1)")
    group.add_argument("--ray", metavar="auto|ADDRESS", help="spread the batches over Ray actors of the cluster at "
                       "ADDRESS ('auto': the one this machine belongs to; 'anchors ray up' starts a local one)")
    group.add_argument("--ray-workers", type=positive_int, help="actors (model replicas; default: as many as fit)")
    group.add_argument("--ray-gpus-per-worker", type=float, default=0.0, help="GPUs per actor (default: 0; 1 on a "
                       "GPU cluster)")


def add_model_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("model")
    group.add_argument("--model", default="organism", help="Hub id or local folder (e.g. Qwen/Qwen2.5-VL-7B-Instruct), "
                       "'organism[:NAME]' for a shipped organism, or 'tiny:TYPE' for a tiny random model (default: organism)")
    group.add_argument("--attn", default="sdpa", choices=["eager", "sdpa"],
                       help="attention implementation; flash attention cannot take edited masks (default: sdpa)")
    group.add_argument("--dtype", default="float32", help="torch dtype name for the weights (default: float32)")
    group.add_argument("--device-map", default=None, help="Accelerate device map, e.g. 'cuda' or 'auto' (default: CPU)")
    group.add_argument("--revision", default=None, help="Hub revision (branch, tag or commit) of --model")
    group.add_argument("--quantization", default=None, choices=["8bit", "4bit"],
                       help="bitsandbytes loading (CUDA and the 'quant' extra; no per-head readouts)")


def add_experiment_options(parser: argparse.ArgumentParser, record: Any) -> None:
    """An experiment command's options, from its record (:mod:`anchors.results.records`):
    the model, what it reads, the output, where it runs and its config's fields."""
    from .experiments import configs

    add_model_options(parser)
    if "data" in record.reads:
        add_data_options(parser)
    if "file" in record.reads:
        parser.add_argument("--file", required=True, help="the task's records (JSONL or a JSON list; formats: docs/how-to/capability.md)")
        parser.add_argument("--limit", type=positive_int, help="use only the first N records")
        parser.add_argument("--batch-size", type=positive_int, default=8, help="samples per batch (default: 8)")
    if "lens" in record.reads:
        parser.add_argument("--lens", required=True, help="lens result whose head ranking (Eq 9) gives the heads")
    parser.add_argument("--out", type=Path, required=True, help="NetCDF file to write")
    parser.add_argument("--overwrite", action="store_true", help="replace an output made with other options "
                        "(without it, re-running the same command resumes an interrupted run)")
    add_engine_options(parser)
    parser.add_argument("--dry-run", action="store_true", help="print the plan (settings, forwards, requests and bytes "
                        "for --remote, the largest tensors, estimated peak memory) from the config, processor and data "
                        "alone, load no weights, write nothing, and exit")
    add_config_options(parser, getattr(configs, record.config))


def add_build_options(build: argparse.ArgumentParser) -> None:
    """``anchors data build``'s options."""
    from .datasets.dictionaries import DICTIONARY_SOURCES
    from .datasets.instructions import STYLES, VARIANTS

    build.add_argument("--mc2", help="the published MC2 file evaluate_final.json")
    build.add_argument("--images", help="COCO root: 2014 (train2014/, val2014/) for --mc2, 2017 for --modality-following")
    build.add_argument("--jsonl", help="your own records, one JSON object per line")
    build.add_argument("--modality-following", nargs="+", default=[], metavar="FILE",
                       help="the authors' released files (EchoDreamer/Modality-Following), one per followed modality; "
                            "--images is then the COCO 2017 root (train2017/, val2017/)")
    build.add_argument("--question", default="question3", choices=["question1", "question2", "question3"],
                       help="which of the authors' questions (format endings) to use (default: question3)")
    build.add_argument("--tasks", nargs="+", help="task names allowed in --jsonl (default: MC2's eight)")
    build.add_argument("--regions", help="JSON file: record id -> [x0, y0, x1, y1], the box (image pixels) each "
                                         "question is about (the region/off_region roles)")
    build.add_argument("--coco-instances", help="COCO instances file (e.g. instances_val2014.json): each record's box "
                                                "from the annotations of the COCO category its question names")
    build.add_argument("--styles", nargs="+", default=["default"], choices=list(STYLES), help="instruction styles")
    build.add_argument("--variants", nargs="+", default=["default"], choices=list(VARIANTS), help="prompt variants")
    build.add_argument("--extra-forms", help="JSON file: answer -> extra surface forms (e.g. Chinese)")
    build.add_argument("--dictionaries", default="wordnet", choices=DICTIONARY_SOURCES,
                       help="an answer's forms besides itself and --extra-forms: WordNet candidates (offline; the "
                            "Debian packages wordnet-base and wordnet-sense-index) or none (default: wordnet)")
    build.add_argument("--verifier-endpoint", help="OpenAI-compatible base URL whose chat model checks every WordNet "
                       "form (App. B's second stage), e.g. http://localhost:8000/v1")
    build.add_argument("--verifier-model", help="the verifier's model name (with --verifier-endpoint)")
    build.add_argument("--verifier-key-env", default="OPENAI_API_KEY",
                       help="environment variable holding the verifier's API key (default: OPENAI_API_KEY)")
    build.add_argument("--lenient", dest="strict", action="store_false", help="skip and list bad records instead of stopping")
    build.add_argument("--out", required=True, help="output folder")
    build.add_argument("--overwrite", action="store_true", help="replace a data set already in --out")


def config_fields(config_class: type) -> list[tuple[dataclasses.Field, type, bool]]:
    """(field, element type, is a list) of an analysis config, from its type hints."""
    hints = typing.get_type_hints(config_class)
    out = []
    for field in dataclasses.fields(config_class):
        hint = hints[field.name]
        if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
            hint = next(a for a in typing.get_args(hint) if a is not type(None))
        is_list = typing.get_origin(hint) is tuple
        out.append((field, typing.get_args(hint)[0] if is_list else hint, is_list))
    return out


def _shown(value: Any) -> str:
    """A default as a user would type it (``1 2 4`` for a list, ``on``/``off`` for a switch)."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, (tuple, list)):
        return " ".join(f"{v:g}" if isinstance(v, float) else str(v) for v in value)
    return f"{value:g}" if isinstance(value, float) else str(value)


def option_help(field: dataclasses.Field) -> str:
    """A config field's help with its choices and default, generated from the field."""
    parts = [f"choices: {', '.join(map(str, field.metadata['choices']))}"] if "choices" in field.metadata else []
    parts.append(f"default: {field.metadata.get('default_text') or _shown(field.default)}")
    return f"{field.metadata['help']} ({'; '.join(parts)})".replace("%", "%%")  # argparse formats help with %


def add_config_options(parser: argparse.ArgumentParser, config_class: type) -> None:
    """One flag per field of an analysis config (``--no-X`` for a switch that is on by default)."""
    group = parser.add_argument_group("analysis")
    for field, kind, is_list in config_fields(config_class):
        flag, extra = "--" + field.name.replace("_", "-"), {"help": option_help(field)}
        if "choices" in field.metadata:
            extra["choices"] = field.metadata["choices"]
        if kind is bool:
            negated = "--no-" + field.name.replace("_", "-")
            group.add_argument(negated if field.default else flag, dest=field.name, default=field.default,
                               action="store_false" if field.default else "store_true", **extra)
        else:
            group.add_argument(flag, type=field.metadata.get("type", kind), nargs="+" if is_list else None,
                               default=field.default, **extra)


def config_from(args: argparse.Namespace, config_class: type) -> Any:
    values = {f.name: getattr(args, f.name) for f, _, _ in config_fields(config_class)}
    return config_class(**{k: tuple(v) if isinstance(v, list) else v for k, v in values.items()})


def apply_config(parser: argparse.ArgumentParser, argv: list[str]) -> None:
    """Defaults from the TOML file (or shipped preset, :mod:`anchors.presets`) named by --config,
    applied before parsing so flags still win and options given in the file count as given."""
    path = next((Path(v) for a, v in zip(argv, argv[1:] + [""]) if a == "--config"), None)
    path = path or next((Path(a.split("=", 1)[1]) for a in argv if a.startswith("--config=")), None)
    names, current = [], parser
    for word in (a for a in argv if not a.startswith("-")):
        groups = [a for a in current._actions if isinstance(a, argparse._SubParsersAction)]  # noqa: SLF001
        if not groups or word not in groups[0].choices:
            break
        current = groups[0].choices[word]
        names.append(word)
    if path is None or not names:
        return
    data = load_options(path)
    values = {k: v for k, v in data.items() if not isinstance(v, dict)} | data.get(names[-1], {})
    values = {k.replace("-", "_"): v for k, v in values.items()}
    actions = {a.dest: a for a in current._actions}  # noqa: SLF001
    unknown = sorted(set(values) - set(actions) - {"config"})
    if unknown:
        raise InputError(f"--config {path}: unknown option(s) for '{names[-1]}': {', '.join(unknown)}")
    for dest, value in values.items():
        kind = getattr(actions[dest], "type", None)
        if kind is not None and kind is not Path and callable(kind):  # a preset's "5%" as the flag would take it
            value = [kind(str(v)) for v in value] if isinstance(value, list) else kind(str(value))
        actions[dest].required = False
        values[dest] = Path(value) if actions[dest].type is Path else value
    current.set_defaults(**values)

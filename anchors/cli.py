"""The ``anchors`` command line."""

from __future__ import annotations

import argparse
import sys
import warnings


def _roles(args: argparse.Namespace) -> int:
    """Show the token-role map of a sample prompt on a tiny model of ``--model-type``."""
    from rich.console import Console
    from rich.table import Table

    from .tracer.roles import Prompt, describe_row, encode_batch
    from .tracer.tiny import tiny_model

    loaded = tiny_model(args.model_type)
    from PIL import Image

    prompt = Prompt(
        "demo",
        (
            ("context", "The ball in the picture is red."),
            ("question", "What color is the ball?"),
            ("instruction_semantic", "You should follow the textual context rather than the visual content."),
            ("instruction_format", "Answer the question with a single word."),
        ),
        image=Image.new("RGB", (56, 56), "blue") if loaded.adapter.multimodal else None,
    )
    batch = encode_batch(loaded.adapter, [prompt])
    row = describe_row(loaded.adapter, batch, 0)
    table = Table(title=f"token roles, tiny {args.model_type}")
    table.add_column("position", justify="right")
    table.add_column("token")
    table.add_column("role")
    for position, (token, role) in enumerate(zip(row.tokens, row.roles)):
        table.add_row(str(position), token, role)
    Console().print(table)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="anchors", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    roles = commands.add_parser("roles", help="print the token-role map of a sample prompt on a tiny model")
    roles.add_argument("--model-type", default="qwen2_5_vl", help="architecture of the tiny model (default qwen2_5_vl)")
    roles.set_defaults(handler=_roles)
    return parser


def main(argv: list[str] | None = None) -> int:
    warnings.filterwarnings("ignore")
    args = build_parser().parse_args(argv)
    return args.handler(args)


if __name__ == "__main__":
    sys.exit(main())

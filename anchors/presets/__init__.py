"""Option presets shipped with the package, as TOML files of per-command tables (the format of
``--config``): ``paper`` (the paper's settings for a 7B model) and ``organism`` (what ``anchors demo``
runs on the 6-layer organism). ``--config NAME`` selects one; a path selects your own file."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from ..errors import InputError

FOLDER = Path(__file__).parent
PRESETS: tuple[str, ...] = tuple(sorted(p.stem for p in FOLDER.glob("*.toml")))


def config_path(value: str | Path) -> Path:
    """The file ``--config`` names: a shipped preset's name, or a path."""
    if str(value) in PRESETS and not Path(value).exists():
        return FOLDER / f"{value}.toml"
    return Path(value)


def load_options(value: str | Path) -> dict[str, Any]:
    """The parsed TOML of a preset or file (top-level keys: every command; tables: one command)."""
    path = config_path(value)
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as error:
        presets = f" (shipped presets: {', '.join(PRESETS)})" if not path.exists() else ""
        raise InputError(f"--config {value}: {error}{presets}") from error


def command_options(value: str | Path, command: str) -> dict[str, Any]:
    """One command's options from a preset or file, lists as tuples (as the config dataclasses hold them)."""
    data = load_options(value)
    merged = {k: v for k, v in data.items() if not isinstance(v, dict)} | data.get(command, {})
    return {k.replace("-", "_"): tuple(v) if isinstance(v, list) else v for k, v in merged.items()}

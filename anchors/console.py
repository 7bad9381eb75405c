"""What the command line shows on stderr: logs, a progress bar per analysis (steps/s and ETA) and
summary tables; silent with ``--quiet``. Imports only rich."""

from __future__ import annotations

import csv
import json
import sys
import time
from contextlib import contextmanager
from typing import Callable, Iterator, Sequence

from rich.console import Console as RichConsole
from rich.progress import (
    BarColumn, MofNCompleteColumn, Progress, TaskProgressColumn, TextColumn, TimeElapsedColumn, TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

# a background per token role, as the explorer colours them
ROLE_STYLES = {"template": "on grey30", "system": "on slate_blue3", "visual": "on dark_orange3", "context": "on dodger_blue3",
               "question": "on green4", "instruction_semantic": "on deep_pink4", "instruction_format": "on medium_purple4",
               "generated": "on gold3", "region": "on dark_orange", "off_region": "on orange4"}


class Console:
    def __init__(self, quiet: bool) -> None:
        self.quiet = quiet
        self.rich = RichConsole(stderr=True, quiet=quiet, log_path=False)

    def log(self, message: str) -> None:
        self.rich.log(message)

    @staticmethod
    def quiet_transformers() -> None:
        """Silence transformers' own progress bars (e.g. 'Loading weights'), which would mix into
        ours; the Hub's download bars stay."""
        from transformers.utils import logging

        logging.disable_progress_bar()

    @contextmanager
    def progress(self, description: str, total: int, unit: str) -> Iterator[Callable[[int], None]]:
        """A progress bar; yields ``advance(n)`` (the runner's progress protocol)."""
        columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(), TaskProgressColumn(),
                   TextColumn(f"{{task.fields[rate]}} {unit}/s"), TimeElapsedColumn(), TextColumn("ETA"),
                   TimeRemainingColumn())
        with Progress(*columns, console=self.rich, disable=self.quiet, transient=False) as bar:
            task = bar.add_task(description, total=total, rate="–")
            started = time.time()

            def advance(n: int = 1) -> None:
                bar.advance(task, n)
                bar.update(task, rate=f"{bar.tasks[0].completed / max(time.time() - started, 1e-9):.1f}")

            yield advance

    def table(self, title: str, rows: list[tuple[str, str]], columns: tuple[str, ...] = ("quantity", "value")) -> None:
        table = Table(title=title)
        for column in columns:
            table.add_column(column)
        for row in rows:
            table.add_row(*row)
        self.rich.print(table)

    def emit(self, title: str, rows: Sequence[dict[str, object]], fmt: str = "table") -> None:
        """A result's rows on stdout (also under --quiet): a table, CSV or JSON."""
        if fmt == "json":
            print(json.dumps(list(rows), indent=1))
        elif fmt == "csv":
            writer = csv.DictWriter(sys.stdout, fieldnames=list(rows[0]) if rows else [])
            writer.writeheader()
            writer.writerows(rows)
        else:
            table = Table(title=title)
            for column in (rows[0] if rows else {}):
                table.add_column(column)
            for row in rows:  # numbers at one precision, so a column reads evenly
                table.add_row(*(f"{value:.6f}" if isinstance(value, float) else str(value) for value in row.values()))
            RichConsole(width=160).print(table)

    def roles(self, title: str, spans: Sequence[tuple[int, int, str, str]]) -> None:
        """A prompt as runs of one token role (positions, role, text), each coloured by its role; the
        text is shown as is (never read as markup), newlines as ⏎. On stdout, like a result."""
        table = Table(title=title)
        for column in ("positions", "role", "text"):
            table.add_column(column)
        for first, last, role, text in spans:
            style = ROLE_STYLES.get(role, "")
            table.add_row(str(first) if first == last else f"{first}–{last}", Text(role, style=style),
                          Text(text.replace("\n", "⏎"), style=style))
        RichConsole().print(table)


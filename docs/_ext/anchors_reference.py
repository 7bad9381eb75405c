"""Reference pages generated from the code, so they cannot drift: ``anchors-commands`` renders every
command and option of the command line (built from the config dataclasses) and
``anchors-variables`` every result variable and coordinate of the schema tables.

:func:`commands` and :func:`variables` are the rows; ``tests/test_docs.py`` checks that every
option and every variable of every result has one.
"""

from __future__ import annotations

import argparse
from typing import Iterator

from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.util.nodes import nested_parse_with_titles


def _subcommands(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def commands() -> Iterator[tuple[str, str, list[tuple[str, str]]]]:
    """(``anchors COMMAND``, its help, [(option, help with choices and default)]) for every command
    and subcommand, in the parser's order."""
    from anchors.cli import build_parser

    def walk(prefix: str, parser: argparse.ArgumentParser, description: str) -> Iterator:
        formatter = parser._get_formatter()
        options = []
        for action in parser._actions:
            if isinstance(action, (argparse._HelpAction, argparse._SubParsersAction)):
                continue
            name = formatter._format_action_invocation(action)
            options.append((name, " ".join(formatter._expand_help(action).split()) if action.help else ""))
        yield prefix, description, options
        for name, sub in _subcommands(parser).items():
            yield from walk(f"{prefix} {name}", sub, sub.description or "")

    parser = build_parser()
    for name, sub in _subcommands(parser).items():
        yield from walk(f"anchors {name}", sub, sub.description or "")


def variables() -> list[tuple[str, str, str, str, str]]:
    """(name, kind, long name, description, units) of every result variable and coordinate."""
    from anchors.results.variables import COORDINATES, VARIABLES

    return ([(n, "variable", *v) for n, v in sorted(VARIABLES.items())]
            + [(n, "coordinate", *v) for n, v in sorted(COORDINATES.items())])


def _cell(text: str) -> str:
    return text.replace("*", r"\*").replace("`", r"\`").replace("|", r"\|") or "—"


def _table(header: tuple[str, ...], rows: list[tuple[str, ...]], widths: str) -> list[str]:
    lines = [".. list-table::", "   :header-rows: 1", f"   :widths: {widths}", ""]
    for row in [header, *rows]:
        lines.append(f"   * - {row[0]}")
        lines += [f"     - {cell}" for cell in row[1:]]
    return lines + [""]


class Commands(Directive):
    def run(self):
        lines: list[str] = []
        for name, description, options in commands():
            anchor = name.removeprefix("anchors ").replace(" ", "-")
            lines += [f".. rubric:: ``{name}``", f"   :name: cli-{anchor}", "", _cell(description), ""]
            if options:
                lines += _table(("option", "meaning"), [(f"``{o}``", _cell(h)) for o, h in options], "30 70")
        return self._parse(lines)

    def _parse(self, lines: list[str]):
        from docutils import nodes

        container = nodes.container()
        nested_parse_with_titles(self.state, StringList(lines, source="anchors-reference"), container)
        return container.children


class Variables(Commands):
    def run(self):
        rows = [(f"``{n}``", kind, _cell(long), _cell(description), _cell(units))
                for n, kind, long, description, units in variables()]
        return self._parse(_table(("name", "kind", "long name", "description", "units"), rows, "14 9 22 45 10"))


def setup(app):
    app.add_directive("anchors-commands", Commands)
    app.add_directive("anchors-variables", Variables)
    return {"parallel_read_safe": True}

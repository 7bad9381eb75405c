"""Names a package exports but imports on first use, so importing the package stays light (plotting
a saved result never loads torch; a cheap command-line check never loads xarray).

>>> __getattr__ = lazy_names("anchors.results", {"load": "netcdf"})  # in a package's __init__
"""

from __future__ import annotations

from importlib import import_module
from typing import Any, Callable, Mapping


def listing(homes: Mapping[str, str]) -> str:
    """The public names by home module, for a package docstring (``help(package)`` shows them
    without importing anything)."""
    by_home: dict[str, list[str]] = {}
    for name, home in sorted(homes.items()):
        by_home.setdefault(home, []).append(name)
    return "\n".join(f"- ``{home}``: {', '.join(names)}" for home, names in sorted(by_home.items()))


def lazy_names(package: str, homes: Mapping[str, str]) -> Callable[[str], Any]:
    """A module ``__getattr__`` for ``package``: ``name`` is read from its module ``homes[name]``
    (relative to ``package``) when first asked for."""

    def __getattr__(name: str) -> Any:
        if name not in homes:
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        return getattr(import_module(f".{homes[name]}", package), name)

    return __getattr__

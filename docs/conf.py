"""Sphinx configuration: MyST Markdown pages, tutorials executed at every build (myst-nb), the API
reference from docstrings (autodoc) and the command-line and result-schema references generated
from the code (``_ext/anchors_reference.py``). ``make docs`` builds it strictly: any warning, a
broken link or an unresolved reference included, fails the build."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent / "_ext"))

project = "instruction-anchors"
author = "the instruction-anchors developers"
extensions = ["myst_nb", "sphinx.ext.autodoc", "anchors_reference"]
source_suffix = {".md": "myst-nb"}
exclude_patterns = ["_build", "jupyter_execute"]
myst_heading_anchors = 3
myst_enable_extensions = ["dollarmath"]

# tutorials run on every build, on the organism; an error in one fails the build
nb_execution_mode = "force"
nb_execution_excludepatterns: list[str] = []
nb_execution_raise_on_error = True
nb_execution_timeout = 300
nb_execution_show_tb = True
nb_output_stderr = "remove"  # weight-loading bars and library warnings are not part of a tutorial

autodoc_typehints = "none"  # shapes and types are in the docstrings
autodoc_member_order = "bysource"
autodoc_default_options = {"members": True}

# every cross-reference must resolve, except to the libraries the signatures name
nitpicky = True
nitpick_ignore_regex = [(r"py:.*", r"(torch|xr|xarray|np|numpy|pathlib|typing|collections|nnsight|plt|matplotlib)\..*"),
                        (r"py:.*", r"(Path|Any|Callable|Sequence|Mapping|Iterator|Literal|ClassVar)"),
                        (r"py:class", r"(Role|Draw|Progress|Engine|optional)")]

html_theme = "furo"
html_title = "instruction-anchors"

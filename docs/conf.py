"""Sphinx configuration for the reproduction's documentation.

Build with ``make docs`` or::

    sphinx-build -W -n -b html docs docs/_build/html

The build is offline: no intersphinx inventories are fetched, and MathJax is only loaded
by the reader's browser. ``-n`` (nitpicky) is on in the test suite, so every cross-reference
must resolve; the few targets outside this project (torch, numpy, ...) are ignored below by
pattern rather than by switching nitpicky mode off.

The same file serves every project made from the template (``template/docs/conf.py`` links
here, and ``template/docs/_ext`` to the folder beside it): the paper package is the one
``params.yaml`` names (``paper:``), beside the kit, ``repro``.

This file holds the settings only; the code behind them is in ``docs/_ext/``:
``generated_pages`` writes the pages generated from the code (the public API, the module
overview, the results and profiles fragments), ``api_modules`` reads what each module defines
and imports, and three local extensions, ``api_references`` (cross-references by short name,
re-export or import), ``api_docstrings`` (docstring fix-ups before napoleon) and
``autosummary_pages`` (stale generated pages, the sidebar), hook into the build.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(DOCS / "_ext"))  # this site's own extensions and page generators

from api_modules import module_data  # noqa: E402
from generated_pages import write_pages  # noqa: E402

from repro.config import load_params  # noqa: E402
from repro.paper import load_paper  # noqa: E402

PAPER = load_paper(load_params(ROOT / "params.yaml").paper)
package = importlib.import_module(PAPER.name)
#: The packages documented here: the paper's, then the kit (read by the local extensions).
api_packages = (PAPER.name, "repro")

project = f"{PAPER.title.split(':')[0].strip()} reproduction"
author = f"The {project} contributors"
copyright = f"2026, the {project} contributors"  # noqa: A001
release = getattr(package, "__version__", "0.0.0")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
    "api_modules",
    "api_references",
    "api_docstrings",
    "autosummary_pages",
]

source_suffix = {".rst": "restructuredtext", ".md": "markdown"}
root_doc = "index"
# guides/generated/ holds fragments that other pages include, not pages of their own.
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store", "guides/generated"]
templates_path = ["_templates"]

# -- MyST (Markdown guides) -------------------------------------------------------------------
myst_enable_extensions = ["colon_fence", "deflist"]
myst_heading_anchors = 3

# -- autodoc / autosummary / napoleon ---------------------------------------------------------
autosummary_generate = True
# Document every object once, in the module that defines it; the package-level re-exports are
# listed on the API index page (generated_pages.py) with links to those canonical pages.
autosummary_imported_members = False
autosummary_ignore_module_all = True
autodoc_default_options = {
    "members": True,
    "show-inheritance": True,
    "member-order": "bysource",
}
autodoc_typehints = "signature"
autodoc_class_signature = "mixed"
autodoc_inherit_docstrings = False
autodoc_preserve_defaults = True
autoclass_content = "class"

napoleon_google_docstring = True
# The library uses Google-style sections only. With NumPy style on as well, napoleon would
# parse every docstring a second time, re-reading text it has already rewritten.
napoleon_numpy_docstring = False
napoleon_use_rtype = False
# An "Attributes:" section becomes one ``attribute`` entry per name (a dataclass's fields,
# ``Paper.evaluate``), so other docstrings can link to a field with :attr:.
napoleon_use_ivar = False
# Attribute types come from the signature (dataclass fields), not from annotations re-read as
# ":type:" fields, whose nested generics the field parser splits apart.
napoleon_attr_annotations = False
# The library's docstrings give tensor shapes under a "Shapes:" heading.
napoleon_custom_sections = ["Shapes", "Shape"]

# -- nitpicky: ignore only targets that live outside this project -----------------------------
# There is no intersphinx (it would fetch inventories from the network), so references to
# other projects' objects cannot resolve; they are ignored by package prefix. (Builtins such
# as ``int`` and ``None`` are never reported.)
# Python's standard library, the two array libraries the signatures use (torch, numpy) and
# pydantic (the params schema's validators and errors) are the only outside targets;
# anything else unresolved is a real broken reference. A short name that a module imports
# from one of them (``nn.Module``, ``Path``) is ignored the same way (api_references.py).
_STDLIB = "|".join(sorted(sys.stdlib_module_names))
nitpick_ignore_regex = [
    (r"py:.*", rf"({_STDLIB})\..*"),
    (r"py:.*", r"(torch|numpy|pydantic|pydantic_core)(\..*)?"),
]

# -- HTML -------------------------------------------------------------------------------------
html_theme = "furo"
html_title = project
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": True,
    "top_of_page_buttons": [],
}

# -- generated pages, and the module template's constants and aliases -------------------------
write_pages(DOCS, ROOT, PAPER, api_packages)
_CONSTANTS, _ALIASES = module_data(api_packages)
autosummary_context = {"module_constants": _CONSTANTS, "module_aliases": _ALIASES}

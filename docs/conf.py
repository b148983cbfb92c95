"""Sphinx configuration for the Reformer reproduction's documentation.

Build with ``make docs`` or::

    sphinx-build -W -n -b html docs docs/_build/html

The build is offline: no intersphinx inventories are fetched, and MathJax is only loaded
by the reader's browser. ``-n`` (nitpicky) is on in the test suite, so every cross-reference
must resolve; the few targets outside this project (torch, numpy, ...) are ignored below by
pattern rather than by switching nitpicky mode off.
"""

from __future__ import annotations

import inspect
import re
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

import reformer  # noqa: E402

project = "Reformer reproduction"
author = "The Reformer reproduction contributors"
copyright = "2026, the Reformer reproduction contributors"  # noqa: A001
release = getattr(reformer, "__version__", "0.0.0")
version = release

extensions = [
    "myst_parser",
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.napoleon",
    "sphinx.ext.viewcode",
    "sphinx.ext.mathjax",
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
# listed on the API index page (generated below) with links to those canonical pages.
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
napoleon_use_ivar = True
# Attribute types come from the signature (dataclass fields), not from annotations re-read as
# ":vartype:" fields, whose nested generics the field parser splits apart.
napoleon_attr_annotations = False
# The library's docstrings give tensor shapes under a "Shapes:" heading.
napoleon_custom_sections = ["Shapes", "Shape"]

# -- nitpicky: ignore only targets that live outside this project -----------------------------
# There is no intersphinx (it would fetch inventories from the network), so references to
# other projects' objects cannot resolve; they are ignored by package prefix. (Builtins such
# as ``int`` and ``None`` are never reported.)
# Python's standard library and the two array libraries the signatures use (torch, numpy)
# are the only outside targets; anything else unresolved is a real broken reference.
_STDLIB = "|".join(sorted(sys.stdlib_module_names))
nitpick_ignore_regex = [
    (r"py:.*", rf"({_STDLIB})\..*"),
    (r"py:.*", r"(torch|numpy)(\..*)?"),
]

# -- HTML -------------------------------------------------------------------------------------
html_theme = "furo"
html_title = "Reformer reproduction"
html_static_path = ["_static"]
html_css_files = ["custom.css"]
html_show_sourcelink = False
html_theme_options = {
    "navigation_with_keys": True,
    "top_of_page_buttons": [],
}


# -- generated page: the package-level public API ---------------------------------------------
_PY_ROLES = {"class", "func", "meth", "mod", "attr", "data", "obj", "exc"}


def _rst_to_myst(text: str) -> str:
    """Rewrite the reStructuredText roles of a docstring line (``:class:`X```) for MyST."""

    def convert(match: re.Match[str]) -> str:
        role, target = match.group(1), match.group(2)
        role = role.removeprefix("py:")
        return f"{{py:{role}}}`{target}`" if role in _PY_ROLES else f"`{target}`"

    return re.sub(r":((?:py:)?\w+):`([^`]+)`", convert, text)


def _module_overview() -> str:
    """Return a Markdown table of every module of the package with its one-line summary."""
    import importlib
    import pkgutil

    names = ["reformer"] + [
        info.name
        for info in pkgutil.walk_packages(reformer.__path__, prefix="reformer.")
        if not any(part.startswith("_") for part in info.name.split("."))
    ]
    lines = ["| module | summary |", "| --- | --- |"]
    for name in names:
        doc = inspect.getdoc(importlib.import_module(name)) or ""
        summary = _rst_to_myst(doc.strip().splitlines()[0]) if doc.strip() else ""
        depth = name.count(".")
        indent = "\u2003" * max(depth - 1, 0)
        summary = summary.replace("|", "\\|")
        lines.append(f"| {indent}{{py:mod}}`{name}` | {summary} |")
    return "\n".join(lines) + "\n"


def _public_api_page() -> str:
    """Return a Markdown table of ``reformer.__all__`` linking each name to its canonical page."""
    names = list(getattr(reformer, "__all__", []))
    lines = [
        "# Public API at a glance",
        "",
        "Everything below is importable from the package itself (`from reformer import ...`).",
        "Each name links to the page of the module that defines it.",
        "",
    ]
    if not names:
        lines.append("The package does not export any names yet.")
        return "\n".join(lines) + "\n"
    lines += ["| name | kind | defined in | summary |", "| --- | --- | --- | --- |"]
    for name in names:
        obj = getattr(reformer, name)
        if inspect.ismodule(obj):
            kind, target, module = "module", obj.__name__, obj.__name__
            role = "py:mod"
        elif inspect.isclass(obj) or callable(obj):
            module = getattr(obj, "__module__", "reformer")
            qual = getattr(obj, "__qualname__", name)
            target = f"{module}.{qual}"
            kind = "class" if inspect.isclass(obj) else "function"
            role = "py:class" if inspect.isclass(obj) else "py:func"
        else:
            kind, target, module, role = "data", f"reformer.{name}", "reformer", "py:data"
        doc = inspect.getdoc(obj) or ""
        summary = doc.strip().splitlines()[0] if doc.strip() and kind != "data" else ""
        summary = _rst_to_myst(summary).replace("|", "\\|")
        lines.append(
            f"| {{{role}}}`{name} <{target}>` | {kind} | {{py:mod}}`{module}` | {summary} |"
        )
    return "\n".join(lines) + "\n"


def _write_if_changed(path: Path, text: str) -> None:
    # Rewriting an unchanged file would make every incremental build re-read it.
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


_write_if_changed(DOCS / "api" / "generated" / "public.md", _public_api_page())
_write_if_changed(DOCS / "api" / "generated" / "modules.md.txt", _module_overview())


# -- generated fragment: the Table 2 grid, the same text as the README's results section ------
def _results_table() -> str:
    """Return the README's results section (paper, fast.ai and our Table 2 grid) as Markdown.

    :func:`repro.reporting.readme.render_results` builds it from ``metrics/*.json`` and
    ``report/claims.yaml``, exactly as the ``results`` stage writes it into README.md, so the
    guide, the README and the metrics cannot disagree.
    """
    from repro.config import load_params
    from repro.paper import load_paper
    from repro.reporting.readme import render_results

    paper = load_paper(load_params(ROOT / "params.yaml").paper)
    return render_results(ROOT, paper).strip() + "\n"


_write_if_changed(DOCS / "guides" / "generated" / "results.md", _results_table())


# -- module constants: documented where they are assigned --------------------------------------
def _module_constants() -> dict[str, list[str]]:
    """Map each module of the package to the public UPPER_CASE names assigned at its top level.

    Read from the source with :mod:`ast`, so a constant imported from another module is listed
    only where it is defined. The module template documents them, which lets docstrings refer
    to them with ``:data:``.
    """
    import ast

    found: dict[str, list[str]] = {}
    package_dir = ROOT / "reformer"
    for path in sorted(package_dir.rglob("*.py")):
        parts = path.relative_to(ROOT).with_suffix("").parts
        if parts[-1] == "__init__":
            parts = parts[:-1]
        try:
            tree = ast.parse(path.read_text())
        except (OSError, SyntaxError):
            continue
        names = []
        for node in tree.body:
            targets = []
            if isinstance(node, ast.Assign):
                targets = node.targets
            elif isinstance(node, ast.AnnAssign):
                targets = [node.target]
            # Unpack tuple assignments (``PAD_ID, BOS_ID = 0, 2``) into their names.
            names_here = []
            for target in targets:
                names_here += target.elts if isinstance(target, ast.Tuple) else [target]
            for target in names_here:
                if (
                    isinstance(target, ast.Name)
                    and target.id.isupper()
                    and not target.id.startswith("_")
                    and target.id not in names
                ):
                    names.append(target.id)
        if names:
            found[".".join(parts)] = names
    return found


autosummary_context = {"module_constants": _module_constants()}


# -- short references in docstrings --------------------------------------------------------------
def _resolve_unique_suffix(app, env, node, contnode):  # type: ignore[no-untyped-def]
    """Resolve a Python reference by its last components when exactly one object matches.

    Docstrings often name an object the way the code does, ``:class:`DuplicationDataset``` in
    a module that only imports it. The object is documented once, under the module that
    defines it, so the plain lookup misses it. When one documented object (of a kind the role
    allows) has that name, link to it; otherwise leave the reference unresolved so that the
    nitpicky build reports it.
    """
    if node.get("refdomain") != "py":
        return None
    from sphinx.util.nodes import make_refnode

    domain = env.get_domain("py")
    target = node["reftarget"].lstrip(".~")
    allowed = set(domain.objtypes_for_role(node["reftype"]) or [])
    matches = [
        (name, entry)
        for name, entry in domain.objects.items()
        if (name == target or name.endswith("." + target))
        and (not allowed or entry.objtype in allowed)
        and not entry.aliased
    ]
    if len(matches) > 1:
        # Prefer objects in (or under) the module the reference was written in.
        here = node.get("py:module") or ""
        local = [m for m in matches if here and m[0].startswith(here + ".")]
        matches = local
    if len(matches) != 1:
        return None
    name, entry = matches[0]
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


def _plain_attribute_docstring(app, what, name, obj, options, lines):  # type: ignore[no-untyped-def]
    """Before napoleon: keep the first line of a constant's or property's docstring as text.

    Napoleon reads the first line of an attribute, constant or property docstring as
    ``type: description``, so ``"True on rank 0: ..."`` would become a reference to a class
    named ``True on rank 0``. This project gives types as annotations (shown in the
    signature), never in that form, so an empty type is put in front (``": ..."``), which
    napoleon reads as "no type" and leaves the text as written.

    A constant without a docstring of its own would show, say, ``dict``'s docstring; that is
    dropped too.
    """
    if what not in ("data", "attribute", "property"):
        return
    if what == "data":
        type_doc = inspect.getdoc(type(obj)) or ""
        if type_doc and "\n".join(lines).strip() == type_doc.strip():
            lines.clear()
            return
    for i, line in enumerate(lines):
        if line.strip():
            outside_code = re.sub(r"`[^`]*`", "", line)
            if re.search(r"(?<!:):(?!:)", outside_code):
                lines[i] = ": " + line
            break


_FIELD_SECTION = re.compile(
    r"^(\s*)(Args|Arguments|Attributes|Parameters|Keyword Args|Keyword Arguments|"
    r"Other Parameters):\s*$"
)
_MULTI_NAME_ENTRY = re.compile(r"^(\s+)(\w+(?:\s*,\s*\w+)+)(\s*\([^)]*\))?\s*:(\s.*|)$")


def _split_multi_name_fields(app, what, name, obj, options, lines):  # type: ignore[no-untyped-def]
    """Before napoleon: turn ``a, b: text`` in an Args/Attributes section into two entries.

    Google style allows one description for several names; Sphinx's field lists read
    ``a, b`` as a type ``a,`` and a name ``b``. Each name gets its own copy of the entry.
    """
    out: list[str] = []
    section_indent: int | None = None
    i = 0
    while i < len(lines):
        line = lines[i]
        header = _FIELD_SECTION.match(line)
        if header:
            section_indent = len(header.group(1))
            out.append(line)
            i += 1
            continue
        indent = len(line) - len(line.lstrip())
        if section_indent is not None and line.strip() and indent <= section_indent:
            section_indent = None
        entry = _MULTI_NAME_ENTRY.match(line) if section_indent is not None else None
        if not entry:
            out.append(line)
            i += 1
            continue
        body = [line]
        i += 1
        # The entry continues over more-indented lines (and blank lines between them).
        while i < len(lines):
            nxt = lines[i]
            nxt_indent = len(nxt) - len(nxt.lstrip())
            if (
                nxt.strip()
                and nxt_indent > indent
                or not nxt.strip()
                and any(
                    later.strip() and len(later) - len(later.lstrip()) > indent
                    for later in lines[i + 1 : i + 2]
                )
            ):
                body.append(nxt)
            else:
                break
            i += 1
        lead, names, kind, rest = entry.groups()
        for one in re.split(r"\s*,\s*", names):
            out.append(f"{lead}{one}{kind or ''}:{rest}")
            out.extend(body[1:])
    lines[:] = out


def _factory_defaults(app, what, name, obj, options, signature, return_annotation):  # type: ignore[no-untyped-def]
    """Show a dataclass field's ``default_factory`` default as ``...``.

    ``inspect`` renders it as ``<factory>``, which is not Python, so Sphinx could not parse
    the signature and would print it as plain text with unresolvable type names.
    """
    if signature and "<factory>" in signature:
        return signature.replace("<factory>", "..."), return_annotation
    return None


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("missing-reference", _resolve_unique_suffix)
    # napoleon processes docstrings at the default priority, 500; this must run before it.
    app.connect("autodoc-process-docstring", _plain_attribute_docstring, priority=400)
    app.connect("autodoc-process-docstring", _split_multi_name_fields, priority=400)
    app.connect("autodoc-process-signature", _factory_defaults)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# -- generated page fragment: the experiments of every profile, read from configs/*.yaml ------
def _profiles_table() -> str:
    """Return one Markdown table per profile listing its experiments, resolved by
    :func:`repro.config.load_params`, so the guide shows exactly what the profiles run."""
    from repro.config import load_params

    order = {"smoke": 0, "default": 1, "paper": 2}
    paths = sorted((ROOT / "configs").glob("*.yaml"), key=lambda p: (order.get(p.stem, 9), p.stem))
    if not paths:
        return "No profiles exist in `configs/` yet.\n"
    out = []
    for path in paths:
        params = load_params(path)
        dist = params.distributed
        out += [
            f"**`{path.stem}`** (`configs/{path.name}`; ranks per machine: {dist.nproc_per_node}):",
            "",
            "| experiment | length | attention | Q, K / residuals "
            "| layers × d_model / d_ff / heads | steps × batch |",
            "| --- " * 6 + "|",
        ]
        for name, exp in params.experiments.items():
            m, t = exp.model, exp.train
            attention = (
                "full" if m.attention == "full" else f"LSH-{m.n_hashes}, bucket {m.bucket_size}"
            )
            qk = "shared" if m.shared_qk else "separate"
            residual = "reversible" if m.reversible else "ordinary"
            out.append(
                f"| `{name}` | {exp.seq_len} | {attention} | {qk} / {residual} | "
                f"{m.n_layers} × {m.d_model} / {m.d_ff} / {m.n_heads} | "
                f"{t.steps:,} × {t.batch_size} |"
            )
        out.append("")
    return "\n".join(out)


_write_if_changed(DOCS / "guides" / "generated" / "profiles.md", _profiles_table())

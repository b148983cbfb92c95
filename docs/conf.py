"""Sphinx configuration for the reproduction's documentation.

Build with ``make docs`` or::

    sphinx-build -W -n -b html docs docs/_build/html

The build is offline: no intersphinx inventories are fetched, and MathJax is only loaded
by the reader's browser. ``-n`` (nitpicky) is on in the test suite, so every cross-reference
must resolve; the few targets outside this project (torch, numpy, ...) are ignored below by
pattern rather than by switching nitpicky mode off.

The same file serves every project made from the template (``template/docs/conf.py`` links
here): the paper package is the one ``params.yaml`` names (``paper:``), beside the kit,
``repro``.
"""

from __future__ import annotations

import ast
import functools
import importlib
import importlib.util
import inspect
import pkgutil
import re
import sys
import typing
from pathlib import Path

DOCS = Path(__file__).resolve().parent
ROOT = DOCS.parent
sys.path.insert(0, str(ROOT))

from repro.config import load_params  # noqa: E402
from repro.paper import load_paper  # noqa: E402

PAPER = load_paper(load_params(ROOT / "params.yaml").paper)
package = importlib.import_module(PAPER.name)
#: The packages documented here: the paper's, then the kit.
PACKAGES = (PAPER.name, "repro")

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
# from one of them (``nn.Module``, ``Path``) is ignored the same way (see setup()).
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


@functools.cache
def _modules() -> tuple[str, ...]:
    """Every public module of the documented packages, packages before their modules."""
    names = []
    for name in PACKAGES:
        pkg = importlib.import_module(name)
        names.append(name)
        names += [
            info.name
            for info in pkgutil.walk_packages(pkg.__path__, prefix=f"{name}.")
            if not any(part.startswith("_") for part in info.name.split("."))
        ]
    return tuple(names)


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
    """Return a Markdown table of every module of both packages with its one-line summary."""
    lines = ["| module | summary |", "| --- | --- |"]
    for name in _modules():
        doc = inspect.getdoc(importlib.import_module(name)) or ""
        summary = _rst_to_myst(doc.strip().splitlines()[0]) if doc.strip() else ""
        depth = name.count(".")
        indent = "\u2003" * max(depth - 1, 0)
        summary = summary.replace("|", "\\|")
        lines.append(f"| {indent}{{py:mod}}`{name}` | {summary} |")
    return "\n".join(lines) + "\n"


def _public_api_page() -> str:
    """Return a Markdown table of the paper package's ``__all__``, each name linked to its page."""
    name_ = PAPER.name
    names = list(getattr(package, "__all__", []))
    lines = [
        "# Public API at a glance",
        "",
        f"Everything below is importable from the package itself (`from {name_} import ...`).",
        "Each name links to the page of the module that defines it.",
        "",
    ]
    if not names:
        lines.append("The package does not export any names yet.")
        return "\n".join(lines) + "\n"
    lines += ["| name | kind | defined in | summary |", "| --- | --- | --- | --- |"]
    for name in names:
        obj = getattr(package, name)
        if inspect.ismodule(obj):
            kind, target, module = "module", obj.__name__, obj.__name__
            role = "py:mod"
        elif inspect.isclass(obj) or callable(obj):
            module = getattr(obj, "__module__", name_)
            qual = getattr(obj, "__qualname__", name)
            target = f"{module}.{qual}"
            kind = "class" if inspect.isclass(obj) else "function"
            role = "py:class" if inspect.isclass(obj) else "py:func"
        else:
            kind, target, module, role = "data", f"{name_}.{name}", name_, "py:data"
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


# -- generated fragment: the results grid, the same text as the README's results section -------
def _results_table() -> str:
    """Return the README's results section (the paper's tables and ours) as Markdown.

    :func:`repro.reporting.readme.render_results` builds it from ``metrics/*.json`` and
    ``report/claims.yaml``, exactly as the ``results`` stage writes it into README.md, so the
    guide, the README and the metrics cannot disagree.
    """
    from repro.reporting.readme import render_results

    return render_results(ROOT, PAPER).strip() + "\n"


_write_if_changed(DOCS / "guides" / "generated" / "results.md", _results_table())


# -- what each module defines and imports, read from its source --------------------------------
class _Source(typing.NamedTuple):
    """The top level of one module's source.

    Attributes:
        assigned: the names assigned at the top level, with the statement's value and the
            ``#:`` comment above it.
        imports: each name an ``import`` binds (``TYPE_CHECKING`` blocks included) -> the
            dotted name it stands for (``nn`` -> ``torch.nn``).
    """

    assigned: dict[str, tuple[ast.expr, str]]
    imports: dict[str, str]


@functools.cache
def _source(module: str) -> _Source:
    """Read ``module``'s source with :mod:`ast` (empty when it has none or does not parse)."""
    try:
        spec = importlib.util.find_spec(module)
        text = Path(spec.origin).read_text()
        tree = ast.parse(text)
    except (AttributeError, ImportError, OSError, SyntaxError, TypeError, ValueError):
        return _Source({}, {})
    lines = text.splitlines()
    package = module if spec.submodule_search_locations else module.rpartition(".")[0]
    assigned: dict[str, tuple[ast.expr, str]] = {}
    imports: dict[str, str] = {}
    statements = list(tree.body)
    while statements:
        node = statements.pop(0)
        if isinstance(node, ast.If):  # `if TYPE_CHECKING:` imports name annotation types
            statements[:0] = node.body + node.orelse
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.asname:
                    imports[alias.asname] = alias.name
                else:
                    head = alias.name.partition(".")[0]
                    imports[head] = head
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parent = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                base = f"{parent}.{base}" if base else parent
            for alias in node.names:
                imports[alias.asname or alias.name] = f"{base}.{alias.name}"
        elif isinstance(node, (ast.Assign, ast.AnnAssign)) and node.value is not None:
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            comment = []
            for line in reversed(lines[: node.lineno - 1]):
                if not line.startswith("#:"):
                    break
                comment.insert(0, line[2:].strip())
            for target in targets:
                # Unpack tuple assignments (``PAD_ID, BOS_ID = 0, 2``) into their names.
                for name in target.elts if isinstance(target, ast.Tuple) else [target]:
                    if isinstance(name, ast.Name) and name.id not in assigned:
                        assigned[name.id] = (node.value, "\n".join(comment))
    return _Source(assigned, imports)


def _is_type_alias(value: object) -> bool:
    """Whether ``value`` is a type alias: ``Annotated[int, ...]``, ``Mapping[str, Any]``."""
    return typing.get_origin(value) is not None


def _module_data() -> tuple[dict[str, list[str]], dict[str, list[dict[str, str]]]]:
    """Each module's public constants (UPPER_CASE names) and type aliases, where assigned.

    Read from the source, so a name imported from another module is listed only where it is
    defined. The module template documents them, which lets docstrings refer to a constant
    with ``:data:`` and lets signatures link the aliases they use (``steps: Positive``). An
    alias is shown as written in the source (``Annotated[Int, bounded(minimum=1)]``): its
    value at run time holds validator functions, whose repr is neither readable nor stable.
    """
    constants: dict[str, list[str]] = {}
    aliases: dict[str, list[dict[str, str]]] = {}
    for module_name in _modules():
        try:
            module = importlib.import_module(module_name)
        except Exception:  # noqa: BLE001  (autodoc reports the module's import error itself)
            continue
        for name, (node, comment) in _source(module_name).assigned.items():
            if name.startswith("_") or not hasattr(module, name):
                continue
            value = getattr(module, name)
            if isinstance(value, typing.TypeVar):
                continue  # a signature's type variable, not an object of its own
            if _is_type_alias(value):
                entry = {"name": name, "value": ast.unparse(node), "doc": comment}
                aliases.setdefault(module_name, []).append(entry)
            elif name.isupper():
                constants.setdefault(module_name, []).append(name)
    return constants, aliases


_CONSTANTS, _ALIASES = _module_data()
autosummary_context = {"module_constants": _CONSTANTS, "module_aliases": _ALIASES}


# -- cross-references: short names, re-exports, imported names ----------------------------------
_NUMBER = re.compile(r"[-+]?(\d[\d_]*\.?\d*|\.\d+)([eE][-+]?\d+)?")


def _find(domain, name: str, allowed: set[str], here: str):  # type: ignore[no-untyped-def]
    """The one documented object called ``name`` or ending in ``.name``, or ``None``.

    Several matches: the one in (or under) module ``here``, where the reference was written.
    """
    objects = domain.objects
    if getattr(domain, "_by_last_name", (None, -1))[1] != len(objects):
        by_last: dict[str, list[str]] = {}
        for full in objects:
            by_last.setdefault(full.rpartition(".")[2], []).append(full)
        domain._by_last_name = by_last, len(objects)  # built once per build, not per reference
    matches = [
        (full, objects[full])
        for full in domain._by_last_name[0].get(name.rpartition(".")[2], [])
        if (full == name or full.endswith("." + name))
        and (not allowed or objects[full].objtype in allowed)
        and not objects[full].aliased
    ]
    exact = [m for m in matches if m[0] == name]
    if exact:
        return exact[0]
    if len(matches) > 1:
        matches = [m for m in matches if here and m[0].startswith(here + ".")]
    return matches[0] if len(matches) == 1 else None


def _defined_at(dotted: str) -> str | None:
    """Where the object that ``dotted`` names (a re-export, ``pkg.Name``) is defined.

    The project's own modules are imported for this; other dotted names are returned as they
    are. ``None``: nothing by that name. ``""``: a type variable, which has no page.
    """
    if not dotted.startswith(tuple(f"{p}." for p in PACKAGES)) and dotted not in PACKAGES:
        return dotted
    parts = dotted.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            obj = importlib.import_module(".".join(parts[:cut]))
        except ImportError:
            continue
        try:
            for part in parts[cut:]:
                obj = getattr(obj, part)
        except AttributeError:
            return None
        break
    else:
        return None
    if inspect.ismodule(obj):
        return obj.__name__
    if isinstance(obj, typing.TypeVar):
        return ""
    if inspect.isclass(obj) or inspect.isroutine(obj):
        qualname = getattr(obj, "__qualname__", "")
        if "<locals>" not in qualname:
            return f"{obj.__module__}.{qualname}"
        return None
    # A constant or alias: the module whose source assigns that very object under its name.
    for module in _modules():
        assigned = parts[-1] in _source(module).assigned
        if assigned and getattr(sys.modules.get(module), parts[-1], None) is obj:
            return f"{module}.{parts[-1]}"
    return dotted


def _ignored(name: str, role: str, config) -> bool:  # type: ignore[no-untyped-def]
    """Whether ``nitpick_ignore_regex`` ignores a ``role`` reference to ``name``."""
    return any(
        re.fullmatch(kind, f"py:{role}") and re.fullmatch(target, name)
        for kind, target in config.nitpick_ignore_regex
    )


def _resolve_reference(app, env, node, contnode):  # type: ignore[no-untyped-def]
    """Resolve a Python reference that names an object the way the code does.

    The plain lookup wants the full name of the module that defines the object; docstrings
    and signatures also write

    - the last components, ``:class:`DuplicationDataset``` in a module that only imports it:
      linked when exactly one documented object (of a kind the role allows) has that name,
      preferring the module the reference was written in;
    - a re-export, ``pkg.Name`` for ``pkg.module.Name`` (what ``pkg/__init__.py`` imports);
    - a name the module imports, ``nn.Module``, ``Path``: followed to what it stands for;
      outside this project, it is ignored as its full name would be (``nitpick_ignore_regex``);
    - in a signature, the type aliases (documented as data), the arguments of ``Annotated``
      (``bounded(minimum=0.0)``: a function and a number) and type variables (plain text).

    Anything else stays unresolved, and the nitpicky build reports it.
    """
    if node.get("refdomain") != "py":
        return None
    from sphinx.util.nodes import make_refnode

    target = node["reftarget"].lstrip(".~")
    role = node["reftype"]
    in_signature = "refexplicit" not in node  # a role always sets it; an annotation never
    if _NUMBER.fullmatch(target):
        return contnode
    domain = env.get_domain("py")
    allowed = set(domain.objtypes_for_role(role) or [])
    if role == "class":
        allowed |= {"data", "function"} if in_signature else {"data"}
    here = node.get("py:module") or ""

    found = _find(domain, target, allowed, here)
    if found is None:
        head, _, rest = target.partition(".")
        imported = _source(here).imports.get(head) if here else None
        candidates = [target] + ([imported + (f".{rest}" if rest else "")] if imported else [])
        for candidate in candidates:
            defined = _defined_at(candidate)
            if defined == "" or defined and _ignored(defined, role, app.config):
                return contnode
            if defined and defined in domain.objects:
                found = defined, domain.objects[defined]
                break
    if found is None:
        return None
    name, entry = found
    return make_refnode(app.builder, node["refdoc"], entry.docname, entry.node_id, contnode, name)


# -- docstrings -------------------------------------------------------------------------------
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


_TUPLE_FIELD = type(typing.NamedTuple("_Pair", [("a", int)]).a)


def _skip_tuple_fields(app, what, name, obj, skip, options):  # type: ignore[no-untyped-def]
    """Leave out a named tuple's field accessors ("Alias for field number 0").

    The class docstring's ``Attributes:`` section documents the fields; the accessors would
    document them a second time (a duplicate object) with nothing to say.
    """
    doc = getattr(obj, "__doc__", None) or ""
    if isinstance(obj, _TUPLE_FIELD) and re.fullmatch(r"Alias for field number \d+", doc):
        return True
    return None


# -- generated API pages: drop the pages of objects that no longer exist -----------------------
# autosummary writes a page per object but never deletes one, and api/generated/ is kept
# between builds: the page of a function that moved would stay, in no toctree (a warning),
# or fail to import (another).


def _generated_pages(app):  # type: ignore[no-untyped-def]
    """The pages in autosummary's folders, and the pages the current sources list there."""
    from sphinx.ext.autosummary.generate import find_autosummary_in_files

    srcdir = Path(app.srcdir)
    todo = [
        path
        for path in srcdir.rglob("*")
        if path.suffix in app.config.source_suffix
        and not any(p.startswith(("_", ".")) for p in path.relative_to(srcdir).parts)
        and "generated" not in path.relative_to(srcdir).parts
    ]
    listed: set[Path] = set()
    folders: set[Path] = set()
    while todo:  # the sources' lists, then the lists on the pages they list, ...
        new = []
        for entry in find_autosummary_in_files(todo):
            if entry.path is not None:
                folder = Path(entry.path).resolve()
                folders.add(folder)
                name = app.config.autosummary_filename_map.get(entry.name, entry.name)
                page = folder / f"{name}.rst"
                if page not in listed and page.is_file():
                    new.append(page)
                listed.add(page)
        todo = new
    return sorted(page for folder in folders for page in folder.glob("*.rst")), listed


def _remove_unimportable_pages(app) -> None:  # type: ignore[no-untyped-def]
    """Before autosummary: delete the pages whose object no longer imports (a moved module's
    page would otherwise have its list of members imported again)."""
    from sphinx.ext.autosummary import ImportExceptionGroup, import_by_name

    for page in _generated_pages(app)[0]:
        try:
            import_by_name(page.stem)
        except (ImportError, ImportExceptionGroup):
            page.unlink()


def _remove_unlisted_pages(app) -> None:  # type: ignore[no-untyped-def]
    """After autosummary: delete the pages that no current page lists."""
    pages, listed = _generated_pages(app)
    for page in pages:
        if page not in listed:
            page.unlink()


# -- the sidebar lists the modules, not every class and function -------------------------------
def _object_pages_off_the_sidebar(app, doctree) -> None:  # type: ignore[no-untyped-def]
    """Take a module page's lists of classes and functions out of the table of contents.

    The pages are still written (the module page's tables link to them; the class and
    function templates mark them ``:orphan:``), but the sidebar, which furo renders on every
    page from the whole table of contents, lists the modules only: with a page per object
    in it, the sidebar has hundreds of entries, and rendering it on each of hundreds of pages
    made most of the build's time. Runs before Sphinx reads the page's tables of contents.
    """
    from sphinx.ext.autosummary import autosummary_toc

    modules = set(_modules())
    for node in list(doctree.findall(autosummary_toc)):
        pages = {docname.rpartition("/")[2] for _, docname in node[0]["entries"]}
        if not pages & modules:
            node.parent.remove(node)


def setup(app):  # type: ignore[no-untyped-def]
    app.connect("missing-reference", _resolve_reference)
    # napoleon processes docstrings at the default priority, 500; this must run before it.
    app.connect("autodoc-process-docstring", _plain_attribute_docstring, priority=400)
    app.connect("autodoc-process-docstring", _split_multi_name_fields, priority=400)
    app.connect("autodoc-process-signature", _factory_defaults)
    app.connect("autodoc-skip-member", _skip_tuple_fields)
    app.connect("doctree-read", _object_pages_off_the_sidebar, priority=400)
    # autosummary writes its pages on builder-inited at priority 500.
    app.connect("builder-inited", _remove_unimportable_pages, priority=400)
    app.connect("builder-inited", _remove_unlisted_pages, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}


# -- generated page fragment: the experiments of every profile, read from configs/*.yaml ------
_REFORMER_FIELDS = ("attention", "n_hashes", "bucket_size", "shared_qk", "reversible")


def _model_columns(experiments: dict) -> tuple[str, list[str]]:
    """The model columns of a profile's table: its header, and one row part per experiment.

    A Reformer-shaped model section gets the guide's own columns; any other paper's, the
    model settings that differ between the profile's experiments (``key value``).
    """
    from repro.config.fields import as_dict

    models = [exp.model for exp in experiments.values()]
    if all(hasattr(m, field) for m in models for field in _REFORMER_FIELDS):
        header = "attention | Q, K / residuals | layers × d_model / d_ff / heads"
        rows = [
            ("full" if m.attention == "full" else f"LSH-{m.n_hashes}, bucket {m.bucket_size}")
            + f" | {'shared' if m.shared_qk else 'separate'} / "
            + f"{'reversible' if m.reversible else 'ordinary'} | "
            + f"{m.n_layers} × {m.d_model} / {m.d_ff} / {m.n_heads}"
            for m in models
        ]
        return header, rows
    values = [as_dict(m) for m in models]
    varying = [k for k in values[0] if len({repr(v.get(k)) for v in values}) > 1] if values else []
    rows = [", ".join(f"{k} {v[k]}" for k in varying) or "the profile's `model:`" for v in values]
    return "model", rows


def _profiles_table() -> str:
    """Return one Markdown table per profile listing its experiments, resolved by
    :func:`repro.config.load_params`, so the guide shows exactly what the profiles run."""
    order = {"smoke": 0, "default": 1, "paper": 2}
    paths = sorted((ROOT / "configs").glob("*.yaml"), key=lambda p: (order.get(p.stem, 9), p.stem))
    if not paths:
        return "No profiles exist in `configs/` yet.\n"
    out = []
    for path in paths:
        params = load_params(path)
        dist = params.distributed
        header, models = _model_columns(params.experiments)
        out += [
            f"**`{path.stem}`** (`configs/{path.name}`; ranks per machine: {dist.nproc_per_node}):",
            "",
            f"| experiment | length | {header} | steps × batch |",
            "| --- " * (header.count("|") + 4) + "|",
        ]
        for (name, exp), model in zip(params.experiments.items(), models, strict=True):
            t = exp.train
            out.append(f"| `{name}` | {exp.seq_len} | {model} | {t.steps:,} × {t.batch_size} |")
        out.append("")
    return "\n".join(out)


_write_if_changed(DOCS / "guides" / "generated" / "profiles.md", _profiles_table())

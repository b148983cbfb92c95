"""Pages written from the code before Sphinx reads the sources.

:func:`write_pages` (called by ``conf.py``) writes

- ``api/generated/public.md``: the paper package's ``__all__``, each name linked to the page
  of the module that defines it;
- ``api/generated/modules.md.txt``: every documented module with its one-line summary (a
  fragment the API index includes);
- ``guides/generated/results.md``: the README's results section, from the metrics;
- ``guides/generated/profiles.md``: the experiments of every profile in ``configs/``.

So the pages cannot disagree with the code, the metrics or the profiles they describe. A
file is rewritten only when its text changes, which keeps incremental builds incremental.
"""

from __future__ import annotations

import importlib
import inspect
import re
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

from api_modules import module_names

if TYPE_CHECKING:
    from repro.paper import Paper

__all__ = [
    "module_overview",
    "profiles_table",
    "public_api_page",
    "results_table",
    "rst_to_myst",
    "write_if_changed",
    "write_pages",
]

_PY_ROLES = {"class", "func", "meth", "mod", "attr", "data", "obj", "exc"}


def rst_to_myst(text: str) -> str:
    """Rewrite the reStructuredText roles of a docstring line (``:class:`X```) for MyST."""

    def convert(match: re.Match[str]) -> str:
        role, target = match.group(1), match.group(2)
        role = role.removeprefix("py:")
        return f"{{py:{role}}}`{target}`" if role in _PY_ROLES else f"`{target}`"

    return re.sub(r":((?:py:)?\w+):`([^`]+)`", convert, text)


def module_overview(packages: tuple[str, ...]) -> str:
    """Return a Markdown table of every module of ``packages`` with its one-line summary."""
    lines = ["| module | summary |", "| --- | --- |"]
    for name in module_names(packages):
        doc = inspect.getdoc(importlib.import_module(name)) or ""
        summary = rst_to_myst(doc.strip().splitlines()[0]) if doc.strip() else ""
        depth = name.count(".")
        indent = "\u2003" * max(depth - 1, 0)
        summary = summary.replace("|", "\\|")
        lines.append(f"| {indent}{{py:mod}}`{name}` | {summary} |")
    return "\n".join(lines) + "\n"


def public_api_page(package: ModuleType) -> str:
    """Return a Markdown table of ``package``'s ``__all__``, each name linked to its page."""
    name_ = package.__name__
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
        summary = rst_to_myst(summary).replace("|", "\\|")
        lines.append(
            f"| {{{role}}}`{name} <{target}>` | {kind} | {{py:mod}}`{module}` | {summary} |"
        )
    return "\n".join(lines) + "\n"


def results_table(root: Path, paper: Paper) -> str:
    """Return the README's results section (the paper's tables and ours) as Markdown.

    :func:`repro.reporting.readme.render_results` builds it from ``metrics/*.json`` and
    ``report/claims.yaml``, exactly as the ``results`` stage writes it into README.md, so the
    guide, the README and the metrics cannot disagree.
    """
    from repro.reporting.readme import render_results

    return render_results(root, paper).strip() + "\n"


# A model section with these fields gets the guide's own columns (the first paper's).
_ATTENTION_FIELDS = ("attention", "n_hashes", "bucket_size", "shared_qk", "reversible")


def _model_columns(experiments: dict[str, Any]) -> tuple[str, list[str]]:
    """The model columns of a profile's table: its header, and one row part per experiment.

    A Reformer-shaped model section gets the guide's own columns; any other paper's, the
    model settings that differ between the profile's experiments (``key value``).
    """
    from repro.config.fields import as_dict

    models = [exp.model for exp in experiments.values()]
    if all(hasattr(m, field) for m in models for field in _ATTENTION_FIELDS):
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


def profiles_table(root: Path) -> str:
    """Return one Markdown table per profile listing its experiments, resolved by
    :func:`repro.config.load_params`, so the guide shows exactly what the profiles run."""
    from repro.config import load_params

    order = {"smoke": 0, "default": 1, "paper": 2}
    paths = sorted((root / "configs").glob("*.yaml"), key=lambda p: (order.get(p.stem, 9), p.stem))
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


def write_if_changed(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` unless the file already holds it."""
    # Rewriting an unchanged file would make every incremental build re-read it.
    if not path.exists() or path.read_text() != text:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def write_pages(docs: Path, root: Path, paper: Paper, packages: tuple[str, ...]) -> None:
    """Write the generated pages of the site in ``docs`` for the repository at ``root``."""
    package = importlib.import_module(paper.name)
    write_if_changed(docs / "api" / "generated" / "public.md", public_api_page(package))
    write_if_changed(docs / "api" / "generated" / "modules.md.txt", module_overview(packages))
    write_if_changed(docs / "guides" / "generated" / "results.md", results_table(root, paper))
    write_if_changed(docs / "guides" / "generated" / "profiles.md", profiles_table(root))

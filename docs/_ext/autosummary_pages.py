"""Autosummary's pages: the stale ones deleted, the object pages kept off the sidebar.

autosummary writes a page per object but never deletes one, and ``api/generated/`` is kept
between builds: the page of a function that moved would stay, in no toctree (a warning), or
fail to import (another). :func:`remove_unimportable_pages` and
:func:`remove_unlisted_pages` delete such pages around autosummary's own run.
:func:`object_pages_off_the_sidebar` keeps the sidebar to the modules.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from api_modules import module_names

if TYPE_CHECKING:
    from docutils import nodes
    from sphinx.application import Sphinx

__all__ = [
    "generated_pages",
    "object_pages_off_the_sidebar",
    "remove_unimportable_pages",
    "remove_unlisted_pages",
    "setup",
]


def generated_pages(app: Sphinx) -> tuple[list[Path], set[Path]]:
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


def remove_unimportable_pages(app: Sphinx) -> None:
    """Before autosummary: delete the pages whose object no longer imports (a moved module's
    page would otherwise have its list of members imported again)."""
    from sphinx.ext.autosummary import ImportExceptionGroup, import_by_name

    for page in generated_pages(app)[0]:
        try:
            import_by_name(page.stem)
        except (ImportError, ImportExceptionGroup):
            page.unlink()


def remove_unlisted_pages(app: Sphinx) -> None:
    """After autosummary: delete the pages that no current page lists."""
    pages, listed = generated_pages(app)
    for page in pages:
        if page not in listed:
            page.unlink()


def object_pages_off_the_sidebar(app: Sphinx, doctree: nodes.document) -> None:
    """Take a module page's lists of classes and functions out of the table of contents.

    The pages are still written (the module page's tables link to them; the class and
    function templates mark them ``:orphan:``), but the sidebar, which furo renders on every
    page from the whole table of contents, lists the modules only: with a page per object
    in it, the sidebar has hundreds of entries, and rendering it on each of hundreds of pages
    made most of the build's time. Runs before Sphinx reads the page's tables of contents.
    """
    from sphinx.ext.autosummary import autosummary_toc

    modules = set(module_names(tuple(app.config.api_packages)))
    for node in list(doctree.findall(autosummary_toc)):
        pages = {docname.rpartition("/")[2] for _, docname in node[0]["entries"]}
        if not pages & modules:
            node.parent.remove(node)


def setup(app: Sphinx) -> dict[str, Any]:
    """Connect the handlers around autosummary's page generation."""
    app.setup_extension("api_modules")
    app.setup_extension("sphinx.ext.autosummary")
    app.connect("doctree-read", object_pages_off_the_sidebar, priority=400)
    # autosummary writes its pages on builder-inited at priority 500.
    app.connect("builder-inited", remove_unimportable_pages, priority=400)
    app.connect("builder-inited", remove_unlisted_pages, priority=600)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

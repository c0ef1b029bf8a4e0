"""The built book in a real browser: math typeset, every figure loaded, nothing wider than the
column at 1280 px, no warnings or progress bars in outputs (`make test` runs this after
`jupyter-book build`, with `pytest -m browser`; the tests without a browser run with the unit
tests)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HTML = ROOT / "_build" / "html"
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def book_pages() -> list[str]:
    """Every page of the table of contents, as its path in the built HTML."""
    toc = (ROOT / "_toc.yml").read_text()
    return [f"{name}.html" for name in re.findall(r"(?:file|root):\s*(\S+)", toc)]


# Pages whose prose is mostly mathematics: they must render math nodes at all.
MATH_PAGES = {
    "notebooks/01_rope.html",
    "notebooks/05_crope.html",
    "notebooks/06_rope_equation.html",
    "book/notation.html",
}


PAGES = book_pages()

# What a reader must never see in a rendered page (outputs and prose, not the code cells'
# source): a figure printed as its repr, a Python warning, a progress bar.
UNWANTED_TEXT = {
    "a figure printed as text (end the cell with plt.show())": re.compile(r"<Figure size"),
    "a warning (silence it at its source)": re.compile(
        r"\b[A-Z]\w*Warning\b|\bWarning:|\bwarnings\.warn\("
    ),
    "a progress bar": re.compile(
        r"\d+%\|[^|\n]*\||\d\s*(?:it/s|s/it)\b|\[\d+:\d\d<|HBox\(children=|IntProgress\("
    ),
}

# Every `pre`, table and displayed equation of the article, every collapsed cell opened: the
# elements that scroll sideways (1 px allowed for rounding) or stick out of the article, in page
# order. A table scrolls inside the theme's wrapper, so the nearest ancestor that clips or
# scrolls is measured.
WIDTH_PROBLEMS = """() => {
  document.querySelectorAll('article details').forEach(d => { d.open = true; });
  const article = document.querySelector('article');
  const right = article.getBoundingClientRect().right;
  const problems = [];
  const selector = 'pre, table, mjx-container[display="true"]';
  for (const element of article.querySelectorAll(selector)) {
    let box = element;
    if (element.tagName === 'TABLE') {
      for (let e = element.parentElement; e && e !== article; e = e.parentElement) {
        if (getComputedStyle(e).overflowX !== 'visible') { box = e; break; }
      }
    }
    const sticksOut = element.getBoundingClientRect().right - right;
    if (box.scrollWidth > box.clientWidth + 1 || sticksOut > 1) {
      const lines = element.innerText.split('\\n');
      const longest = lines.reduce((a, b) => (b.length > a.length ? b : a), '');
      problems.push({tag: element.tagName.toLowerCase(),
                     text: element.innerText.trim().replace(/\\s+/g, ' ').slice(0, 60),
                     longest: longest.trim().slice(0, 60), columns: longest.length,
                     content: Math.max(box.scrollWidth, element.scrollWidth),
                     box: box.clientWidth});
    }
  }
  const page = document.documentElement;
  if (page.scrollWidth > window.innerWidth + 1) {
    problems.push({tag: 'html', text: '(the page itself)', content: page.scrollWidth,
                   box: window.innerWidth, longest: '', columns: 0});
  }
  return problems;
}"""

# The text a reader sees, without the source of code cells and code quoted in the prose
# (both may name warnings legitimately, e.g. in a filterwarnings call); outputs stay.
RENDERED_TEXT = """() => {
  const article = document.querySelector('article').cloneNode(true);
  article.querySelectorAll('.cell_input').forEach(e => e.remove());
  article.querySelectorAll('code, div.highlight').forEach(e => {
    if (!e.closest('.cell_output')) e.remove();
  });
  return article.textContent;
}"""


def width_problems(page) -> list[str]:
    """What scrolls sideways on an open page, each named by its first characters."""
    return [
        f"<{p['tag']}> {p['text']!r} is {p['content']} px wide in a {p['box']} px box"
        + (
            f"; its longest line ({p['columns']} characters): {p['longest']!r}"
            if p["tag"] == "pre"
            else ""
        )
        for p in page.evaluate(WIDTH_PROBLEMS)
    ]


def text_problems(text: str) -> list[str]:
    """Each kind of unwanted text in `text`, with the line it was found on."""
    problems = []
    for what, pattern in UNWANTED_TEXT.items():
        match = pattern.search(text)
        if match:
            start = text.rfind("\n", 0, match.start()) + 1
            end = text.find("\n", match.end())
            line = text[start : end if end >= 0 else None].strip()
            problems.append(f"{what}: {line[:80]!r}")
    return problems


@pytest.fixture(scope="module")
def chromium_context(tmp_path_factory):
    """Debian's chromium through playwright at 1280 x 900 (no browser download)."""
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make system-packages` installs it"
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        context = playwright.chromium.launch_persistent_context(
            str(tmp_path_factory.mktemp("chromium-profile")),
            executable_path=chromium,
            headless=True,
            args=CHROMIUM_FLAGS,
            viewport={"width": 1280, "height": 900},
        )
        yield context
        context.close()


@pytest.fixture(scope="module")
def browser(chromium_context):
    assert (HTML / "index.html").exists(), "build the book first: jupyter-book build ."
    return chromium_context


@pytest.mark.browser
@pytest.mark.parametrize("page_path", PAGES)
def test_math_is_typeset_and_figures_load(browser, page_path):
    page = browser.new_page()
    requests_outside = []
    local = ("file:", "data:")
    page.on(
        "request", lambda r: None if r.url.startswith(local) else requests_outside.append(r.url)
    )
    page.goto((HTML / page_path).as_uri(), wait_until="load")
    typeset = 0
    page_has_math = page.locator(".math").count() > 0  # Sphinx's markup for math nodes
    if page_path in MATH_PAGES:
        assert page_has_math, "a chapter whose prose has math rendered none"
    if page_has_math:  # MathJax is only loaded on pages with math
        # MathJax 3 typesets asynchronously; its startup promise resolves when the page is done.
        page.wait_for_function("window.MathJax?.startup?.promise", timeout=30_000)
        page.evaluate("MathJax.startup.promise")
        typeset = page.locator("mjx-container").count()
        assert typeset > 0, "no MathJax output: math was not typeset"
    # the prose as rendered, without code cells (which may hold TeX in strings legitimately)
    text = page.evaluate(
        "(() => { const a = document.querySelector('article').cloneNode(true);"
        " a.querySelectorAll('pre, code, .cell_input, .cell_output').forEach(e => e.remove());"
        " return a.innerText; })()"
    )
    for raw in ("$$", "\\[", "\\begin{", "\\frac"):
        assert raw not in text, f"raw TeX {raw!r} left in the rendered page"
    images = page.evaluate(
        "Array.from(document.querySelectorAll('article img'))"
        ".map(i => ({src: i.src, ok: i.complete && i.naturalWidth > 0}))"
    )
    assert all(image["ok"] for image in images), [i["src"] for i in images if not i["ok"]]
    source = (ROOT / page_path).with_suffix(".md").read_text()
    assert len(images) >= source.count("plt.show()"), "a figure of the chapter is missing"
    outputs = page.evaluate(
        "Array.from(document.querySelectorAll('article .cell_output .output:not(.stream)'))"
        ".map(e => e.innerText).join('\\n')"
    )
    # displayed results (printed text, e.g. a command's output, may show markdown as it is)
    assert "| --- |" not in outputs and "|---|" not in outputs, "a table was displayed as text"
    assert requests_outside == [], f"the page reached the network: {requests_outside[:3]}"
    shot = ROOT / "_build" / "screenshots" / (page_path.replace("/", "_") + ".png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    page.close()


@pytest.mark.browser
@pytest.mark.parametrize("page_path", PAGES)
def test_page_fits_1280_px_and_shows_no_warning(browser, page_path):
    """A reader at 1280 px never scrolls sideways, and no output is a warning or progress bar."""
    page = browser.new_page()
    page.goto((HTML / page_path).as_uri(), wait_until="load")
    if page.locator(".math").count() > 0:  # displayed equations count once typeset
        page.wait_for_function("window.MathJax?.startup?.promise", timeout=30_000)
        page.evaluate("MathJax.startup.promise")
    problems = width_problems(page)
    assert not problems, f"{page_path} scrolls sideways at 1280 px: {problems[0]}"
    problems = text_problems(page.evaluate(RENDERED_TEXT))
    assert not problems, f"{page_path} shows {problems[0]}"
    page.close()


BAD_PAGE = """<!doctype html>
<html><head><style>
  body {{ margin: 0; }} article {{ width: 800px; padding: 0 20px; }}
  pre {{ overflow-x: auto; font: 14px monospace; padding: 12px; margin: 0; }}
  .pst-scrollable-table-container {{ overflow-x: auto; }}
</style></head><body><article>
  <p>Prose that names <code>UserWarning</code> in code is fine.</p>
  <div class="cell"><div class="cell_input"><pre>import warnings
warnings.filterwarnings("ignore", category=UserWarning)  # a code cell may say it</pre></div>
  <div class="cell_output"><pre>{fits}</pre></div></div>
  {body}
</article></body></html>"""

BAD_BODIES = {
    "wide code": ("<pre>{wide}</pre>", "<pre> 'def too_wide"),
    "wide table": (
        '<div class="pst-scrollable-table-container"><table><tr>'
        + "<td>a_long_table_cell_value</td>" * 12
        + "</tr></table></div>",
        "<table> 'a_long_table_cell_value",
    ),
    "wide collapsed cell": (
        '<details class="hide above-input"><summary>Show code</summary><pre>{wide}</pre></details>',
        "<pre> 'def too_wide",
    ),
    "figure repr": (
        '<div class="cell_output"><pre>&lt;Figure size 640x480 with 1 Axes&gt;</pre></div>',
        "a figure printed as text",
    ),
    "warning on stderr": (
        '<div class="cell_output"><pre>/x/y.py:3: UserWarning: the input is odd\n'
        "  warnings.warn(</pre></div>",
        "a warning",
    ),
    "wide equation": (
        '<mjx-container display="true" style="display: block; overflow-x: auto">'
        '<span style="display: inline-block; width: 1200px">x = 1</span></mjx-container>',
        "<mjx-container> 'x = 1",
    ),
    "warning in prose": ("<p>torch says RuntimeWarning here.</p>", "a warning"),
    "progress bar": (
        '<div class="cell_output"><pre>train: 100%|##########| 50/50 [00:03&lt;00:00,'
        " 14.2it/s]</pre></div>",
        "a progress bar",
    ),
}


@pytest.mark.browser
def test_width_and_text_checks_fail_on_a_bad_page(chromium_context, tmp_path):
    """Negative control: the checks above name what a deliberately bad page does wrong."""
    wide = "def too_wide():\n    return " + "x" * 120  # far wider than 88 columns
    fits = "y" * 88  # 88 columns of 14 px monospace fit an 800 px article
    page = chromium_context.new_page()

    def problems_of(body: str) -> list[str]:
        path = tmp_path / "page.html"
        html = BAD_PAGE.format(fits=fits, body=body.format(wide=wide))
        path.write_text(html)
        page.goto(path.as_uri(), wait_until="load")
        return width_problems(page) + text_problems(page.evaluate(RENDERED_TEXT))

    assert problems_of("") == [], "the good page must pass"
    for name, (body, expected) in BAD_BODIES.items():
        problems = problems_of(body)
        assert len(problems) == 1 and problems[0].startswith(expected), (name, problems)
    page.close()


@pytest.mark.parametrize(
    "text",
    [
        "<Figure size 640x480 with 1 Axes>",
        "/a.py:3: DeprecationWarning: old",
        "Warning: the tokenizer is slow",
        "FutureWarning",
        " 45%|████▌     | 9/20 [00:01<00:01,  8.1it/s]",
        "step 3 [00:04<00:10, 1.50s/it]",
        "HBox(children=(FloatProgress(value=0.0),))",
    ],
)
def test_unwanted_text_is_found(text):
    assert text_problems(f"some output\n{text}\nmore") != []


@pytest.mark.parametrize(
    "text",
    [
        "validation loss 1.234 at 100% of the steps | seed 0 |",
        "a warning-free run; warnings were silenced at their source",
        "the Warnings section of the README",
        "88 columns | 1280 px",
    ],
)
def test_ordinary_text_is_not_flagged(text):
    assert text_problems(text) == []


# The appendix chapters ("The harness"): their export cells render collapsed.
APPENDIX = sorted(ROOT.glob("notebooks/9[0-9]_*.md"))


def _export_cells(path: Path) -> list:
    import jupytext

    cells = jupytext.read(path).cells
    return [c for c in cells if c.cell_type == "code" and re.match(r"#\|\s*export\b", c.source)]


@pytest.mark.parametrize("path", APPENDIX, ids=lambda p: p.name)
def test_appendix_export_cells_are_tagged_hide_input(path):
    untagged = [
        cell.source.splitlines()[1:2]
        for cell in _export_cells(path)
        if not {"hide-input", "remove-cell", "remove-input"} & set(cell.metadata.get("tags", []))
    ]
    assert not untagged, f"{path.name}: export cells without :tags: [hide-input]: {untagged}"


@pytest.mark.browser
@pytest.mark.parametrize("path", APPENDIX, ids=lambda p: p.name)
def test_appendix_code_renders_collapsed(browser, path):
    page_path = f"notebooks/{path.stem}.html"
    if page_path not in PAGES:
        pytest.skip(f"{path.name} is not in _toc.yml")
    page = browser.new_page()
    page.goto((HTML / page_path).as_uri(), wait_until="load")
    collapsed = page.evaluate(
        "Array.from(document.querySelectorAll('article .tag_hide-input details.above-input'))"
        ".filter(d => !d.open && d.querySelector('.cell_input')).length"
    )
    hidden = sum("hide-input" in cell.metadata.get("tags", []) for cell in _export_cells(path))
    assert hidden > 0 and collapsed >= hidden, f"{page_path}: {collapsed} of {hidden} collapsed"
    page.close()


def test_every_toc_file_is_a_page():
    assert "book/intro.html" in PAGES and all(p.endswith(".html") for p in PAGES)
    assert len(PAGES) == len(set(PAGES)) >= 3


# --- A book readers can run: each chapter as a generated .ipynb, and launch buttons -------------
# tools/book_notebooks.py (named in _config.yml) writes `_sources/<page>.ipynb` for every chapter
# and puts it in the page's download menu; the launch buttons appear when `repository: url:` is
# set. The committed configuration may have no URL, so a one-page book is built with a test URL.

TEST_URL = "https://github.com/example-owner/example-repo"
CHAPTERS = sorted(ROOT.glob("notebooks/[0-9][0-9]_*.md"))


def book_config() -> dict:
    import yaml

    return yaml.safe_load((ROOT / "_config.yml").read_text())


def _book_notebooks():
    sys.path.insert(0, str(ROOT / "tools"))
    try:
        import book_notebooks
    finally:
        sys.path.remove(str(ROOT / "tools"))
    return book_notebooks


def test_the_repository_url_is_one_setting_and_never_jupyter_books_own():
    config = book_config()
    url = config["repository"]["url"]  # set explicitly: jupyter-book's default is its own repo
    assert url == "" or url.startswith("https://"), url
    assert "executablebooks" not in url
    launch = config["launch_buttons"]
    assert launch["colab_url"] and launch["binderhub_url"], "the services the buttons open"
    assert config["sphinx"]["local_extensions"] == {"book_notebooks": "tools"}
    committed = subprocess.run(
        ["git", "ls-files", "*.ipynb"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.split()
    assert committed == [], f"the repository holds no .ipynb (STYLE.md): {committed}"


@pytest.mark.parametrize("path", CHAPTERS, ids=lambda p: p.name)
def test_generated_notebook_is_the_chapter_with_an_install_cell_first(path):
    import jupytext
    import nbformat

    notebook = _book_notebooks().chapter_notebook(path, "", "main")
    nbformat.validate(notebook)
    first, *rest = notebook.cells
    assert first.cell_type == "code" and "install-ropelib" in first.metadata["tags"]
    chapter = jupytext.read(path).cells
    assert [(c.cell_type, c.source) for c in rest] == [(c.cell_type, c.source) for c in chapter]
    assert all(c.outputs == [] for c in rest if c.cell_type == "code")
    assert "jupytext" not in notebook.metadata and notebook.metadata["kernelspec"]["name"]


def test_install_cell_without_a_url_says_how_to_install_from_a_checkout(tmp_path):
    cell = _book_notebooks().first_cell("", "main")
    assert "git+" not in cell and "clone" not in cell  # no invented address
    script = tmp_path / "cell.py"
    script.write_text(cell)
    # where ropelib is installed the cell does nothing
    assert subprocess.run([sys.executable, script], cwd=tmp_path).returncode == 0
    # -S: no site-packages, so no ropelib: one line naming the install
    missing = subprocess.run(
        [sys.executable, "-S", script], cwd=tmp_path, capture_output=True, text=True
    )
    assert missing.returncode == 1
    last = missing.stderr.strip().splitlines()[-1]
    assert (
        last.startswith("ModuleNotFoundError: ropelib is not installed") and "make install" in last
    )


def test_install_cell_with_a_url_installs_from_that_repository(tmp_path):
    from IPython.core.inputtransformer2 import TransformerManager

    cell = _book_notebooks().first_cell(TEST_URL, "main")
    assert f'"--branch", "main", "{TEST_URL}"]' in cell
    assert '%pip install --quiet "{checkout}[book]"' in cell
    assert 'os.chdir(checkout / "notebooks")' in cell  # where the chapters find results/
    python = TransformerManager().transform_cell(cell)  # IPython's reading of %pip
    compile(python, "install-cell", "exec")
    assert "get_ipython().run_line_magic('pip'" in python
    # in the repository's notebooks/ folder, ropelib installed, it neither clones nor moves
    script = tmp_path / "cell.ipy"
    script.write_text(cell + "\nprint(os.getcwd())\n")
    ipython = Path(sys.executable).parent / "ipython"
    ran = subprocess.run(
        [ipython, "--quick", "--no-banner", script],
        cwd=ROOT / "notebooks",
        capture_output=True,
        text=True,
    )
    assert ran.returncode == 0, ran.stdout + ran.stderr
    assert ran.stdout.strip().splitlines()[-1] == str(ROOT / "notebooks")
    assert not (ROOT / "notebooks" / "ropelib").exists()


@pytest.fixture(scope="module")
def tiny_book(tmp_path_factory):
    """A one-page book built by the repository's configuration with TEST_URL as its address."""
    import yaml

    root = tmp_path_factory.mktemp("tiny-book")
    (root / "notebooks").mkdir()
    (root / "intro.md").write_text("# A tiny book\n")
    (root / "notebooks" / "01_tiny.md").write_text(
        (ROOT / "notebooks" / "05_crope.md").read_text().split("\n---\n", 1)[0]
        + "\n---\n\n# A tiny chapter\n\n```{code-cell} ipython3\nprint(1 + 1)\n```\n"
    )
    (root / "_toc.yml").write_text(
        "format: jb-book\nroot: intro\nchapters:\n  - file: notebooks/01_tiny\n"
    )
    config = book_config()
    tiny = {
        "title": "tiny",
        "only_build_toc_files": True,
        "execute": {"execute_notebooks": "force"},
        "repository": {**config["repository"], "url": TEST_URL},
        "launch_buttons": config["launch_buttons"],
        "sphinx": {"local_extensions": {"book_notebooks": str(ROOT / "tools")}},
    }
    (root / "_config.yml").write_text(yaml.safe_dump(tiny))
    jupyter_book = Path(sys.executable).parent / "jupyter-book"
    build = subprocess.run(
        [jupyter_book, "build", str(root), "-W", "-n", "--keep-going"],
        capture_output=True,
        text=True,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    return root / "_build" / "html"


def test_tiny_book_with_a_url_links_the_notebook_and_the_launch_services(tiny_book):
    import nbformat

    html = (tiny_book / "notebooks" / "01_tiny.html").read_text()
    links = set(re.findall(r'href="([^"]+)"', html))
    assert "../_sources/notebooks/01_tiny.ipynb" in links
    notebook = nbformat.read(tiny_book / "_sources" / "notebooks" / "01_tiny.ipynb", 4)
    assert TEST_URL in notebook.cells[0].source and notebook.cells[-1].source == "print(1 + 1)"
    assert notebook.cells[-1].outputs == []  # the generated notebook, not the executed copy
    launch = book_config()["launch_buttons"]
    colab = launch["colab_url"].rstrip("/")
    published = launch.get("colab_branch", "gh-pages")
    # Colab opens only .ipynb: the generated one, in the branch the built book is published on
    assert (
        f"{colab}/github/example-owner/example-repo/blob/{published}"
        "/_sources/notebooks/01_tiny.ipynb"
    ) in links
    # Binder opens the MyST source in JupyterLab, where jupytext reads it as a notebook
    binder = launch["binderhub_url"].rstrip("/")
    assert (
        f"{binder}/v2/gh/example-owner/example-repo/main?urlpath=lab/tree/notebooks/01_tiny.md"
        in links
    )


@pytest.mark.browser
def test_tiny_book_shows_the_launch_buttons_when_a_url_is_set(chromium_context, tiny_book):
    page = chromium_context.new_page()
    page.goto((tiny_book / "notebooks" / "01_tiny.html").as_uri(), wait_until="load")
    page.locator(".dropdown-launch-buttons > button").click()
    menu = page.locator(".dropdown-launch-buttons .dropdown-menu")
    menu.wait_for(state="visible")
    shown = menu.inner_text()
    assert "Colab" in shown and "Binder" in shown, shown
    page.close()


def _download_menu(page) -> dict[str, str]:
    """The page's download menu, opened as a reader opens it: its entries' text -> href."""
    page.locator(".dropdown-download-buttons > button").click()
    menu = page.locator(".dropdown-download-buttons .dropdown-menu")
    menu.wait_for(state="visible")
    return {
        item.inner_text().strip(): item.get_attribute("href") or ""
        for item in menu.locator(".dropdown-item").all()
    }


@pytest.mark.browser
@pytest.mark.parametrize("page_path", [p for p in PAGES if p.startswith("notebooks/")])
def test_chapter_offers_its_ipynb_download(browser, page_path):
    import nbformat

    page = browser.new_page()
    page.goto((HTML / page_path).as_uri(), wait_until="load")
    menu = _download_menu(page)
    assert {".ipynb", ".md", ".pdf"} <= set(menu), menu
    target = (HTML / page_path).parent / menu[".ipynb"]
    notebook = nbformat.read(target.resolve(), 4)
    first = notebook.cells[0]
    assert "install-ropelib" in first.metadata["tags"]
    url = book_config()["repository"]["url"]
    assert (url in first.source) if url else ("make install" in first.source)
    # launch buttons exactly when the book has an address
    assert page.locator(".dropdown-launch-buttons").count() == (1 if url else 0)
    page.close()

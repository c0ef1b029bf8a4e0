"""The built book in a real browser: math typeset, every figure loaded (`make test` runs this
after `jupyter-book build`, with `pytest -m browser`)."""

from __future__ import annotations

import shutil
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
    import re

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

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make chromium` installs it"
    assert (HTML / "index.html").exists(), "build the book first: jupyter-book build ."
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
    assert "<Figure size" not in outputs, "a figure was printed as text instead of drawn"
    # displayed results (printed text, e.g. a command's output, may show markdown as it is)
    assert "| --- |" not in outputs and "|---|" not in outputs, "a table was displayed as text"
    assert requests_outside == [], f"the page reached the network: {requests_outside[:3]}"
    shot = ROOT / "_build" / "screenshots" / (page_path.replace("/", "_") + ".png")
    shot.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(shot), full_page=False)
    assert shot.stat().st_size > 10_000
    page.close()

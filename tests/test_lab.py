"""JupyterLab as `make lab` starts it: headless on a free loopback port, with the repository's
jupytext configuration, it serves a MyST chapter as a notebook through its contents API, makes
jupytext's notebook the default viewer of `.md` files, and runs the chapter in a kernel it
starts itself (the sessions API, then the kernel's websocket, cell by cell as nbval does in
`--nbval-lax` mode: every cell must run without error, except those tagged `raises-exception`;
`nbval-skip` cells are skipped), importing the exported `ropelib`. The server is shut down
through its API at the end."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import uuid
from datetime import datetime, timezone
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CHAPTER = "notebooks/05_crope.md"  # one of the shorter chapters: ~15 s under ROPELIB_QUICK=1
CELL_TIMEOUT_S = 120
START_TIMEOUT_S = 60

for module in ("jupyterlab", "jupytext", "websocket"):
    pytest.importorskip(module, reason=f"{module} is missing: pip install -e '.[lab]'")

import jupytext  # noqa: E402
import requests  # noqa: E402
import websocket  # noqa: E402


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Lab:
    """A running JupyterLab: its address, token and process."""

    def __init__(self, tmp: Path):
        self.token = uuid.uuid4().hex
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        private = {name: tmp / name for name in ("config", "data", "runtime", "lab")}
        for path in private.values():
            path.mkdir()
        env = {
            **os.environ,
            # as `make lab`: the repository's labconfig; the user's own settings left out
            "JUPYTER_CONFIG_PATH": str(ROOT / ".jupyter"),
            "JUPYTER_CONFIG_DIR": str(private["config"]),
            "JUPYTER_RUNTIME_DIR": str(private["runtime"]),
            "ROPELIB_QUICK": "1",
            "OMP_NUM_THREADS": "1",
        }
        command = [
            sys.executable,
            "-m",
            "jupyterlab",
            "--no-browser",
            "--ServerApp.ip=127.0.0.1",
            f"--ServerApp.port={self.port}",
            "--ServerApp.port_retries=0",
            f"--IdentityProvider.token={self.token}",
            f"--ServerApp.root_dir={ROOT}",
            f"--LabApp.user_settings_dir={private['lab'] / 'settings'}",
            f"--LabApp.workspaces_dir={private['lab'] / 'workspaces'}",
        ]
        if os.geteuid() == 0:
            command.append("--allow-root")
        self.log = (tmp / "lab.log").open("w")
        self.process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=self.log, stderr=subprocess.STDOUT
        )
        self.session = requests.Session()
        self.session.headers["Authorization"] = f"token {self.token}"
        self.wait_until_up(tmp / "lab.log")

    def wait_until_up(self, log: Path) -> None:
        deadline = time.monotonic() + START_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise AssertionError(f"JupyterLab exited: {log.read_text()[-2000:]}")
            try:
                if self.get("/api/status").ok:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.25)
        raise AssertionError(f"JupyterLab did not answer in {START_TIMEOUT_S} s")

    def get(self, path: str, **params):
        return self.session.get(self.url + path, params=params, timeout=30)

    def post(self, path: str, body: dict | None = None):
        return self.session.post(self.url + path, json=body, timeout=30)

    def stop(self) -> None:
        try:
            self.post("/api/shutdown")
            self.process.wait(timeout=20)
        except (requests.RequestException, subprocess.TimeoutExpired):
            self.process.terminate()
            self.process.wait(timeout=10)
        finally:
            self.log.close()


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    server = Lab(tmp_path_factory.mktemp("jupyterlab"))
    yield server
    server.stop()
    assert server.process.returncode is not None, "JupyterLab kept running after its shutdown"


def test_lab_serves_its_application(lab):
    page = lab.get("/lab")
    assert page.status_code == 200 and "JupyterLab" in page.text


def test_markdown_opens_as_a_jupytext_notebook_by_default(lab):
    settings = lab.get("/lab/api/settings/@jupyterlab/docmanager-extension:plugin").json()
    viewers = settings["schema"]["properties"]["defaultViewers"]["default"]
    assert viewers.get("markdown") == "Jupytext Notebook", viewers
    assert viewers.get("myst") == "Jupytext Notebook", viewers


def test_contents_api_serves_the_chapter_as_a_notebook(lab):
    model = lab.get(f"/api/contents/{CHAPTER}", type="notebook", content=1).json()
    assert model["type"] == "notebook" and model["format"] == "json", model.get("message")
    cells = model["content"]["cells"]
    expected = jupytext.read(ROOT / CHAPTER).cells
    assert [c["cell_type"] for c in cells] == [c.cell_type for c in expected]
    assert [c["source"] for c in cells] == [c.source for c in expected]
    assert sum(c["cell_type"] == "code" for c in cells) >= 10
    # a generated module is a file there, not a notebook (jupytext.toml: notebook_extensions)
    assert lab.get("/api/contents/ropelib/rope.py", content=0).json()["type"] == "file"


def run_cell(channel, session: str, code: str) -> tuple[dict, list[dict]]:
    """Execute `code` in the kernel: its execute_reply content and its outputs."""
    msg_id = uuid.uuid4().hex
    header = {
        "msg_id": msg_id,
        "msg_type": "execute_request",
        "session": session,
        "username": "test",
        "version": "5.3",
        "date": datetime.now(timezone.utc).isoformat(),
    }
    content = {
        "code": code,
        "silent": False,
        "store_history": True,
        "user_expressions": {},
        "allow_stdin": False,
        "stop_on_error": True,
    }
    message = {"header": header, "parent_header": {}, "metadata": {}, "content": content}
    channel.send(json.dumps({**message, "channel": "shell", "buffers": []}))
    reply, outputs, idle = None, [], False
    while reply is None or not idle:
        message = json.loads(channel.recv())
        if message.get("parent_header", {}).get("msg_id") != msg_id:
            continue
        kind = message["header"]["msg_type"]
        if kind == "execute_reply":
            reply = message["content"]
        elif kind in ("stream", "execute_result", "display_data", "error"):
            outputs.append({"output_type": kind, **message["content"]})
        elif kind == "status" and message["content"]["execution_state"] == "idle":
            idle = True
    return reply, outputs


def test_the_chapter_runs_in_a_kernel_of_the_server(lab):
    notebook = lab.get(f"/api/contents/{CHAPTER}", type="notebook", content=1).json()["content"]
    body = {"path": CHAPTER, "type": "notebook", "name": "", "kernel": {"name": "python3"}}
    started = lab.post("/api/sessions", body)
    assert started.status_code == 201, started.text
    session = started.json()
    kernel = session["kernel"]["id"]
    address = f"ws://127.0.0.1:{lab.port}/api/kernels/{kernel}/channels?token={lab.token}"
    channel = websocket.create_connection(address, timeout=CELL_TIMEOUT_S)
    try:
        ran = 0
        for index, cell in enumerate(notebook["cells"]):
            tags = set(cell["metadata"].get("tags", []))
            if cell["cell_type"] != "code" or "nbval-skip" in tags:
                continue
            reply, outputs = run_cell(channel, session["id"], cell["source"])
            errors = [o for o in outputs if o["output_type"] == "error"]
            if "raises-exception" in tags:
                assert reply["status"] == "error", f"cell {index} was to raise"
            else:
                detail = errors[0]["ename"] + ": " + errors[0]["evalue"] if errors else ""
                assert reply["status"] == "ok", f"cell {index} of {CHAPTER} failed: {detail}"
            ran += 1
        # the kernel's ropelib is the repository's exported package, and it runs in notebooks/
        code = "import os, ropelib; print(ropelib.__file__); print(os.getcwd())"
        reply, outputs = run_cell(channel, session["id"], code)
        assert reply["status"] == "ok"
        printed = "".join(o.get("text", "") for o in outputs).split()
        assert Path(printed[0]) == ROOT / "ropelib" / "__init__.py", printed
        assert Path(printed[1]) == ROOT / "notebooks", printed
        # negative control: a failing cell is seen as one
        reply, outputs = run_cell(channel, session["id"], "1 / 0")
        assert reply["status"] == "error" and outputs[-1]["ename"] == "ZeroDivisionError"
    finally:
        channel.close()
        lab.session.delete(f"{lab.url}/api/sessions/{session['id']}", timeout=30)
    assert ran >= 10


@pytest.mark.browser
def test_a_chapter_opens_as_a_notebook_in_the_browser(lab, tmp_path):
    """What a reader of `make lab` sees: the chapter's URL opens jupytext's notebook view."""
    import shutil

    from playwright.sync_api import sync_playwright
    from test_book import CHROMIUM_FLAGS

    chromium = shutil.which("chromium")
    assert chromium, "Debian's chromium is missing: `make system-packages` installs it"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=chromium, headless=True, args=CHROMIUM_FLAGS
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.goto(f"{lab.url}/lab/tree/{CHAPTER}?token={lab.token}")
        panel = page.locator(".jp-NotebookPanel")
        panel.first.wait_for(state="visible", timeout=90_000)
        cells = page.locator(".jp-NotebookPanel .jp-Cell")
        cells.first.wait_for(state="visible", timeout=30_000)
        title = page.locator(".jp-NotebookPanel .jp-MarkdownOutput h1").first.inner_text()
        browser.close()
    assert title.startswith(jupytext.read(ROOT / CHAPTER).cells[0].source.lstrip("# ")[:20])

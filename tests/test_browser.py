"""JupyterLab in a real browser: open the RSSN notebook, run it, move a widget control, and check
that the composite's measurements update. Saves a screenshot to reports/browser/. And a report page
(gfm.report.html) in the same browser: its maths is laid out as MathML, offline.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped with the
reason where they are missing. The notebook runs with tiny parameters (a copy whose parameters cell
are set in the scratch folder's params.yaml), in a temporary folder served by JupyterLab on 127.0.0.1
with a token.
"""

from __future__ import annotations

import json
import os
import secrets
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbformat.v4 import new_markdown_cell, new_notebook

from gfm.report.html import notebook_to_html

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_rssn.ipynb"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# params.yaml overrides for the browser run: one route, one background per foreground, few measurements,
# composites written inside the scratch folder
TINY = {"routes": ["bg20k"], "k": 1, "workers": 1, "fg_error_images": 1, "gap_images": 4,
        "out": "scratch/composites", "metrics_out": "scratch/compose.json"}

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER),
                       reason="Debian packages chromium and chromium-driver are not installed"),
    pytest.mark.skipif(not NOTEBOOK.exists(), reason="notebooks/03_rssn.ipynb is not there yet"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _tiny_params(dst: Path) -> None:
    """The project's params.yaml with :data:`TINY` in its ``compose`` section (validated)."""
    from ruamel.yaml import YAML

    from gfm.core.config import load_params

    yaml = YAML()
    params = yaml.load((ROOT / "params.yaml").read_text())
    params["compose"].update(TINY)
    grid = params["train"]["experiments"]  # only the experiments the tiny routes can feed (cross-checked)
    for name in [n for n, e in grid.items() if e["track"] not in ("ori", *TINY["routes"])]:
        del grid[name]
    for name, item in grid.items():
        if item["track"] != "ori":
            item["data"] = f"{TINY['out']}/{item['track']}"
    params["evaluate"]["experiments"] = [n for n in params["evaluate"]["experiments"] if n in grid]
    with open(dst / "params.yaml", "w") as handle:
        yaml.dump(params, handle)
    load_params(dst / "params.yaml")


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab serving a scratch copy of the project (artifacts of a repro are reused if present)."""
    root = tmp_path_factory.mktemp("lab")
    shutil.copy(ROOT / "dvc.yaml", root / "dvc.yaml")
    _tiny_params(root)
    for name in ("gfm", "data", "artifacts"):
        if (ROOT / name).exists():
            (root / name).symlink_to(ROOT / name)
    (root / "notebooks").mkdir()
    notebook = root / "notebooks" / NOTEBOOK.name
    shutil.copy(NOTEBOOK, notebook)
    port, token = _free_port(), secrets.token_hex(16)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JUPYTER_CONFIG_DIR": str(root / ".jupyter"),
           "JUPYTER_RUNTIME_DIR": str(root / ".runtime"), "MPLBACKEND": "module://matplotlib_inline.backend_inline"}
    server = subprocess.Popen(
        [sys.executable, "-m", "jupyterlab", "--no-browser", "--allow-root", "--ip=127.0.0.1", f"--port={port}",
         f"--IdentityProvider.token={token}", f"--ServerApp.root_dir={root}", "--LabApp.expose_app_in_browser=True",
         "--ServerApp.disable_check_xsrf=False", "--LabApp.news_url=", "--LabApp.check_for_updates_class="
         "jupyterlab.NeverCheckForUpdate"],
        cwd=root, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        _wait_for_port(port, server)
        yield f"http://127.0.0.1:{port}", token, notebook.relative_to(root)
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()


def _wait_for_port(port: int, server, timeout: float = 90) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"jupyter lab exited: {server.stdout.read().decode()[-2000:]}")
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.5)
    raise TimeoutError(f"jupyter lab did not listen on {port} within {timeout} s")


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run", "--disable-dev-shm-usage",
                 "--window-size=1400,1800", f"--user-data-dir={tmp_path_factory.mktemp('chromium')}"):
        options.add_argument(flag)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


def _js(driver, script: str, timeout: float = 30):
    driver.set_script_timeout(timeout)
    return driver.execute_async_script(
        "const done = arguments[arguments.length - 1];"
        f"(async () => {{ {script} }})().then(done, e => done({{error: String(e)}}));")


def _wait(predicate, timeout: float, what: str, interval: float = 1.0):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout} s waiting for {what}")


def test_rssn_notebook_runs_in_jupyterlab_and_its_widget_reacts(lab, browser):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.common.keys import Keys

    url, token, notebook = lab
    browser.get(f"{url}/lab/tree/{notebook.as_posix()}?token={token}")
    _wait(lambda: browser.execute_script("return !!(window.jupyterapp && window.jupyterapp.shell"
                                         " && window.jupyterapp.shell.currentWidget"
                                         " && window.jupyterapp.shell.currentWidget.sessionContext)"),
          120, "JupyterLab to open the notebook")
    _wait(lambda: browser.execute_script("const s = window.jupyterapp.shell.currentWidget.sessionContext;"
                                         "return s.session && s.session.kernel"
                                         " && s.session.kernel.connectionStatus === 'connected';"),
          120, "the kernel to connect")
    # start the run without awaiting it (the command's promise settles only when every cell is done)
    result = _js(browser, "window.jupyterapp.commands.execute('notebook:run-all-cells'); return 'ok';")
    assert result == "ok", result

    def idle_and_done():
        return browser.execute_script(
            "const w = window.jupyterapp.shell.currentWidget; const k = w.sessionContext.session.kernel;"
            "const cells = w.content.widgets.filter(c => c.model.type === 'code');"
            "const pending = cells.filter(c => c.promptNode && /\\[\\*\\]/.test(c.promptNode.textContent));"
            "return k.status === 'idle' && pending.length === 0 && cells.every(c => c.model.executionCount !== null);")

    _wait(idle_and_done, 900, "every cell to run", interval=3)
    errors = browser.execute_script(
        "return window.jupyterapp.shell.currentWidget.content.widgets"
        ".flatMap(c => c.model.type === 'code' ? c.model.outputs.toJSON() : [])"
        ".filter(o => o.output_type === 'error').map(o => o.ename + ': ' + o.evalue);")
    assert errors == [], errors

    def readout():  # the inspector's measurement table and the src of its composite image
        return browser.execute_script(
            "return Array.from(document.querySelectorAll('[data-gfm-readout]')).map(e => e.innerText).join('|')"
            " + '#' + Array.from(document.querySelectorAll('img.widget-image')).map(i => i.src).join('|');")

    before = _wait(lambda: (lambda text: text if "noise" in text.lower() else None)(readout()), 120,
                   "the inspector's measurement table")
    sliders = browser.find_elements(By.CSS_SELECTOR, ".widget-slider .noUi-handle, .widget-slider .ui-slider-handle")
    assert sliders, "the inspector has no slider"
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'});", sliders[0])
    sliders[0].click()
    for _ in range(3):
        sliders[0].send_keys(Keys.ARROW_RIGHT)
    after = _wait(lambda: (lambda text: text if text != before and "noise" in text.lower() else None)(readout()),
                  120, "the composite and measurements to change after moving the slider")
    shots = ROOT / "reports" / "browser"
    shots.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(shots / "jupyterlab_rssn_inspector.png"))
    (shots / "jupyterlab_rssn_inspector.json").write_text(json.dumps(
        {"before": before, "after": after}, indent=2))


def test_report_page_lays_out_its_maths_as_mathml(browser, tmp_path):
    notebook = tmp_path / "09_maths.ipynb"
    nbformat.write(new_notebook(cells=[new_markdown_cell(
        "# Maths\n\nAlpha blending: $I = \\alpha F + (1-\\alpha) B$.\n\n"
        "$$\\mathcal{L} = \\mathcal{L}_{CE} + \\mathcal{L}_{FD} + \\mathcal{L}_{CM}$$")]), notebook)
    browser.get(notebook_to_html(notebook, tmp_path / "09_maths.html").as_uri())
    boxes = browser.execute_script(
        "return Array.from(document.querySelectorAll('math')).map(m => { const r = m.getBoundingClientRect();"
        " return {display: m.getAttribute('display'), mathml: m instanceof MathMLElement,"
        " width: r.width, height: r.height}; });")
    assert [box["display"] for box in boxes] == ["inline", "block"], boxes
    assert all(box["mathml"] and box["width"] > 0 and box["height"] > 0 for box in boxes), boxes
    # laid out as maths, not as a run of text: a subscript sits lower than its base
    base, script = browser.execute_script(
        "const s = document.querySelector('math[display=block] msub');"
        " return [s.children[0].getBoundingClientRect().bottom, s.children[1].getBoundingClientRect().bottom];")
    assert script > base, (base, script)

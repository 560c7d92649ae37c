"""JupyterLab in a real browser: open the RSSN notebook, run it, move a widget control, and check
that the composite's measurements update. Saves a screenshot to reports/browser/. And the report
site (gfm.report.html) in the same browser: a report page's maths is laid out as MathML, offline; and a
site built like the pipeline's (tests/sitefixtures.py) shows no raw maths, widget reprs, progress bars,
path reprs or network resources on any page, the index shows the headline findings and links every
stage page, and each stage page links back; a full-page screenshot of each page goes to
reports/browser/<page>.png.

Needs Debian's ``chromium`` and ``chromium-driver`` (``.ci/run`` installs them); skipped with the
reason where they are missing. The notebook runs with tiny parameters (a copy whose parameters cell
are set in the scratch folder's params.yaml), in a temporary folder served by JupyterLab on 127.0.0.1
with a token.
"""

from __future__ import annotations

import base64
import json
import os
import re
import secrets
import shutil
import socket
import struct
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
from nbconvert import HTMLExporter
from nbformat.v4 import new_markdown_cell, new_notebook

from gfm.core.io import write_bytes
from gfm.report.html import notebook_to_html

from sitefixtures import FINDINGS, OFFICIAL_CODE, build_pipeline_site, executed_notebook, stage_pages

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOK = ROOT / "notebooks" / "03_rssn.ipynb"
SHOTS = ROOT / "reports" / "browser"
CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")
# params.yaml overrides for the browser run: one route, one background per foreground, few measurements,
# composites written inside the scratch folder
TINY = {"routes": ["bg20k"], "k": 1, "workers": 1, "fg_error_images": 1, "gap_images": 4,
        "out": "scratch/composites", "metrics_out": "scratch/compose.json"}

# What a page shows, read in the browser (document.body.innerText: rendered, visible text only).
# "prose": without code (code spans, code blocks, code cells' source, text outputs), where a `$...$` is raw
# maths; "outputs": everything but the code cells' source (.jp-InputArea-editor; a markdown cell's text is
# in its .jp-InputArea too), where widget reprs, progress bars and path reprs would appear.
# "loaded": every http(s) resource the page fetched or asks for (resource timing, and the src/href of the
# elements and style sheets that load one); plain <a href> links are not resources.
PAGE_FACTS = r"""
const textWithout = selector => {
  const style = document.createElement('style');
  style.textContent = selector + '{display:none !important}';
  document.head.appendChild(style);
  const text = document.body.innerText;
  style.remove();
  return text;
};
const web = url => /^https?:/i.test(url || '');
const loading = 'script[src], link[href][rel~=stylesheet], link[href][rel~=icon], link[href][rel~=preload],'
  + ' link[href][rel~=modulepreload], link[href][rel~=prefetch], img, iframe[src], embed[src], source,'
  + ' video[src], audio[src], track[src], object[data], input[type=image]';
const asked = Array.from(document.querySelectorAll(loading)).flatMap(e =>
  [e.src, e.href, e.data, e.currentSrc, ...(e.srcset || '').split(',').map(s => s.trim().split(/\s+/)[0])]);
const svg = Array.from(document.querySelectorAll('image, use, feImage')).map(e =>
  e.getAttribute('href') || e.getAttribute('xlink:href'));
const css = Array.from(document.styleSheets).flatMap(sheet => {
  let rules = [];
  try { rules = Array.from(sheet.cssRules); } catch (error) { return [sheet.href]; }
  return [sheet.href, ...rules.flatMap(rule => [rule.href,
    ...Array.from(rule.cssText.matchAll(/url\(\s*["']?([^"')]+)/g), m => m[1])])];
});
const resources = performance.getEntriesByType('resource').map(e => e.name);
const heading = document.querySelector('h1');
return {
  prose: textWithout('code, pre, .jp-InputArea-editor'),
  outputs: textWithout('.jp-InputArea-editor'),
  loaded: [...new Set([...resources, ...asked, ...svg, ...css].filter(web))],
  progress_elements: document.querySelectorAll('progress, [role=progressbar]').length,
  heading: heading && heading.checkVisibility() ? heading.innerText.trim() : '',
  links: Array.from(document.querySelectorAll('a[href]')).map(a => a.getAttribute('href')),
  images: document.images.length,
  broken_images: Array.from(document.images).filter(i => !i.complete || i.naturalWidth === 0)
    .map(i => i.src.slice(0, 60)),
  maths: Array.from(document.querySelectorAll('math')).map(m => m.getAttribute('display')),
  height: Math.ceil(document.documentElement.scrollHeight),
};
"""
RAW_MATHS = re.compile(r"\$[^$\s][^$\n]*\$")
WIDGET_REPR = re.compile(r"\b(?:HBox|VBox|IntProgress|FloatProgress|Inspector|interactive)\(|children=\(")
PROGRESS_BAR = re.compile(r"\d%\||[\d?]\s*it/s")
PATH_REPR = re.compile(r"\b(?:Pure|Posix|Windows)+Path\(")
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

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
    SHOTS.mkdir(parents=True, exist_ok=True)
    assert browser.save_screenshot(str(SHOTS / "jupyterlab_rssn_inspector.png"))
    (SHOTS / "jupyterlab_rssn_inspector.json").write_text(json.dumps(
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


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """The report site of every page of the pipeline (tests/sitefixtures.py), built by the html stage's
    command -> (index, stage page names)."""
    pages = stage_pages()
    return build_pipeline_site(tmp_path_factory.mktemp("site"), pages), pages


def test_every_site_page_shows_results_not_machinery_and_links_the_others(site, browser):
    """Each page of the site (index and stage pages, offline file:// URLs): no raw maths, widget or
    path reprs, progress bars or network resources (:func:`_plumbing`); the index's headline and links
    (:func:`_index_problems`); each stage page's headline, maths, figure and links
    (:func:`_stage_page_problems`). A full-page screenshot of each: reports/browser/<page>.png."""
    index, pages = site
    problems, shots = [], []
    for name in ["index", *pages]:
        page = index.with_name(f"{name}.html")
        assert page.is_file(), f"the html stage wrote no {page.name}"
        browser.get(page.as_uri())
        facts = browser.execute_script(PAGE_FACTS)
        shots.append((_full_page_screenshot(browser, SHOTS / f"{name}.png"), facts["height"]))
        problems += [f"{page.name}: {problem}" for problem in _plumbing(facts)]
        if name == "index":
            problems += [f"index.html: {problem}" for problem in _index_problems(facts, pages)]
        else:
            problems += [f"{page.name}: {problem}" for problem in _stage_page_problems(facts, name)]
    assert not problems, "\n".join(problems)
    for shot, height in shots:
        data = shot.read_bytes()
        assert data.startswith(PNG_SIGNATURE) and len(data) > 1000, f"{shot}: not a non-empty PNG"
        width, shot_height = struct.unpack(">II", data[16:24])  # the IHDR chunk
        assert width > 0 and shot_height >= height, f"{shot}: {width}x{shot_height}, not the whole page ({height} px)"


def test_page_checks_catch_each_kind_of_machinery(browser, tmp_path):
    """The checks of the site test: on the page nbconvert's stock lab template makes of a site
    notebook (MathJax and require.js from a CDN, every output kept), on a page with the other faults,
    and on a clean one."""
    notebook = executed_notebook(tmp_path / "03_rssn.ipynb", "03_rssn")
    body, _ = HTMLExporter(template_name="lab").from_notebook_node(nbformat.read(notebook, as_version=4))
    (tmp_path / "stock.html").write_text(body)
    browser.get((tmp_path / "stock.html").as_uri())
    found = _plumbing(browser.execute_script(PAGE_FACTS))
    for kind in ("raw maths: $I = ", "widget repr: HBox(children=", "widget repr: Inspector(children=",
                 "widget repr: VBox(children=", "progress bar:   0%|", "progress bar: 100%|",
                 "path repr: PosixPath(", "loads https://cdnjs.cloudflare.com/ajax/libs/mathjax/"):
        assert any(problem.startswith(kind) for problem in found), (kind, found)
    faulty = tmp_path / "faulty.html"
    faulty.write_text(
        "<!DOCTYPE html><html><head><link rel='stylesheet' href='http://127.0.0.1:9/style.css'></head><body>"
        "<p>Raw maths: $I = \\alpha F$.</p><pre>HBox(children=(FloatProgress(value=0.0),))</pre>"
        "<pre>  0%|          | 0/60 [00:00&lt;?, ?it/s]</pre><progress value='3' max='10'></progress>"
        "<pre>PosixPath('reports/paper/forest.png')</pre><img src='http://127.0.0.1:9/figure.png'></body></html>")
    browser.get(faulty.as_uri())
    found = _plumbing(browser.execute_script(PAGE_FACTS))
    for kind in ("raw maths: $I = ", "widget repr: HBox(", "progress bar:   0%|", "1 <progress> element",
                 "path repr: PosixPath(", "loads http://127.0.0.1:9/style.css", "loads http://127.0.0.1:9/figure.png"):
        assert any(problem.startswith(kind) for problem in found), (kind, found)
    clean = tmp_path / "clean.html"
    clean.write_text(f"<!DOCTYPE html><html><body><h1>Clean</h1><p>Cost in code: <code>$5 and $6</code>.</p>"
                     f"<pre>echo $HOME and $PATH</pre><a href='{OFFICIAL_CODE}'>the official code</a></body></html>")
    browser.get(clean.as_uri())
    assert _plumbing(browser.execute_script(PAGE_FACTS)) == []


def _plumbing(facts: dict) -> list[str]:
    """What a page shows that is not a result: raw maths, widget reprs, progress bars, path reprs,
    network resources."""
    found = [f"raw maths: {m.group()}" for m in RAW_MATHS.finditer(facts["prose"])]
    for kind, pattern in (("widget repr", WIDGET_REPR), ("progress bar", PROGRESS_BAR), ("path repr", PATH_REPR)):
        found += [f"{kind}: {_line(facts['outputs'], m)}" for m in pattern.finditer(facts["outputs"])]
    found += [f"{facts['progress_elements']} <progress> element(s)"] if facts["progress_elements"] else []
    found += [f"loads {url} (expected no network resource)" for url in facts["loaded"]]
    return found


def _index_problems(facts: dict, pages: list[str]) -> list[str]:
    """The index shows its title and the headline findings (metrics/findings.json's summary counts)
    and links every stage page."""
    found = [] if facts["heading"] else ["no visible <h1> headline"]
    counts = [f"{verdict.replace('_', ' ')}: {n}" for verdict, n in FINDINGS["summary"].items()]
    if "Headline findings" not in facts["outputs"] or not all(c in facts["outputs"] for c in counts):
        found.append(f"no headline findings (expected 'Headline findings' and the counts {counts})")
    found += [f"no link to {p}.html" for p in pages if f"{p}.html" not in facts["links"]]
    return found


def _stage_page_problems(facts: dict, name: str) -> list[str]:
    """A stage page shows its notebook's headline, narrative, printed output, maths as MathML, figure
    and link to the official code, and links back to the index."""
    found = [] if facts["heading"] == f"Stage {name}" else [f"headline {facts['heading']!r}, expected 'Stage {name}'"]
    found += [] if "Alpha blending (Eq. 1)" in facts["prose"] else ["the narrative is not in its visible text"]
    found += [] if "step 60: loss 0.25" in facts["outputs"] else ["the printed output is not in its visible text"]
    found += [] if "index.html" in facts["links"] else ["no link back to index.html"]
    found += [] if OFFICIAL_CODE in facts["links"] else [f"the link to {OFFICIAL_CODE} is gone"]
    found += [] if sorted(set(facts["maths"])) == ["block", "inline"] else [f"maths as MathML: {facts['maths']}"]
    found += [] if facts["images"] else ["no figure"]
    found += [f"image not shown: {src}" for src in facts["broken_images"]]
    return found


def _line(text: str, match: re.Match, width: int = 80) -> str:
    """The line of ``text`` where ``match`` starts, from the start of its line (at most ``width`` characters)."""
    start = text.rfind("\n", 0, match.start()) + 1
    end = text.find("\n", match.end())
    return text[start:end if end >= 0 else len(text)][:width]


def _full_page_screenshot(driver, path: Path) -> Path:
    """A PNG of the whole page (beyond the window), through the DevTools protocol; written atomically."""
    size = driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {
        "format": "png", "captureBeyondViewport": True,
        "clip": {"x": 0, "y": 0, "width": size["width"], "height": size["height"], "scale": 1}})
    return write_bytes(path, base64.b64decode(shot["data"]))

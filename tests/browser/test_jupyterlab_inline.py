"""The explorer inline in a real JupyterLab page: it renders, and Play trains with live views.

A fresh JupyterLab server (offline, its own settings/workspace/runtime folders) opens a notebook
whose one cell is the README's inline recipe on a small preset, through Panel's notebook
extension or through the ipywidgets route (jupyter_bokeh); the test runs the cell, waits
for the canvas raster's first frame, presses Play, and checks that the step counter advances
and new raster frames arrive while training, then Pause, and that the page asked for nothing
off-site (a CDN stylesheet would be missing offline).
"""
import json
import re
import sys
import time

import pytest
from playwright.sync_api import TimeoutError as PlaywrightTimeout

HOST = "127.0.0.1"

RECIPES = {  # Panel's notebook extension (the README's recipe), and the ipywidgets route (jupyter_bokeh)
    "panel": 'pn.extension(inline=True)',
    "ipywidgets": 'pn.extension(inline=True, comms="ipywidgets")',
}
CELL = """import panel as pn
{extension}
import qsnn_explorer
app = qsnn_explorer.explore(qsnn_explorer.preset("digits8x8-mlp"))
app"""
COUNTER = re.compile(r"^step (\d+) · ")
WAIT_MS = 120_000


@pytest.fixture(params=list(RECIPES))
def lab(request, serve_command, tmp_path):
    root = tmp_path / "root"
    root.mkdir()
    cell = {"cell_type": "code", "execution_count": None, "metadata": {}, "outputs": [],
            "source": CELL.format(extension=RECIPES[request.param]).splitlines(keepends=True)}
    notebook = {"cells": [cell], "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3",
                                                            "language": "python"}},
                "nbformat": 4, "nbformat_minor": 5}
    (root / "inline.ipynb").write_text(json.dumps(notebook))
    env = [f"JUPYTERLAB_WORKSPACES_DIR={tmp_path / 'workspaces'}", f"JUPYTERLAB_SETTINGS_DIR={tmp_path / 'settings'}",
           f"JUPYTER_RUNTIME_DIR={tmp_path / 'runtime'}"]
    return serve_command(["env", *env, sys.executable, "-m", "jupyterlab", "--no-browser", f"--ip={HOST}",
                          "--port={port}", "--ServerApp.token=", "--ServerApp.password=",
                          f"--ServerApp.root_dir={root}", "--allow-root"], timeout=120)


def test_inline_explorer_renders_and_trains_live(lab, page, offsite_requests):
    page.set_viewport_size({"width": 1500, "height": 1100})
    page.goto(f"{lab}lab/tree/inline.ipynb", wait_until="domcontentloaded")
    page.locator(".jp-Notebook .jp-Cell").first.wait_for(timeout=WAIT_MS)
    accept = page.locator(".jp-Dialog .jp-mod-accept")  # "Select kernel", when JupyterLab asks
    try:
        accept.first.wait_for(timeout=8_000)
        accept.first.click()
    except PlaywrightTimeout:  # no dialog this time
        pass
    page.get_by_text(re.compile(r"\| Idle$")).first.wait_for(timeout=WAIT_MS)
    page.locator(".jp-Cell .jp-InputArea-editor").first.click()
    page.keyboard.press("Shift+Enter")

    raster = page.locator(".qsnn-raster").first
    raster.wait_for(timeout=WAIT_MS)
    page.wait_for_function("el => el.qsnnRaster && el.qsnnRaster.stats.seq >= 1", arg=raster.element_handle(),
                           timeout=WAIT_MS)  # the first snapshot came from the training process
    first_seq = raster.evaluate("el => el.qsnnRaster.stats.seq")
    play = page.get_by_role("button", name="Play", exact=True)
    play.scroll_into_view_if_needed()
    play.click()
    counter = page.get_by_text(COUNTER).first
    deadline = time.monotonic() + WAIT_MS / 1000
    step = 0
    while time.monotonic() < deadline and step < 20:
        step = int(COUNTER.match(counter.inner_text()).group(1))
        time.sleep(0.25)
    page.wait_for_function(f"el => el.qsnnRaster.stats.seq >= {first_seq + 3}", arg=raster.element_handle(),
                           timeout=WAIT_MS)
    page.get_by_role("button", name="Pause", exact=True).click()
    layers = raster.evaluate("el => el.qsnnRaster.decoded().layers.map(l => [l.name, l.n])")
    assert step >= 20, f"the step counter reached only {step}"
    assert layers == [["hidden 1", 128], ["output", 10]]
    # inline means self-contained: no stylesheet (or anything else) from a CDN, also after updates
    assert offsite_requests == [], offsite_requests

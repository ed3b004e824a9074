"""The served explorer in a real browser: play/pause/step, live plots, hot controls, sessions.

Plots are canvases, so their contents are read from the page: a live chart (js/chart.js) from
its element (``.qsnn-chart[data-chart=NAME]``, ``el.qsnnChart.chart()``: what the page decoded
and drew), the Bokeh surrogate figure from the page's Bokeh document
(``get_model_by_name`` on the ``name=`` given in ``qsnn_explorer/app/views.py``). Widgets live
in Panel's shadow DOM; Playwright's locators pierce it.

Most tests share one server (``shared_app``; each page load is its own session with its own
engine) and pause every page they opened at teardown, so no session keeps training while
the next test runs.
"""
from __future__ import annotations

import json
import math
import os
import re
import time

import pytest
from playwright.sync_api import Page, expect

pytestmark = pytest.mark.browser

LOAD_S = 30          # first page load: Bokeh/Panel JS plus building the session's Trainer
UPDATE_S = 10        # a control change or command showing up in the page
COUNTER = re.compile(r"^step (\d+) · epoch (\d+\.\d\d) · ")
IDLE_COUNTER = "step 0 · epoch 0.00 · – samples/s"
PAUSED = re.compile(r"Loss became (nan|inf|-inf) at step \d+: paused")

_MODEL_JS = """([name, what]) => {
  const docs = (window.Bokeh && window.Bokeh.documents) || [];
  for (const doc of docs) {
    const m = doc.get_model_by_name(name);
    if (m == null) continue;
    if (what === "title") return m.title.text;
    if (what === "length") return m.get_length();
    return Array.from(m.data[what]);
  }
  return null;
}"""


_CHART_JS = """el => { const c = el.qsnnChart.chart();
  return c && { title: c.title, series: c.series.map(s => ({ label: s.label, kind: s.kind,
                                                           x: Array.from(s.x), y: Array.from(s.y) })) } }"""


# --------------------------------------------------------------------------- helpers
def model(page: Page, name: str, what: str):
    """Read a named Bokeh model in the page: ``"title"`` (figure), ``"length"`` or a column
    name (ColumnDataSource). None when no model has that name (yet)."""
    return page.evaluate(_MODEL_JS, [name, what])


def chart(page: Page, name: str) -> dict | None:
    """The live chart ``name`` as the page last decoded it: ``{title, series: [{label, kind, x,
    y}]}``; None before its first payload."""
    return page.locator(f'.qsnn-chart[data-chart="{name}"]').evaluate(_CHART_JS)


def chart_title(page: Page, name: str) -> str | None:
    c = chart(page, name)
    return c and c["title"]


def series(page: Page, name: str, label: str, kind: str = "line", column: str = "x") -> list | None:
    """One column of the series of chart ``name`` with that label and kind (None: no such series)."""
    c = chart(page, name)
    found = [s[column] for s in (c["series"] if c else []) if s["label"] == label and s["kind"] == kind]
    return found[0] if found else None


def train_steps(page: Page) -> list:
    return series(page, "loss", "train") or []


def wait_for(read, ok, timeout: float, what):
    """Poll ``read()`` every 0.1 s until ``ok(value)``; return the value or fail with the last one.
    ``what`` describes the wait: a string, or a callable giving one (evaluated on failure)."""
    deadline = time.monotonic() + timeout
    while True:
        value = read()
        if ok(value):
            return value
        if time.monotonic() > deadline:
            what = what() if callable(what) else what
            raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value: {value!r}")
        time.sleep(0.1)


def counter(page: Page):
    return page.get_by_text(re.compile(r"^step \d+ · "))


def step_and_epoch(page: Page) -> tuple[int, float]:
    text = counter(page).inner_text()
    m = COUNTER.match(text)
    assert m, f"unexpected counter text {text!r}"
    return int(m.group(1)), float(m.group(2))


def step_of(page: Page) -> int:
    return step_and_epoch(page)[0]


def alert_texts(page: Page) -> list[str]:
    """Text of every Panel Alert in the page (for failure messages)."""
    return page.locator(".alert").evaluate_all("""els => els.map(e => (e.shadowRoot
        ? Array.from(e.shadowRoot.children).filter(c => c.tagName === "DIV").map(c => c.innerText).join(" ")
        : e.innerText).trim()).filter(Boolean)""")


def button(page: Page, name: str):
    return page.get_by_role("button", name=name, exact=True)


def slider_input(page: Page, label: str):
    """The typed input of an EditableFloatSlider: the input in the row holding its label."""
    return page.locator(".bk-Row", has=page.get_by_text(f"{label}:", exact=True)).last.locator("input")


def set_text(locator, value: str):
    locator.fill(value)
    locator.press("Enter")


def settle(page: Page, timeout: float = 5.0) -> int:
    """After Pause: wait until the counter stops changing for 0.5 s; return its step."""
    deadline = time.monotonic() + timeout
    last, since = counter(page).inner_text(), time.monotonic()
    while time.monotonic() - since < 0.5:
        assert time.monotonic() < deadline, f"the counter kept changing after Pause: {last!r}"
        time.sleep(0.1)
        now = counter(page).inner_text()
        if now != last:
            last, since = now, time.monotonic()
    return step_of(page)


def descendants(pid: int) -> dict[int, int]:
    """Processes below ``pid`` (children, grandchildren...): pid → CPU time used so far (clock
    ticks, user + system). Training children hang below the fork server, itself a child."""
    parent_of, ticks = {}, {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as fh:
                fields = fh.read().rsplit(")", 1)[1].split()
        except OSError:  # ended between listdir and open
            continue
        if fields[0] == "Z":  # ended, not yet reaped
            continue
        parent_of[int(entry)] = int(fields[1])
        ticks[int(entry)] = int(fields[11]) + int(fields[12])
    below, frontier = set(), {pid}
    while frontier:
        frontier = {p for p, parent in parent_of.items() if parent in frontier} - below
        below |= frontier
    return {p: ticks[p] for p in below}


@pytest.fixture
def open_app(context):
    """``open_app(page, url)``: load the explorer and wait until it is drawn. At teardown every
    page it opened that is still open is paused (its session may outlive the page)."""
    pages: list[Page] = []

    def open_(page: Page, url: str) -> Page:
        page.goto(url)
        expect(button(page, "Play")).to_be_visible(timeout=LOAD_S * 1000)
        expect(counter(page)).to_be_visible(timeout=UPDATE_S * 1000)
        pages.append(page)
        return page

    yield open_
    for page in pages:
        if page.is_closed():
            continue
        try:
            page.bring_to_front()  # a background tab gets no animation frames: clicks there stall
            button(page, "Pause").click(timeout=2000)
            page.wait_for_timeout(200)  # let the click reach the server before the page closes
        except Exception:  # the test's own failure is the one to report
            pass


# --------------------------------------------------------------------------- tests
def test_page_loads_without_console_errors(shared_app, page, console_errors, offsite_requests, open_app):
    open_app(page, shared_app)
    expect(counter(page)).to_have_text(IDLE_COUNTER)
    borders = counter(page).evaluate(  # the text and 4 levels of its wrappers, across shadow roots
        "e => { const s = []; for (let n = e; n && s.length < 5; n = n.parentElement || n.getRootNode().host)"
        " s.push(getComputedStyle(n).borderTopStyle); return s }")
    assert set(borders) == {"none"}, borders  # plain text, no box
    wait_for(lambda: page.locator("canvas").count(), lambda n: n > 5, UPDATE_S, "the plots' canvases")
    assert model(page, "fig_surrogate", "title") is not None, "no Bokeh figure 'fig_surrogate' in the page"
    assert [chart_title(page, name) for name in ("loss", "accuracy")] == ["loss", "accuracy"]
    # The surrogate curve is drawn before training; the weights histogram after the first snapshot.
    assert wait_for(lambda: model(page, "surrogate_current", "length"), bool, UPDATE_S, "surrogate curve") == 501
    wait_for(lambda: series(page, "weights", "", "bars", "y"), bool, UPDATE_S, "weights histogram")
    assert train_steps(page) == []
    assert console_errors == []
    assert offsite_requests == []


def test_play_advances_the_counter_and_the_curves(shared_app, page, console_errors, open_app):
    open_app(page, shared_app)
    button(page, "Play").click()
    first = wait_for(lambda: step_of(page), lambda s: s >= 3, UPDATE_S, "training to start")
    wait_for(lambda: step_of(page), lambda s: s > first + 5, UPDATE_S, "the step counter to advance")
    # One epoch of mnist5k is 63 steps at batch 64: then a validation point is added.
    wait_for(lambda: step_and_epoch(page)[1], lambda e: e >= 1.0, 20, "epoch ≥ 1.00")
    wait_for(lambda: series(page, "loss", "validation", "points"), bool, UPDATE_S,
             "a validation point on the curves")
    button(page, "Pause").click()
    step = settle(page)
    # Every step is one point of the train curves; validation accuracy after an epoch is real.
    steps = wait_for(lambda: train_steps(page), lambda s: s and s[-1] == step, UPDATE_S,
                     f"the train curve to end at step {step}")
    assert steps == list(range(1, step + 1))
    val_acc = series(page, "accuracy", "validation", "points", "y")
    assert series(page, "accuracy", "validation", "points")[0] == 63
    assert 0.5 < val_acc[0] <= 1.0, val_acc
    assert console_errors == []


def test_surrogate_sharpness_redraws_the_surrogate_plot(shared_app, page, console_errors, open_app):
    open_app(page, shared_app)
    title = wait_for(lambda: model(page, "fig_surrogate", "title"), bool, UPDATE_S, "surrogate title")
    assert title.startswith("surrogate gradient ∂s/∂u:") and "sharpness=25.0" in title, title
    box = slider_input(page, "surrogate sharpness")
    expect(box).to_have_value("25")
    set_text(box, "50")
    title = wait_for(lambda: model(page, "fig_surrogate", "title"), lambda t: "sharpness=50.0" in t,
                     UPDATE_S, "the surrogate title to show sharpness 50")
    assert title.startswith("surrogate gradient ∂s/∂u: FastSigmoid(")
    # fast sigmoid: γ / (k|v| + 1)²; at v = 0.1 the new curve (k 50) and the ghost of the old (k 25).
    v = model(page, "surrogate_current", "v")
    i = min(range(len(v)), key=lambda j: abs(v[j] - 0.1))
    assert model(page, "surrogate_current", "g")[i] == pytest.approx(1 / (50 * 0.1 + 1) ** 2, rel=1e-6)
    assert model(page, "surrogate_ghost", "g")[i] == pytest.approx(1 / (25 * 0.1 + 1) ** 2, rel=1e-6)
    assert console_errors == []


def test_weight_bits_change_the_histogram_levels_while_playing(shared_app, page, console_errors, open_app):
    open_app(page, shared_app)
    wait_for(lambda: chart_title(page, "weights"), lambda t: t and "(float)" in t, UPDATE_S,
             "the float weights histogram")
    assert series(page, "weights", "", "vlines") == []
    page.get_by_text("Quantization", exact=True).click()
    bits = page.get_by_label("weight bits", exact=True)
    expect(bits).to_be_visible(timeout=UPDATE_S * 1000)
    expect(bits).to_have_value("32")
    button(page, "Play").click()
    wait_for(lambda: step_of(page), lambda s: s >= 2, UPDATE_S, "training to start")
    bits.select_option("4")
    title = wait_for(lambda: chart_title(page, "weights"), lambda t: "4-bit: 15 levels" in t,
                     UPDATE_S, "the histogram title to show 4-bit levels")
    assert title.startswith("weights of layer 1")
    levels = sorted(series(page, "weights", "", "vlines"))
    assert len(levels) == 15
    assert levels[0] == pytest.approx(-levels[-1]) and levels[7] == pytest.approx(0, abs=1e-12)
    gaps = [b - a for a, b in zip(levels, levels[1:])]
    assert max(gaps) == pytest.approx(min(gaps), rel=1e-5), "4-bit levels must be evenly spaced"
    step = step_of(page)
    wait_for(lambda: step_of(page), lambda s: s > step, UPDATE_S, "training to go on after the change")
    assert console_errors == []


def test_pause_stops_the_counter(shared_app, page, console_errors, open_app):
    open_app(page, shared_app)
    button(page, "Play").click()
    wait_for(lambda: step_of(page), lambda s: s >= 5, UPDATE_S, "training to start")
    button(page, "Pause").click()
    step = settle(page)
    text = counter(page).inner_text()
    page.wait_for_timeout(1500)  # nothing to wait for: the point is that nothing happens
    assert counter(page).inner_text() == text
    assert step_of(page) == step
    assert len(train_steps(page)) == step
    # ...and Step still moves it by exactly one.
    button(page, "Step").click()
    expect(counter(page)).to_have_text(re.compile(rf"^step {step + 1} · "), timeout=UPDATE_S * 1000)
    assert console_errors == []


def test_two_sessions_train_independently(shared_app, page, context, console_errors, open_app):
    page_b = context.new_page()
    errors_b: list[str] = []
    page_b.on("console", lambda msg: errors_b.append(msg.text) if msg.type == "error" else None)
    page_b.on("pageerror", lambda exc: errors_b.append(f"pageerror: {exc}"))
    open_app(page, shared_app)
    open_app(page_b, shared_app)
    page.bring_to_front()
    button(page, "Play").click()
    wait_for(lambda: step_of(page), lambda s: s >= 10, 20, "session A to train 10 steps")
    expect(counter(page_b)).to_have_text(IDLE_COUNTER)
    assert train_steps(page_b) == []
    assert len(train_steps(page)) >= 10
    # B's commands move only B.
    page_b.bring_to_front()
    button(page_b, "Step").click()
    expect(counter(page_b)).to_have_text(re.compile(r"^step 1 · "), timeout=UPDATE_S * 1000)
    assert step_of(page) > 10
    assert console_errors == [] and errors_b == []


def test_diverging_run_pauses_with_a_message_and_the_page_keeps_working(shared_app, page, console_errors,
                                                                         open_app):
    # No allowed setting makes the default Adam run diverge within seconds; plain SGD at lr 1 with
    # TET's squared regularizer (λ = 1) on the membrane readout overflows to inf by ~step 10.
    open_app(page, shared_app)
    for card in page.get_by_text("Optimizer & LR schedule", exact=True).all():  # live one and setup one
        card.click()
    page.get_by_label("optimizer", exact=True).select_option("sgd")  # cold: resets the run
    expect(page.get_by_text("Run reset (optimizer adam→sgd).")).to_be_visible(timeout=UPDATE_S * 1000)
    page.get_by_label("loss", exact=True).select_option("tet")
    set_text(slider_input(page, "tet lambda"), "1")
    lr = page.get_by_label("lr", exact=True)
    set_text(lr, "1")
    # Click only once the server has handled the changes (it redraws the LR plot for lr): see
    # test_a_change_then_an_immediate_click_both_apply for what happens otherwise.
    wait_for(lambda: chart_title(page, "lr"), lambda t: t and t.endswith("peak 1"), UPDATE_S,
             "the LR plot to show the new peak")
    button(page, "Play").click()
    message = page.get_by_text(PAUSED)
    wait_for(lambda: message.count(), bool, 20,
             lambda: f"the divergence message (counter: {counter(page).inner_text()!r}, "
                     f"alerts: {alert_texts(page)!r})\n--- server log ---\n{shared_app.log_tail(40)}")
    expect(message).to_be_visible()
    step = settle(page)  # fails if the counter does not stop: a diverged run must stay paused
    assert re.search(r" loss (nan|inf|-inf) · ", counter(page).inner_text()), counter(page).inner_text()
    # The page still answers: Step runs one more step (which diverges again, and says so).
    button(page, "Step").click()
    expect(counter(page)).to_have_text(re.compile(rf"^step {step + 1} · "), timeout=UPDATE_S * 1000)
    # Reset starts a fresh run and clears the message; Play trains it.
    button(page, "Reset").click()
    expect(message).to_be_hidden(timeout=UPDATE_S * 1000)
    wait_for(lambda: train_steps(page), lambda s: s == [], UPDATE_S, "the curves to clear")
    button(page, "Play").click()
    wait_for(lambda: train_steps(page), lambda s: s and s[0] == 1, UPDATE_S,
             "the new run's first step")
    assert console_errors == []


def test_a_change_then_an_immediate_click_both_apply(shared_app, page, open_app):
    # A fast user, or a busy server whose debounce timer fires late: the lr change and the Play
    # click leave the browser in the same JS task.
    open_app(page, shared_app)
    page.get_by_text("Optimizer & LR schedule", exact=True).first.click()
    lr = page.get_by_label("lr", exact=True)
    expect(lr).to_be_visible()
    page.evaluate("""([input, play]) => {
        input.value = "0.01";
        input.dispatchEvent(new Event("change", {bubbles: true}));
        play.click();
    }""", [lr.element_handle(), button(page, "Play").element_handle()])
    wait_for(lambda: chart_title(page, "lr"), lambda t: t and t.endswith("peak 0.01"), 3,
             "the LR plot to show the new peak")
    wait_for(lambda: step_of(page), lambda s: s >= 1, 5, "Play to start training")


def test_reset_shows_step_zero(shared_app, page, open_app):
    open_app(page, shared_app)
    button(page, "Step").click()
    expect(counter(page)).to_have_text(re.compile(r"^step 1 · "), timeout=UPDATE_S * 1000)
    button(page, "Reset").click()
    wait_for(lambda: train_steps(page), lambda s: s == [], UPDATE_S, "the curves to clear")
    expect(counter(page)).to_have_text(re.compile(r"^step 0 · "), timeout=2000)


def test_importing_a_bad_config_changes_nothing(shared_app, page, console_errors, open_app):
    open_app(page, shared_app)
    lr = page.get_by_label("lr", exact=True)
    page.get_by_text("Optimizer & LR schedule", exact=True).first.click()
    expect(lr).to_have_value("0.002")
    with page.expect_download(timeout=UPDATE_S * 1000) as download:
        page.get_by_text("Export config", exact=True).click()
    with open(download.value.path(), encoding="utf-8") as fh:
        exported = json.load(fh)
    assert exported["surrogate_sharpness"] == 25.0 and exported["lr"] == 0.002
    upload = page.locator("input[type=file]")
    # A valid sharpness next to an out-of-range lr: the whole file is refused.
    bad = {**exported, "surrogate_sharpness": 50.0, "lr": 5.0}
    upload.set_input_files(files=[{"name": "bad.json", "mimeType": "application/json",
                                   "buffer": json.dumps(bad).encode()}])
    expect(page.get_by_text(re.compile(r"^Config not imported, nothing changed: .*lr"))).to_be_visible(
        timeout=UPDATE_S * 1000)
    assert "sharpness=25.0" in model(page, "fig_surrogate", "title")
    expect(lr).to_have_value("0.002")
    expect(slider_input(page, "surrogate sharpness")).to_have_value("25")
    expect(counter(page)).to_have_text(IDLE_COUNTER)
    # The same file with a valid lr is applied (so the refusal above was not a dead upload).
    good = {**bad, "lr": 0.002}
    upload.set_input_files(files=[{"name": "good.json", "mimeType": "application/json",
                                   "buffer": json.dumps(good).encode()}])
    wait_for(lambda: model(page, "fig_surrogate", "title"), lambda t: "sharpness=50.0" in t, UPDATE_S,
             "the imported sharpness")
    expect(slider_input(page, "surrogate sharpness")).to_have_value("50")
    assert console_errors == []


def test_clicking_a_raster_neuron_shows_its_membrane_trace(shared_app, page, console_errors, open_app):
    # The raster is the canvas SpikeRaster (js/raster.js), not a Bokeh figure: its layout comes
    # from the component (el.qsnnRaster.layout()); the membrane view is a live chart.
    open_app(page, shared_app)
    raster = page.locator(".qsnn-raster")
    page.wait_for_function("el => el.qsnnRaster.stats.seq >= 1 && el.qsnnRaster.layout() !== null",
                           arg=raster.element_handle(), timeout=UPDATE_S * 1000)
    wait_for(lambda: chart_title(page, "membrane"), lambda t: t and "neurons [0, 1, 2]" in t, UPDATE_S,
             "the membrane view of the first snapshot")
    # layer labels travel in the frame: the explorer's names, not placeholders
    assert raster.evaluate("el => el.qsnnRaster.decoded().layers.map(l => l.name)") == ["hidden 1", "output"]
    layout = raster.evaluate("el => el.qsnnRaster.layout()")
    box = raster.locator("canvas.qsnn-raster-overlay").bounding_box()
    neuron = 7  # layer 0 (hidden 1): cell at t 3
    page.mouse.click(box["x"] + layout["x0"] + 3.5 * layout["cellW"],
                     box["y"] + layout["y0"] + (layout["layerTop"][0] + neuron + 0.5) * layout["cellH"])
    # 1,000 hidden neurons share ~300 px: a row is under a pixel tall, so the neuron under the
    # (integer) mouse position may be a neighbour of the one aimed at. The component's own
    # choice, synced to Python, is what the membrane view must follow.
    raster.page.wait_for_function("el => el.qsnnRaster.meta().selected.length === 2", arg=raster.element_handle(),
                                  timeout=UPDATE_S * 1000)
    layer, chosen = raster.evaluate("el => el.qsnnRaster.meta().selected")
    slack = 1 + math.ceil(1 / layout["cellH"])
    assert layer == 0 and abs(chosen - neuron) <= slack, (chosen, neuron, layout["cellH"])
    first = [chosen] + [n for n in (0, 1, 2) if n != chosen][:2]  # the earlier traces were 0, 1, 2
    wait_for(lambda: chart_title(page, "membrane"), lambda t: t and f"neurons {first}" in t, UPDATE_S,
             "the membrane view to trace the clicked neuron first")
    expect(page.get_by_label("trace neurons", exact=True)).to_have_value(", ".join(map(str, first)))
    assert console_errors == []


@pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="reads processes from Linux /proc")
def test_closing_the_page_stops_its_training_process(shared_app, page, open_app):
    # Each session trains in its own child process (ProcessRunner). This session's is the one
    # that appeared below the server with the page and uses CPU while it plays; sessions of
    # earlier tests are paused, so the shared server does not confuse this.
    pid = shared_app.pid
    existing = set(descendants(pid))
    open_app(page, shared_app)
    button(page, "Play").click()
    wait_for(lambda: step_of(page), lambda s: s >= 3, UPDATE_S, "training to start")
    before = descendants(pid)
    time.sleep(1.0)  # measure CPU use over a window
    after = descendants(pid)
    # ≥ 30 ms of CPU in the second: on a loaded 2-core machine a training process may get only
    # ~15 % of a core, while an idle one gets 0.
    min_ticks = 0.03 * os.sysconf("SC_CLK_TCK")
    busy = {p for p, ticks in after.items() if p not in existing and ticks - before.get(p, ticks) >= min_ticks}
    assert busy, f"no new busy process below the server: before {before}, after {after}"
    page.close()
    wait_for(lambda: busy & set(descendants(pid)), lambda s: not s, 4,
             f"training processes {sorted(busy)} to end after the page closed")

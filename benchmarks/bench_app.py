"""Browser benchmark of the live explorer (served app, Debian chromium, headless).

Measures, while the default preset (mnist5k MLP) trains:
- slider-to-redraw latency: from the Enter key in the surrogate-sharpness input to the surrogate
  plot's new data arriving in the page, plus the next animation frame (the repaint);
- frame updates per second: how many new frames the loss chart (and the raster) receive a second;
- training share: the app's training samples/s (step counter) ÷ headless samples/s of the same
  config with no browser running, measured before and after the app (their mean):
  ``Trainer.run`` (steps plus the validation pass after each epoch, the same work the app does);
  a bare step loop is reported beside it.
Chromium shares the machine's cores with the server, as on a workshop laptop; the app trains in
a child process with all cores (``serve``'s default), as headless does.

    python benchmarks/bench_app.py [--seconds 20] [--latency-reps 10] [--out benchmarks/RESULTS_APP.md]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time

from _report import publish  # benchmarks/ is on sys.path when run as a script
from _servers import CHROMIUM_ARGS, free_port, start_and_wait

COUNTER = re.compile(r"^step (\d+) · ")

LOSS_CHART = '.qsnn-chart[data-chart="loss"]'
PAYLOADS_JS = "el => el.qsnnChart.stats.payloads"  # loss-chart frames the page has received
RASTER_PAYLOADS_JS = "el => el.qsnnRaster.stats.payloads"  # probe snapshots (raster, membrane, weights)


ARM_LATENCY_JS = """() => {
  const src = Bokeh.documents[0].get_model_by_name("surrogate_current");
  window.__t0 = null; window.__t1 = null;
  if (!window.__armed) {
    document.addEventListener("keydown", e => { if (e.key === "Enter") window.__t0 = performance.now(); }, true);
    src.change.connect(() => requestAnimationFrame(() => { if (window.__t1 === null) window.__t1 = performance.now(); }));
    window.__armed = true;
  }
}"""


def headless_samples_per_s(seconds: float, threads: int) -> dict:
    """The same config trained without the app, on ``threads`` torch threads (in a worker
    process, with this process's CPU affinity): ``run`` is ``Trainer.run`` (steps plus a
    validation pass after every epoch, the work the app does); ``steps`` a bare step loop."""
    import torch

    from qsnn_explorer import Trainer, preset
    torch.set_num_threads(threads)
    trainer = Trainer(preset("mnist5k-mlp"))
    trainer.run(epochs=1)  # warm-up
    start, samples = time.perf_counter(), 0.0
    while time.perf_counter() - start < seconds:
        result = trainer.run(epochs=1)
        samples += result.samples_per_s * result.wall_time
    run = samples / (time.perf_counter() - start)
    start, samples = time.perf_counter(), 0
    while time.perf_counter() - start < seconds:
        frame = trainer.step()
        samples += round(frame.samples_per_s * frame.step_time)  # the batch size (last batch may be short)
    return dict(run=run, steps=samples / (time.perf_counter() - start))


def headless_in_worker(seconds: float, threads: int, cpus: set[int] | None) -> dict:
    out = subprocess.run([sys.executable, __file__, "--headless", str(threads), "--seconds", str(seconds)],
                         capture_output=True, text=True, check=True,
                         preexec_fn=(lambda: os.sched_setaffinity(0, cpus)) if cpus else None)
    return json.loads(out.stdout.strip().splitlines()[-1])


def serve(port: int, cpus: set[int] | None) -> subprocess.Popen:
    """The served explorer (default threads: all cores); its training children inherit ``cpus``."""
    argv = [sys.executable, "-m", "qsnn_explorer.cli", "serve", "--port", str(port), "--address", "127.0.0.1"]
    if cpus:
        argv = ["taskset", "-c", ",".join(map(str, sorted(cpus))), *argv, "--threads", str(len(cpus))]
    return start_and_wait(argv, port, "the explorer")


def step_count(page) -> int:
    return int(COUNTER.match(page.get_by_text(COUNTER).inner_text()).group(1))


def browser_measurements(url: str, seconds: float, reps: int, batch: int) -> dict:
    from playwright.sync_api import sync_playwright
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1400, "height": 1500})
        page.goto(url)
        page.get_by_role("button", name="Play", exact=True).wait_for(timeout=60_000)
        page.wait_for_function("() => window.Bokeh && Bokeh.documents.length > 0", timeout=60_000)
        time.sleep(2)
        page.get_by_role("button", name="Play", exact=True).click()
        time.sleep(3)  # warm-up: first steps, numba kernels
        chart, raster = page.locator(LOSS_CHART), page.locator(".qsnn-raster")
        s0, p0, r0, t0 = (step_count(page), chart.evaluate(PAYLOADS_JS), raster.evaluate(RASTER_PAYLOADS_JS),
                          time.perf_counter())
        time.sleep(seconds)
        s1, p1, r1, t1 = (step_count(page), chart.evaluate(PAYLOADS_JS), raster.evaluate(RASTER_PAYLOADS_JS),
                          time.perf_counter())
        updates, raster_updates = (p1 - p0) / (t1 - t0), (r1 - r0) / (t1 - t0)
        app_sps = (s1 - s0) * batch / (t1 - t0)
        box = page.locator(".bk-Row", has=page.get_by_text("surrogate sharpness:", exact=True)).last.locator("input")
        latencies = []
        for i in range(reps):
            page.evaluate(ARM_LATENCY_JS)
            box.fill(str(20 + 5 * (i % 2)))  # alternate 20 / 25 so every press changes the shape
            box.press("Enter")
            page.wait_for_function("() => window.__t1 !== null && window.__t0 !== null", timeout=10_000)
            latencies.append(page.evaluate("() => window.__t1 - window.__t0"))
            time.sleep(0.3)
        page.get_by_role("button", name="Pause", exact=True).click()
        browser.close()
    return dict(updates_per_s=updates, raster_per_s=raster_updates, app_sps=app_sps, latencies_ms=latencies)


LAYOUTS = {  # name → (server CPUs, browser CPUs); None: all
    "shared": (None, None),  # a workshop laptop: server, training and chromium on the same cores
    "split": ({0}, {1}),     # the page on other hardware (served to a room): server and training on core 0
}


def measure_layout(name: str, seconds: float, reps: int, batch: int) -> dict:
    server_cpus, browser_cpus = LAYOUTS[name]
    threads = len(server_cpus) if server_cpus else os.cpu_count()
    before = headless_in_worker(seconds, threads, server_cpus)
    port = free_port()
    proc = serve(port, server_cpus)
    mine = os.sched_getaffinity(0)
    try:
        if browser_cpus:
            os.sched_setaffinity(0, browser_cpus)  # inherited by Playwright's driver and chromium
        m = browser_measurements(f"http://127.0.0.1:{port}/", seconds, reps, batch)
    finally:
        os.sched_setaffinity(0, mine)
        proc.terminate()
        proc.wait(10)
    # headless again after the app, and the mean of both: this VM's speed drifts by ±10% in minutes
    after = headless_in_worker(seconds, threads, server_cpus)
    headless = {k: (before[k] + after[k]) / 2 for k in before}
    return dict(m, headless=headless, headless_runs=(before["run"], after["run"]), threads=threads)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=20.0, help="training window measured in the browser")
    parser.add_argument("--latency-reps", type=int, default=10)
    parser.add_argument("--out", default=os.path.join(os.path.dirname(__file__), "RESULTS_APP.md"))
    parser.add_argument("--headless", type=int, metavar="THREADS", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.headless:
        print(json.dumps(headless_samples_per_s(args.seconds, args.headless)))
        return 0
    from qsnn_explorer import preset
    batch = preset("mnist5k-mlp").batch_size
    layouts = [n for n in LAYOUTS if n == "shared" or os.cpu_count() >= 2]
    results = {n: measure_layout(n, args.seconds, args.latency_reps, batch) for n in layouts}
    load = os.getloadavg()[0]
    rows = []
    for n, m in results.items():
        lat, h = sorted(m["latencies_ms"]), m["headless"]
        where = "server, training and chromium share all cores" if n == "shared" else \
            "server and training on core 0, chromium on core 1"
        rows += [
            (n, where, "slider-to-redraw latency, surrogate plot, while training (median, min–max)",
             f"{statistics.median(lat):.0f} ms ({lat[0]:.0f}–{lat[-1]:.0f})", "≤ 200 ms"),
            (n, where, "frame updates per second (frames the loss chart received in the page)", f"{m['updates_per_s']:.1f}", "≥ 5"),
            (n, where, "probe updates per second (frames the raster received; membrane and weights update with it)",
             f"{m['raster_per_s']:.1f}", "≥ 5"),
            (n, where, f"app training samples/s ÷ headless `Trainer.run` on the server's cores ({m['threads']} "
                       f"thread{'s' * (m['threads'] > 1)}; steps + per-epoch validation, the app's work; mean of "
                       f"runs before and after the app: {m['headless_runs'][0]:.0f}, {m['headless_runs'][1]:.0f})",
             f"{m['app_sps']:.0f} / {h['run']:.0f} = {m['app_sps'] / h['run']:.0%}", "≥ 70%"),
            (n, where, "for reference: app ÷ a bare headless `Trainer.step` loop (no validation)",
             f"{m['app_sps']:.0f} / {h['steps']:.0f} = {m['app_sps'] / h['steps']:.0%}", ""),
        ]
    text = "\n".join([
        "# Explorer benchmark (browser)", "",
        f"- date: {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}; load average at end: {load:.2f}",
        f"- machine: {os.cpu_count()} cores; headless Debian chromium; preset mnist5k-mlp, one session; "
        "the app trains in a child process of the server",
        f"- command: `python benchmarks/bench_app.py --seconds {args.seconds:g} --latency-reps {args.latency_reps}`",
        "", "| layout | where | metric | measured | floor |", "|---|---|---|---|---|",
        *[f"| {a} | {b} | {c} | {d} | {e} |" for a, b, c, d, e in rows], "",
    ])
    publish(text, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())

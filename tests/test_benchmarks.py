"""Every benchmark script still starts: its imports of the engine and of its sibling scripts
resolve (bench_accuracy.py once imported a constant bench_engine.py had dropped)."""
import pathlib
import subprocess
import sys

import pytest

SCRIPTS = sorted((pathlib.Path(__file__).parents[1] / "benchmarks").glob("bench_*.py"))


def test_the_benchmarks_are_found():
    assert len(SCRIPTS) >= 6


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_a_benchmark_script_starts(script):
    run = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-2000:]
    assert "usage:" in run.stdout

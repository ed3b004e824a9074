import time

import pytest


def poll(condition, timeout=20.0):
    """True as soon as ``condition()`` holds; False after ``timeout`` seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if condition():
            return True
        time.sleep(0.02)
    return False


@pytest.fixture
def wait_for():
    return poll


@pytest.fixture
def settle():
    """``settle(explorer, condition, timeout=20)``: drain the runner like the page's periodic
    callback until ``condition()`` holds; False after ``timeout`` seconds."""
    def run(ex, condition, timeout=20.0):
        return poll(lambda: ex.drain() or condition(), timeout)
    return run

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

import time

import pytest

from qsnn_explorer import TrainConfig
from qsnn_explorer.app import Explorer

# a small, fast run: the 8x8 digits, one hidden layer of 32, T 6
APP_CFG = TrainConfig(dataset="digits8x8", hidden=(32,), num_steps=6, batch_size=64, lr=5e-3,
                      readout="membrane", loss="sum_ce", epochs=2, device="cpu")


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


@pytest.fixture
def app_cfg() -> TrainConfig:
    return APP_CFG


@pytest.fixture
def explorer(wait_for):
    """An Explorer on ``APP_CFG`` training in a thread (its trainer inspectable), built; stopped afterwards."""
    ex = Explorer(APP_CFG, runner="thread")
    assert wait_for(lambda: ex.runner.trainer is not None)
    yield ex
    assert ex.stop()

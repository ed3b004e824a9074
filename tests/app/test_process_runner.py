"""ProcessRunner: the Runner's commands and buffers, with training in a child process."""
import os
import signal
import subprocess
import sys
import time

import pytest

from qsnn_explorer import TrainConfig, Trainer
from qsnn_explorer.app.process_runner import CHILD_NICENESS, ProcessRunner
from qsnn_explorer.app.runner import RunInfo

CFG = TrainConfig(dataset="digits8x8", hidden=(32,), num_steps=6, batch_size=64, lr=5e-3,
                  readout="membrane", loss="sum_ce", epochs=2, device="cpu")


def last_step(r) -> int:
    steps = [f.step for f in list(r.frames) if getattr(f, "kind", None) == "step"]
    return steps[-1] if steps else 0


@pytest.fixture
def runner(wait_for):
    r = ProcessRunner(CFG, threads=1).start()
    assert wait_for(lambda: r.snapshot is not None, timeout=60)  # the first child starts the fork server
    yield r
    r.stop()


def test_commands_reach_the_child_and_its_output_comes_back(runner, wait_for):
    marker = runner.frames[0]
    assert marker[:2] == ("reset", 1) and isinstance(marker[2], RunInfo) and marker[2].lif_layers == 2
    runner.step(3)
    assert wait_for(lambda: last_step(runner) == 3)
    time.sleep(0.3)
    assert last_step(runner) == 3 and runner.snapshot.step == 3
    runner.play()
    assert wait_for(lambda: last_step(runner) > 20 and runner.running)
    runner.pause()
    assert wait_for(lambda: not runner.running)
    frozen = last_step(runner)
    time.sleep(0.3)
    assert last_step(runner) == frozen


def test_hot_change_comes_back_in_cfg_and_a_refused_one_as_a_message(runner, wait_for):
    runner.set_hot(weight_bits=4)
    runner.step()
    assert wait_for(lambda: runner.cfg.weight_bits == 4)
    runner.set_hot(num_steps=50)
    assert wait_for(lambda: any("cannot change while training" in m for m in runner.messages))


def test_weights_are_a_loadable_checkpoint_of_the_current_step(runner, wait_for, tmp_path):
    runner.step(2)
    assert wait_for(lambda: last_step(runner) == 2)
    path = tmp_path / "w.pt"
    path.write_bytes(runner.weights(timeout=10))
    assert Trainer.load(path).step_count == 2


def test_every_thread_of_the_child_trains_at_a_lower_priority_than_the_ui(runner, wait_for):
    runner.play()
    assert wait_for(lambda: last_step(runner) > 3)
    pid = runner._process.pid
    threads = os.listdir(f"/proc/{pid}/task")
    nice = {int(open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()[16]) for t in threads}
    assert nice == {min(19, os.nice(0) + CHILD_NICENESS)}, nice


def test_the_child_trains_in_its_main_thread(runner, wait_for):
    """Where glibc's main heap keeps a step's freed tensors mapped (process_runner.py)."""
    runner.play()
    assert wait_for(lambda: last_step(runner) > 200)
    pid = runner._process.pid
    cpu = {t: sum(map(int, open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()[11:13]))
           for t in os.listdir(f"/proc/{pid}/task")}
    assert max(cpu, key=cpu.get) == str(pid), cpu


def test_a_dead_child_is_reported_and_reset_starts_a_new_one(runner, wait_for):
    os.kill(runner._process.pid, signal.SIGKILL)
    assert wait_for(lambda: any("ended unexpectedly" in m for m in runner.messages))
    assert not runner.alive
    runner.reset(CFG.replace(num_steps=4))
    assert wait_for(lambda: runner.alive and runner.cfg.num_steps == 4)
    runner.step()
    assert wait_for(lambda: last_step(runner) == 1)


def test_stop_ends_the_child_within_a_second_even_while_training(runner, wait_for):
    runner.play()
    assert wait_for(lambda: last_step(runner) > 5)
    child = runner._process
    start = time.monotonic()
    assert runner.stop(timeout=1.0)
    assert time.monotonic() - start < 1.0 and not child.is_alive() and not runner.alive
    assert not any("ended unexpectedly" in m for m in runner.messages)


PARENT = """
import os, sys, time
from qsnn_explorer import TrainConfig
from qsnn_explorer.app.process_runner import CHILD_NICENESS, ProcessRunner
r = ProcessRunner(TrainConfig(dataset="digits8x8", hidden=(8,), num_steps=4, device="cpu"), threads=1).start()
while r.snapshot is None:
    time.sleep(0.05)
r.play()
print(r._process.pid, flush=True)
time.sleep(0.5)
os._exit(0)  # die without stopping anything
"""


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks the child's pid in /proc")
def test_the_child_exits_when_its_parent_dies(wait_for):
    out = subprocess.run([sys.executable, "-c", PARENT], capture_output=True, text=True, timeout=120, check=True)
    child = int(out.stdout.split()[-1])

    def gone():
        try:
            with open(f"/proc/{child}/stat") as fh:
                return fh.read().rsplit(")", 1)[1].split()[0] == "Z"
        except OSError:
            return True

    assert wait_for(gone, timeout=10)

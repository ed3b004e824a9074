"""Training threads flush subnormal floats to zero (x86 computes with them ~100× slower)."""
import threading

import pytest
import torch

from qsnn_explorer import TrainConfig, Trainer

SUBNORMAL = 1e-39  # below float32's smallest normal, 1.18e-38


def subnormal_survives() -> bool:
    return (torch.tensor([SUBNORMAL]) * 1.0).item() != 0.0


def in_new_thread(fn):
    """fn() in a fresh thread; its exception (a skip included) is raised here."""
    out = []

    def run():
        try:
            out.append((True, fn()))
        except BaseException as exc:  # noqa: BLE001 - handed to the test's thread
            out.append((False, exc))

    thread = threading.Thread(target=run)
    thread.start()
    thread.join()
    ok, value = out[0]
    if not ok:
        raise value
    return value


def test_a_thread_that_trains_flushes_subnormals_and_results_stay_finite():
    cfg = TrainConfig(dataset="digits8x8", hidden=(16,), num_steps=4, batch_size=32, device="cpu")
    trainer = in_new_thread(lambda: Trainer(cfg))

    def step_then_check():
        if not torch.set_flush_denormal(False):  # IEEE default in this thread (threads inherit the mode)
            pytest.skip("the CPU has no FTZ/DAZ mode")
        before = subnormal_survives()
        frame = trainer.step()
        return before, subnormal_survives(), frame.loss

    before, after, loss = in_new_thread(step_then_check)
    assert before and not after
    assert torch.isfinite(torch.tensor(loss))

    def evaluate_then_check():
        torch.set_flush_denormal(False)
        trainer.evaluate("val")
        return subnormal_survives()

    assert in_new_thread(evaluate_then_check) is False

"""ProcessRunner: the Runner in a child process, so training never waits for the UI's GIL.

In one process, the UI's event loop (drains, Bokeh serialization, the websocket) and the
training loop take turns on one interpreter lock, and training re-takes it after every torch
op. In a child process they share only the cores. Same commands and buffers as ``Runner``:

- commands go down a pipe as the Runner's own ``(kind, arg)`` tuples;
- a pump in the child sends back what its Runner published (frames, messages, the latest
  snapshot, the config) every ``PUMP_S`` seconds, with plain pickle (tensors by value, never
  shared-memory handles), and a reader thread here puts it in ``frames``/``messages``/``snapshot``.

Children are forked from multiprocessing's fork server, which imports torch and the engine
once (``PRELOAD``), so a new session trains within ~0.5 s; the server itself forks before any
thread pool runs (forking a process that runs threads is unsafe). A script that starts one must
guard its entry point with ``if __name__ == "__main__":``. A child exits when told, or when
this process's end of the pipe closes (this process died). If it dies, the reason is shown as a
message and ``reset`` starts a new one. It runs at a lower priority (``CHILD_NICENESS``) than the
UI.
"""
from __future__ import annotations

import multiprocessing as mp
import os
import pickle
import queue
import threading
import time
from collections import deque

import torch

from ..config import TrainConfig
from .runner import Runner, RunnerCommands

PUMP_S = 0.05  # child → UI batching period: well under the UI's 180 ms drain
# The child trains at this niceness (its threads inherit it): where it shares cores with the
# server's event loop (and a browser on the same machine), they get a core the moment they need
# one, so a slider answers fast, and training takes the rest.
CHILD_NICENESS = 10
# Imported once by the fork server, so a session's child starts in ~0.5 s, not ~3 s: torch,
# torch._dynamo (torch.optim imports it on first use, 1.4 s), scikit-learn's datasets (the
# digits8x8 loader, 1.3 s) and the engine.
PRELOAD = ["torch", "torch._dynamo", "sklearn.datasets", "qsnn_explorer.trainer", "qsnn_explorer.app.process_runner"]


class ProcessRunner(RunnerCommands):
    """``Runner``'s interface, training in a child process with ``threads`` torch threads
    (default: this process's current count)."""

    def __init__(self, cfg: TrainConfig, max_frames: int = 5000, threads: int | None = None):
        self.frames: deque = deque(maxlen=max_frames)
        self.messages: deque = deque(maxlen=50)
        self.snapshot = None
        self.cfg = cfg
        self.running = False
        self.threads = threads or torch.get_num_threads()
        self._replies: queue.Queue = queue.Queue()
        self._send_lock = threading.Lock()
        self._process = None
        self._stopping = False

    # ---- commands (any thread) ----
    def start(self) -> "ProcessRunner":
        self._launch(self.cfg)
        return self

    def submit(self, kind: str, arg=None):
        with self._send_lock:
            try:
                self._commands.send_bytes(pickle.dumps((kind, arg)))
            except (OSError, AttributeError):  # not started, or the child is gone (reported by the reader)
                pass

    def reset(self, cfg: TrainConfig):
        if self.alive:
            self.submit("reset", cfg)
        else:  # the child died (its reason is in messages): a fresh one
            self._launch(cfg)

    def weights(self, timeout: float = 30.0) -> bytes:
        """The run's checkpoint taken between two steps in the child; b"" if none came in time."""
        while not self._replies.empty():  # an answer that came after an earlier timeout
            self._replies.get_nowait()
        self.submit("save", None)
        try:
            return self._replies.get(timeout=timeout)
        except queue.Empty:
            return b""

    def stop(self, timeout: float = 1.0) -> bool:
        """End the child within ``timeout`` seconds (asked first, then terminated); True when it has."""
        self._stopping = True
        if self._process is None:
            return True
        deadline = time.monotonic() + timeout
        self.submit("stop", None)
        self._process.join(max(0.0, 0.8 * timeout))
        if self._process.is_alive():
            self._process.terminate()  # SIGTERM: ends it even mid-step
            self._process.join(max(0.0, deadline - time.monotonic()))
        return not self._process.is_alive()

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.is_alive()

    # ---- plumbing ----
    def _launch(self, cfg: TrainConfig):
        ctx = mp.get_context("forkserver")
        ctx.set_forkserver_preload(PRELOAD)
        child_commands, self._commands = ctx.Pipe(duplex=False)
        output, child_output = ctx.Pipe(duplex=False)
        self.cfg, self.running, self._stopping = cfg, False, False
        self._process = ctx.Process(target=_child_main, args=(cfg, self.threads, child_commands, child_output),
                                    name="qsnn-runner", daemon=True)
        self._process.start()
        child_commands.close()  # only the child holds these ends now, so each side sees the other's EOF
        child_output.close()
        threading.Thread(target=self._read, args=(output, self._process), name="qsnn-runner-reader",
                         daemon=True).start()

    def _read(self, output, process):
        while True:
            try:
                batch = pickle.loads(output.recv_bytes())
            except (EOFError, OSError):
                break
            self.frames.extend(batch["frames"])
            self.messages.extend(batch["messages"])
            self.cfg, self.running = batch["cfg"], batch["running"]
            if batch["snapshot"] is not None:
                self.snapshot = batch["snapshot"]
            if batch["checkpoint"] is not None:
                self._replies.put(batch["checkpoint"])
        output.close()
        process.join(2.0)
        if not self._stopping and process is self._process:
            self.running = False
            self.messages.append(f"The training process ended unexpectedly (exit code {process.exitcode}); "
                                 f"Reset starts a new one.")


def _child_main(cfg: TrainConfig, threads: int, commands, output):
    """The child: its Runner trains in this, the main, thread; one thread forwards commands into
    it and another pumps its output up.

    The main thread allocates from glibc's main heap, where ``keep_freed_memory`` keeps a step's
    freed tensors mapped for the next one. A secondary thread gets a malloc arena whose heaps
    (64 MB each at most) are unmapped as they empty: trained there, the mnist5k MLP page-faulted
    ~600 times a step and stepped ~15% slower.
    """
    os.nice(CHILD_NICENESS)  # before any thread starts, so all of them inherit it
    torch.set_num_threads(threads)
    runner = Runner(cfg)
    checkpoints: queue.Queue = queue.Queue()
    trained = threading.Event()

    def listen():
        while True:
            try:
                kind, arg = pickle.loads(commands.recv_bytes())
            except (EOFError, OSError):  # the UI process is gone
                kind = "stop"
            if kind == "stop":
                runner.stop()
                return
            runner.submit(kind, checkpoints.put if kind == "save" else arg)

    runner.submit("reset", cfg)  # the trainer is built before any command from the UI is handled
    threading.Thread(target=listen, name="qsnn-commands", daemon=True).start()
    pump = threading.Thread(target=_pump, args=(runner, checkpoints, output, trained), name="qsnn-pump",
                            daemon=True)
    pump.start()
    try:
        runner.run()  # until told to stop
    finally:
        trained.set()
        pump.join()


def _pump(runner: Runner, checkpoints: queue.Queue, output, trained: threading.Event):
    """Send what the runner published, every ``PUMP_S`` s, until it has trained and all is sent."""
    sent_snapshot, sent_state = None, None
    while True:
        ended = trained.is_set()
        frames = [runner.frames.popleft() for _ in range(len(runner.frames))]
        messages = [runner.messages.popleft() for _ in range(len(runner.messages))]
        snapshot = runner.snapshot if runner.snapshot is not sent_snapshot else None
        checkpoint = checkpoints.get_nowait() if not checkpoints.empty() else None
        state = (runner.cfg, runner.running)
        if frames or messages or snapshot is not None or checkpoint is not None or state != sent_state:
            batch = dict(frames=frames, messages=messages, snapshot=snapshot, checkpoint=checkpoint,
                         cfg=state[0], running=state[1])
            try:
                output.send_bytes(pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL))
            except OSError:  # the UI process is gone
                return
            sent_snapshot, sent_state = snapshot or sent_snapshot, state
        if ended:  # everything is sent (a forked child skips the interpreter's slow teardown)
            return
        time.sleep(PUMP_S)

"""Start a server process for a browser benchmark and wait until its port accepts connections."""
from __future__ import annotations

import socket
import subprocess
import time


def start_and_wait(argv: list[str], port: int, what: str, env: dict | None = None,
                   timeout: float = 60.0) -> subprocess.Popen:
    """Popen ``argv`` (output discarded); return it once 127.0.0.1:``port`` accepts, else kill it and raise."""
    proc = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return proc
        except OSError:
            time.sleep(0.2)
    proc.kill()
    raise RuntimeError(f"{what} did not start within {timeout:.0f} s")

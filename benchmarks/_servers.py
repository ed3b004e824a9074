"""What the browser benchmarks share: chromium's flags, a free port, a started server."""
from __future__ import annotations

import socket
import subprocess
import time

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run", "--disable-quic", "--disable-dev-shm-usage"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


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

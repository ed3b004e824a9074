"""Browser-test infrastructure: Debian's chromium driven by pytest-playwright, plus a
loopback-only server fixture.

Fixtures
--------
browser_type_launch_args (session)
    Overrides pytest-playwright's: launches ``/usr/bin/chromium`` (never a downloaded
    browser) headless with sandbox/GPU/background-network features off.
serve_command (function, factory)
    ``serve_command(argv, *, port=None, timeout=60.0) -> base_url``. ``argv`` is a list
    of strings; the placeholder ``{port}`` in any element is replaced by a free loopback
    port. Starts the process (stdout+stderr to a temp log), waits until the port accepts
    TCP connections *and* ``GET base_url`` answers 200, returns ``http://127.0.0.1:<port>/``
    as a ``ServerURL``: a ``str`` that also carries ``.pid``, ``.proc`` and ``.log_tail()``
    of the server process (e.g. to look at its threads in ``/proc/<pid>/task``).
    Every process started is terminated at teardown (SIGTERM, then SIGKILL after 5 s).
serve_app (function, factory)
    ``serve_app(*extra_args) -> base_url``: ``python -m qsnn_explorer.cli serve --port P
    --address 127.0.0.1 --allow-websocket-origin 127.0.0.1:P *extra_args`` via
    ``serve_command``.
shared_app (module)
    One ``serve_app()`` server (a ``ServerURL``) for a whole test module, to save the
    ~5 s start-up per test. Every page load still gets its own session and engine; use a
    function-scoped ``serve_app()`` where a test needs the process to itself.
console_errors (function)
    Depends on ``page``; returns a live list that collects the text of every console
    message of type ``"error"`` and every uncaught page exception (``"pageerror: ..."``).
    ``collect_console_errors(page)`` does the same for a page you created yourself.
offsite_requests (function, autouse)
    In tests that use a browser context, aborts every non-loopback HTTP(S) request and
    lists the URLs; request it by name to assert on it.

Every test under ``tests/browser`` is marked ``browser`` automatically. Without
``/usr/bin/chromium`` they are skipped, except when the ``CI`` environment variable is
set: then they fail, so that a broken CI install cannot pass silently.
"""
from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

CHROMIUM = "/usr/bin/chromium"
HOST = "127.0.0.1"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
    # Containers often have a 64 MB /dev/shm; Debian's launcher script means to add this
    # flag itself when /dev/shm is small, but its test breaks when findmnt prints 2 lines.
    "--disable-dev-shm-usage",
]
SERVER_TIMEOUT_S = 60.0
_HERE = Path(__file__).resolve().parent
_REPO = _HERE.parents[1]


def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


def _chromium_missing_reason() -> str | None:
    if os.path.isfile(CHROMIUM) and os.access(CHROMIUM, os.X_OK):
        return None
    return (f"{CHROMIUM} not found: install Debian's chromium "
            "(apt-get install -y --no-install-recommends chromium)")


# --------------------------------------------------------------------------- marking
def pytest_collection_modifyitems(config, items):
    for item in items:
        if _HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session", autouse=True)
def _require_chromium():
    reason = _chromium_missing_reason()
    if reason is None:
        return
    if _ci():
        pytest.fail(f"CI is set but {reason}; browser tests must not be skipped in CI.",
                    pytrace=False)
    pytest.skip(reason)


# --------------------------------------------------------------------------- browser
@pytest.fixture(scope="session")
def browser_type_launch_args(browser_type_launch_args, _require_chromium):
    """pytest-playwright's defaults (--headed, --slowmo, ...) plus Debian's chromium."""
    args = list(browser_type_launch_args.get("args", []))
    args += [a for a in CHROMIUM_ARGS if a not in args]
    return {**browser_type_launch_args, "executable_path": CHROMIUM, "args": args}


@pytest.fixture(scope="session")
def base_url(pytestconfig):
    """Same as pytest-playwright 0.10's fallback ``base_url``, redefined here because the
    plugin's version is a fixture on a plugin *instance*, which pytest 9.2 warns about
    (PytestRemovedIn10Warning) in every browser test. Our servers return their own URL."""
    return pytestconfig.getoption("--base-url", None) or None


_LOOPBACK_HOSTS = {"127.0.0.1", "localhost", "::1"}


def _offsite(url: str) -> bool:
    parts = urllib.parse.urlsplit(url)
    return parts.scheme in ("http", "https") and parts.hostname not in _LOOPBACK_HOSTS


@pytest.fixture(autouse=True)
def offsite_requests(request):
    """Loopback only: in every test that uses a browser context (``page`` included), HTTP(S)
    requests to anything but 127.0.0.1/localhost are aborted and their URLs collected here,
    so a CDN fetch can't make a test pass in CI (open network) yet fail offline. An aborted
    request also shows up in ``console_errors`` as a failed resource load."""
    blocked: list[str] = []
    if "context" in request.fixturenames:
        def _abort(route):
            blocked.append(route.request.url)
            route.abort("blockedbyclient")

        request.getfixturevalue("context").route(_offsite, _abort)
    yield blocked
    if blocked:
        print(f"\nblocked off-site requests in {request.node.name}: {sorted(set(blocked))[:10]}")


def collect_console_errors(page) -> list[str]:
    """Attach listeners to ``page``; the returned list fills with error messages."""
    errors: list[str] = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(f"pageerror: {exc}"))
    return errors


@pytest.fixture
def console_errors(page) -> list[str]:
    return collect_console_errors(page)


# --------------------------------------------------------------------------- servers
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _port_open(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


# A proxy-free opener: loopback requests must never go through *_proxy variables.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _http_status(url: str) -> int | None:
    try:
        with _OPENER.open(url, timeout=5) as resp:
            return resp.status
    except urllib.error.HTTPError as e:
        return e.code
    except (OSError, urllib.error.URLError):
        return None


def _tail(path: Path, n: int = 60) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError:
        return "<no log>"
    return "\n".join(lines[-n:]) or "<empty log>"


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=5)


class ServerURL(str):
    """A server's base URL (``str``), carrying its process: ``.proc``, ``.pid``, ``.log_tail()``."""

    proc: subprocess.Popen
    log_path: Path

    def __new__(cls, url: str, proc: subprocess.Popen, log_path: Path):
        self = super().__new__(cls, url)
        self.proc, self.log_path = proc, log_path
        return self

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, n: int = 60) -> str:
        return _tail(self.log_path, n)


class _Servers:
    """Starts server processes and stops them all at the end (one instance per fixture)."""

    def __init__(self):
        self._procs: list[tuple[subprocess.Popen, object]] = []

    def start(self, argv, *, port: int | None = None, timeout: float = SERVER_TIMEOUT_S) -> ServerURL:
        port = _free_port() if port is None else port
        cmd = [str(a).replace("{port}", str(port)) for a in argv]
        log = tempfile.NamedTemporaryFile(prefix="qsnn-serve-", suffix=".log", delete=False)
        log_path = Path(log.name)
        env = {**os.environ, "NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost",
               "PYTHONUNBUFFERED": "1"}
        proc = subprocess.Popen(cmd, cwd=_REPO, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, env=env)
        self._procs.append((proc, log))
        base_url = f"http://{HOST}:{port}/"
        deadline = time.monotonic() + timeout
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with code {proc.returncode} before serving "
                            f"{base_url}\ncommand: {' '.join(cmd)}\n--- log tail ---\n"
                            f"{_tail(log_path)}", pytrace=False)
            if _port_open(port) and _http_status(base_url) == 200:
                return ServerURL(base_url, proc, log_path)
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready at {base_url} after {timeout:.0f} s\n"
                            f"command: {' '.join(cmd)}\n--- log tail ---\n{_tail(log_path)}",
                            pytrace=False)
            time.sleep(0.25)

    def stop_all(self) -> None:
        for proc, log in self._procs:
            _stop(proc)
            log.close()
            Path(log.name).unlink(missing_ok=True)
        self._procs.clear()


def _app_argv(*extra_args: str) -> list[str]:
    return [sys.executable, "-m", "qsnn_explorer.cli", "serve",
            "--port", "{port}", "--address", HOST,
            "--allow-websocket-origin", f"{HOST}:{{port}}", *extra_args]


@pytest.fixture
def serve_command():
    """Factory: ``serve_command(argv, *, port=None, timeout=60.0) -> ServerURL``."""
    servers = _Servers()
    yield servers.start
    servers.stop_all()


@pytest.fixture
def serve_app(serve_command):
    """Factory: ``serve_app(*extra_args) -> ServerURL`` for ``qsnn_explorer.cli serve``."""
    def start(*extra_args: str, timeout: float = SERVER_TIMEOUT_S) -> ServerURL:
        return serve_command(_app_argv(*extra_args), timeout=timeout)

    return start


@pytest.fixture(scope="module")
def shared_app(_require_chromium) -> Iterator[ServerURL]:
    """One explorer server for the whole module (each page load is still its own session)."""
    servers = _Servers()
    try:
        yield servers.start(_app_argv())
    finally:
        servers.stop_all()

"""Canary for the browser stack (chromium + playwright + panel serve + websocket).

Serves a throwaway stub app, not the real explorer, so a failure here means the
infrastructure is broken rather than the app.
"""
import sys

import pytest
from playwright.sync_api import expect

pytestmark = pytest.mark.browser

STUB = "tests/browser/_stub_app.py"


def test_stub_app_round_trip(serve_command, page, console_errors):
    base_url = serve_command([sys.executable, "-m", "panel", "serve", STUB,
                              "--port", "{port}", "--address", "127.0.0.1",
                              "--allow-websocket-origin", "127.0.0.1:{port}"])
    page.goto(base_url + "_stub_app")
    button = page.get_by_role("button", name="Click me")
    expect(button).to_be_visible(timeout=30_000)
    expect(page.get_by_text("clicks: 0")).to_be_visible()
    button.click()
    expect(page.get_by_text("clicks: 1")).to_be_visible(timeout=10_000)
    button.click()
    expect(page.get_by_text("clicks: 2")).to_be_visible(timeout=10_000)
    assert console_errors == []

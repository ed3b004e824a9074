"""Throwaway Panel app used only by ``test_infra.py`` to check the browser-test stack.

A button whose Python callback increments a counter shown as ``clicks: N``: a click only
changes the text after a full browser -> websocket -> server -> browser round trip.
"""
import panel as pn

clicks = pn.pane.Markdown("clicks: 0", name="counter")
button = pn.widgets.Button(name="Click me", button_type="primary")


def _on_click(event):
    n = int(clicks.object.split(":")[1]) + 1
    clicks.object = f"clicks: {n}"


button.on_click(_on_click)

pn.Column(button, clicks).servable(title="qsnn browser-test stub")

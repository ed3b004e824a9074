"""A line of text that the app changes while it trains: the step counter, a status message.

Panel's Markdown, HTML and Alert panes send their whole stylesheet list again with every change
of ``object``, resolved in the resource mode of that moment. Inline in a notebook those are
links to cdn.holoviz.org (``markdown.css``, ``theme/default.css``, ...), which an offline
workshop cannot load. A change of ``LiveText.text`` sends the text alone, and the page puts it
in with ``textContent``: no Markdown parsing, no HTML, no stylesheet traffic.
"""
from __future__ import annotations

import param
from panel.custom import JSComponent

_BOXES = {  # background, text and border colour of a message box
    "info": ("#cff4fc", "#055160", "#9eeaf9"),
    "warning": ("#fff3cd", "#664d03", "#ffe69c"),
    "danger": ("#f8d7da", "#842029", "#f1aeb5"),
}


class LiveText(JSComponent):
    """Plain text (``kind="plain"``) or a coloured message box (info, warning, danger)."""

    text = param.String(default="", doc="The text shown, as it is (no Markdown)")
    kind = param.Selector(default="plain", objects=["plain", *_BOXES], doc="Plain text or a message box")
    link = param.String(default="", doc="When set, the text links to this URL (opened in a new tab)")

    _esm = """
export function render({ model }) {
  const div = document.createElement("div")
  const show = () => {
    div.className = `qsnn-text ${model.kind}`
    if (!model.link) {
      div.textContent = model.text
      return
    }
    const a = document.createElement("a")
    a.href = model.link
    a.target = "_blank"
    a.rel = "noopener"
    a.textContent = model.text
    div.replaceChildren(a)
  }
  show()
  model.on(["text", "kind", "link"], show)
  return div
}
"""
    _stylesheets = [
        ".qsnn-text { font-size: 14px; line-height: 1.4; overflow-wrap: anywhere; }",
        ".qsnn-text:not(.plain) { padding: 0.6em 1em; border: 1px solid; border-radius: 6px; }",
        *(f".qsnn-text.{kind} {{ background: {bg}; color: {fg}; border-color: {border}; }}"
          for kind, (bg, fg, border) in _BOXES.items()),
    ]  # not ".live-text": Panel gives the component's own element that class

    def __init__(self, **params):
        params.setdefault("margin", (5, 10))  # as Panel's text panes
        super().__init__(**params)

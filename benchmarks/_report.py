"""Every benchmark ends the same way: its Markdown report on stdout and in its results file."""
from __future__ import annotations


def publish(text: str, path: str) -> None:
    print(text)
    with open(path, "w", encoding="utf-8") as fh:
        fh.write(text)

"""The live explorer (Panel). Imported only on demand: the engine never imports a UI library.

The names below load Panel on first use, so a training child process (``process_runner``),
which imports only ``runner`` and ``process_runner``, never pays for Panel and Bokeh.
"""
__all__ = ["Explorer", "create_app", "explore"]


def __getattr__(name: str):
    if name in __all__:
        from . import explorer
        return getattr(explorer, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

"""The live explorer (Panel). Imported only on demand: the engine never imports a UI library."""
from .explorer import Explorer, create_app, explore

__all__ = ["Explorer", "create_app", "explore"]

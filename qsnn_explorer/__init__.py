"""qsnn_explorer: a compact, fast spiking-neural-network training engine and live explorer.

    from qsnn_explorer import TrainConfig, Trainer
    trainer = Trainer(TrainConfig(epochs=3))
    result = trainer.run()
    print(trainer.evaluate("test").accuracy)

    # a grid × seeds on a local Dask cluster (see qsnn_explorer/sweep.py)
    df = qsnn_explorer.sweep(TrainConfig(epochs=1), grid={"lr": [1e-3, 3e-3]}, seeds=[0, 1])
"""
from .config import TrainConfig
from .presets import PRESETS, preset
from .sweep import sweep
from .trainer import EvalResult, Frame, Probe, RunResult, Trainer

__all__ = ["TrainConfig", "Trainer", "Frame", "EvalResult", "RunResult", "Probe", "PRESETS", "preset", "sweep",
           "explore"]


def explore(config: TrainConfig | None = None, raster: str = "canvas", runner: str = "process"):
    """The live explorer app (Panel), to display inline in JupyterLab; see ``qsnn_explorer.app``.
    ``raster="bokeh"``: the Bokeh spike raster instead of the canvas one (static HTML export);
    ``runner="thread"``: train in the kernel's process instead of a child process."""
    from .app import explore as _explore
    return _explore(config, raster=raster, runner=runner)
__version__ = "0.1.0"

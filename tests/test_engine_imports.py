"""The engine imports no UI library: it must run headless in tests, notebooks, the CLI and sweeps."""
import subprocess
import sys

ENGINE_MODULES = ["config", "surrogates", "quant", "neurons", "losses", "schedules", "encoders", "models",
                  "data", "trainer", "presets", "export", "cli", "sweep"]


def test_engine_modules_import_no_ui_library():
    code = ("import sys\n"
            + "".join(f"import qsnn_explorer.{m}\n" for m in ENGINE_MODULES)
            + "bad = sorted(m for m in sys.modules if m.split('.')[0] in ('panel', 'bokeh', 'param', 'ipywidgets'))\n"
            + "print(','.join(bad))\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == ""

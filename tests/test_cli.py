"""The command line: presets listing, a short headless run with --json, clear errors."""
import json

from qsnn_explorer.cli import main
from qsnn_explorer.presets import PRESETS


def test_presets_lists_every_preset(capsys):
    assert main(["presets"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert len(out) == len(PRESETS) and all(line.split()[0] in PRESETS for line in out)


def test_train_writes_json(tmp_path, capsys):
    path = tmp_path / "m.json"
    code = main(["train", "--preset", "digits8x8-mlp", "--epochs", "1", "--set", "hidden=[16]",
                 "--set", "num_steps=4", "--json", str(path), "--quiet", "--save", str(tmp_path / "w.pt")])
    assert code == 0
    metrics = json.loads(path.read_text())
    assert 0 <= metrics["test_accuracy"] <= 1 and metrics["config"]["hidden"] == [16]
    assert len(metrics["firing_rate_per_layer"]) == 2
    for key in ("test_loss", "hidden_spikes_per_sample", "wall_time_s", "train_samples_per_s"):
        assert metrics[key] > 0
    assert (tmp_path / "w.pt").exists()
    assert "test accuracy" in capsys.readouterr().out


def test_bad_value_is_a_clear_error(capsys):
    assert main(["train", "--preset", "digits8x8-mlp", "--set", "weight_bits=9"]) == 2
    assert "weight_bits=9 is not allowed" in capsys.readouterr().err
    assert main(["train", "--set", "colour=red"]) == 2
    assert "unknown config field(s): colour" in capsys.readouterr().err


def test_serve_refuses_a_negative_thread_count(capsys):
    assert main(["serve", "--threads", "-2"]) == 2
    assert "--threads must be ≥ 1" in capsys.readouterr().err

"""The explorer without a browser: hot vs cold changes, overlays, import/export, divergence."""
import json

from qsnn_explorer import TrainConfig, preset
from qsnn_explorer.app import Explorer



def test_hot_change_keeps_training_and_redraws_the_surrogate(explorer, settle):
    explorer.runner.play()
    assert settle(explorer, lambda: explorer.runner.trainer.step_count > 5)
    trainer, redraws = explorer.runner.trainer, explorer.surrogate.redraws
    explorer.state.surrogate_sharpness = 7.0
    assert explorer.surrogate.redraws == redraws + 1  # at once, before the next step
    assert settle(explorer, lambda: trainer.cfg.surrogate_sharpness == 7.0)
    assert explorer.runner.trainer is trainer  # same run
    assert len(explorer.surrogate.ghost.data["v"]) == 501  # the previous shape stays, ghosted


def test_bit_width_change_shows_the_levels(explorer, settle):
    explorer.runner.step()
    assert settle(explorer, lambda: explorer.histogram.chart.title.endswith("(float)"))
    explorer.state.weight_bits = 4
    explorer.runner.step()
    assert settle(explorer, lambda: explorer.histogram.n_levels == 15)
    assert "4-bit: 15 levels" in explorer.histogram.chart.title


def test_cold_change_resets_and_keeps_the_old_curves_as_a_labelled_ghost(explorer, settle):
    explorer.runner.step(10)
    assert settle(explorer, lambda: len(explorer.curves.train.data["step"]) == 10)
    old = explorer.runner.trainer
    explorer.state.num_steps = 8
    assert settle(explorer, lambda: explorer.runner.trainer is not old)
    assert explorer.runner.trainer.cfg.num_steps == 8
    assert len(explorer.curves.ghosts[0].data["step"]) == 10 and len(explorer.curves.train.data["step"]) == 0
    assert explorer.curves.labels[0] == "before: num_steps 6→8"
    ghost = explorer.curves.accuracy.series[0]  # drawn first, under the new run, faded and labelled
    assert (ghost.label, ghost.color, len(ghost.x)) == ("before: num_steps 6→8", "gray", 10)
    assert "Run reset (num_steps 6→8)" in explorer.message.text


def test_bad_import_changes_nothing_and_says_why(explorer):
    before = explorer.config
    explorer._on_import(type("E", (), {"new": json.dumps({"lr": 7.0}).encode()})())
    assert "Config not imported" in explorer.message.text and "lr=7.0 is out of range" in explorer.message.text
    explorer._on_import(type("E", (), {"new": b"{not json"})())
    assert "not valid JSON" in explorer.message.text
    assert explorer.config == before


def test_export_import_round_trip(explorer):
    text = explorer._config_file().getvalue()
    assert TrainConfig.from_json(text) == explorer.config
    explorer._on_import(type("E", (), {"new": TrainConfig.from_json(text).replace(lr=1e-3).to_json().encode()})())
    assert explorer.config.lr == 1e-3 and explorer.state.lr == 1e-3


def test_out_of_range_widget_value_is_reported_not_applied(explorer):
    explorer.state.hidden = "32, nope"
    assert "Not applied" in explorer.message.text and "hidden" in explorer.message.text
    assert explorer.config.hidden == (32,)


def test_weights_download_is_a_loadable_checkpoint(explorer, tmp_path, settle):
    explorer.runner.step(2)
    assert settle(explorer, lambda: explorer.runner.trainer.step_count == 2)
    path = tmp_path / "w.pt"
    path.write_bytes(explorer._weights_file().getvalue())
    from qsnn_explorer import Trainer
    assert Trainer.load(path).step_count == 2


def test_divergence_message_reaches_the_page(explorer, settle):
    explorer.runner.trainer.model.blocks[-1].synapse[-1].bias.data[0] = float("nan")
    explorer.runner.play()
    assert settle(explorer, lambda: "paused" in explorer.message.text)
    assert explorer.message.visible and not explorer.runner.running
    explorer._restart("reset")  # and the app keeps working
    explorer.runner.play()
    assert settle(explorer, lambda: len(explorer.curves.train.data["step"]) > 3)


def test_the_sweep_tab_follows_the_explorers_config(wait_for):
    explorer = Explorer(preset("digits8x8-mlp"))
    try:
        assert explorer.sweep.config == explorer.config
        explorer.apply_config(preset("digits8x8-mlp", hidden=(32,)))
        assert explorer.sweep.config.hidden == (32,)
        tabs = explorer._layout[1]
        assert [title for title in tabs._names] == ["Train", "Sweep"]
    finally:
        assert explorer.stop()


def test_a_failing_view_update_is_shown_and_the_next_drain_goes_on(explorer, settle, monkeypatch):
    # Inline in a notebook Panel runs the drain as an asyncio task that dies on its first
    # exception; a served app logs it. Either way the views must keep updating afterwards.
    calls = []

    def broken(frames, evals):
        calls.append(len(frames))
        raise RuntimeError("view bug")

    monkeypatch.setattr(explorer.curves, "add", broken)
    explorer.runner.step(2)
    assert settle(explorer, lambda: calls and "view bug" in explorer.message.text)
    monkeypatch.undo()
    explorer.runner.step(1)
    assert settle(explorer, lambda: len(explorer.curves.train.data["step"]) >= 1)


def test_inline_in_a_notebook_no_stylesheet_links_to_a_cdn(explorer):
    """Panel's ipywidgets route renders with ``get_root`` alone; the explorer's render hook must
    still make every stylesheet the installed CSS text (an offline notebook can't reach a CDN)."""
    import panel as pn
    from bokeh.document import Document
    from bokeh.models import ImportedStyleSheet
    from panel.io.resources import CDN_DIST

    with pn.config.set(inline=True):
        root = explorer.__panel__().get_root(Document())
    # select() walks every model the root references, the stylesheets in each model's list included
    links = [s.url for s in root.select({"type": ImportedStyleSheet}) if s.url.startswith(CDN_DIST)]
    assert links == []


def test_live_text_changes_send_no_stylesheets(explorer):
    """The counter and the message change while training; a change must carry the text only
    (a Markdown pane re-sends its stylesheets, resolved as CDN links in a notebook)."""
    from bokeh.document import Document

    root = explorer.__panel__().get_root(Document())
    model = explorer.counter._models[root.ref["id"]][0]
    sent = []
    model.on_change("stylesheets", lambda attr, old, new: sent.append(new))
    explorer.counter.text = "step 3 · epoch 0.10 · 1,000 samples/s"
    explorer.message.text = "a message"
    assert sent == []
    assert model.data.text == "step 3 · epoch 0.10 · 1,000 samples/s"


def test_the_lr_schedule_is_drawn_on_past_the_planned_steps():
    from qsnn_explorer.app.views import LRView
    from qsnn_explorer.schedules import lr_at
    view, cfg = LRView(), TrainConfig(lr_schedule="cosine_restarts", lr_period=60, lr=0.002)
    view.draw(cfg, 189)
    assert view.curve.x.max() < 189 and view.total_steps == 189
    view.move(100, lr_at(100, 0.002, "cosine_restarts", 60))
    assert view.total_steps == 189  # inside the plan: only the marker moves
    view.move(1317, lr_at(1317, 0.002, "cosine_restarts", 60))
    assert view.total_steps == 189 * 8 and view.curve.x.max() > 1317
    assert list(view.now.x) == [1317] and [s.kind for s in view.chart.series] == ["line", "points", "points"]
    assert 1320 in view.restarts.x  # restarts keep coming every 60 steps

"""Figures: convergence curves, bars, per-image analysis (Figure 4), activation maps, border score."""

import csv

import numpy as np
import pytest
from PIL import Image
from torch import nn

from padlib.errors import PadlibError
from padlib.report.activations import default_layers
from padlib.report.collect import load_sweep
from padlib.report.figure_report import FigureOptions, make_figures
from padlib.report.figures import bar_figure, convergence_figure, curve_band
from padlib.report.tables import best_table
from tests.report_fixtures import TINY_ARCH, curve, make_model_run, make_predictions, make_run

TARGETS = np.repeat(np.arange(4), 4)  # the synthetic val set: 4 classes x 4 images, in class order


def assert_png(path):
    assert path.is_file() and path.stat().st_size > 2000
    with Image.open(path) as im:
        assert im.size[0] > 200 and im.size[1] > 150


def test_curve_band_handles_unequal_lengths():
    epochs, mean, low, high = curve_band([np.array([1.0, 2.0, 3.0]), np.array([3.0, 4.0])], "minmax")
    assert list(epochs) == [1, 2, 3]
    assert list(mean) == [2.0, 3.0, 3.0] and list(low) == [1.0, 2.0, 3.0] and list(high) == [3.0, 4.0, 3.0]
    _, mean, low, high = curve_band([np.array([1.0, 2.0]), np.array([3.0, 4.0])], "std")
    assert high[0] - mean[0] == pytest.approx(np.std([1.0, 3.0], ddof=1))


def test_convergence_and_bars(tmp_path):
    for seed, final in enumerate((80.0, 81.0, 82.0)):
        make_run(tmp_path / "s", "resnet18", "zero", seed, curve(final))
        make_run(tmp_path / "s", "resnet18", "partial", seed, curve(final + 1))
    make_run(tmp_path / "s", "vgg16_bn", "zero", 0, curve(70.0, 4))
    sweep = load_sweep(tmp_path / "s")
    assert_png(convergence_figure(sweep, tmp_path / "c.png"))
    assert_png(bar_figure(best_table(sweep).rows, tmp_path / "b.png", "bars"))


def test_default_layers():
    vgg_like = nn.Module()
    vgg_like.features = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                                      nn.Conv2d(4, 4, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2))
    assert default_layers(vgg_like) == ["features.1", "features.4"]
    with pytest.raises(PadlibError, match="--layers"):
        default_layers(nn.Linear(2, 2))


@pytest.fixture(scope="module")
def model_sweep(tmp_path_factory):
    base = tmp_path_factory.mktemp("figs")
    root, data = base / "sweep", base / "data"
    for seed in (0, 1):
        zero = TARGETS.copy()
        zero[[0, 1, 5]] = (TARGETS[[0, 1, 5]] + 1 + seed) % 4  # zero runs both wrong on 0, 1, 5
        partial = TARGETS.copy()
        partial[10] = (TARGETS[10] + 1) % 4  # partial runs both wrong on 10
        if seed == 1:
            partial[15] = -1  # unreadable in one run: not scored
        make_model_run(root, data, "zero", seed, zero)
        make_model_run(root, data, "partial", seed, partial)
    return root, data


def test_figures_end_to_end(model_sweep, tmp_path):
    root, _ = model_sweep
    report = make_figures(load_sweep(root), tmp_path, FigureOptions(workers=0, border_images=8, device="cpu",
                                                                     batch_size=8))
    names = {p.name for p in report.paths}
    stem = f"per_image_{TINY_ARCH}_zero_vs_partial"
    assert {"convergence.png", "best_top1_bars.png", f"{stem}.csv", f"{stem}.png",
            f"activations_{TINY_ARCH}_zero_vs_partial.png", "border_score.csv", "border_score.png"} <= names
    for p in report.paths:
        if p.suffix == ".png":
            assert_png(p)
    with open(tmp_path / f"{stem}.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["index"]) for r in rows] == [0, 1, 5]
    assert rows[2]["target_class"] == "01_square"
    assert rows[0]["pred_zero_seed0"] == "1" and rows[0]["pred_zero_seed1"] == "2"
    assert rows[0]["pred_class_zero_seed0"] == "01_square"
    assert any("3 val images every zero run (2) gets wrong and every partial run (2) gets right; 1 the other way "
               "round (of 15 scored)" in line for line in report.lines)
    with open(tmp_path / "border_score.csv") as f:
        border = {(r["padding"], r["layer"]): r for r in csv.DictReader(f)}
    assert {("zero", "layer1"), ("partial", "layer1")} <= set(border)
    assert all(float(r["mean"]) > 0 and r["n_runs"] == "2" for r in border.values())
    assert border[("zero", "layer1")]["diff"] == "" and border[("partial", "layer1")]["diff"] != ""
    assert border[("zero", "layer1")]["mde80"] == "" and float(border[("partial", "layer1")]["mde80"]) > 0
    assert "MDE (80%)" in (tmp_path / "border_score.md").read_text()
    assert any("layer3" in w and "no interior" in w and "in 4 run(s)" in w for w in report.warnings)  # 32 px: 2x2 at layer3


def test_figures_without_data_still_draw_what_they_can(tmp_path):
    """The val set is gone and there are no checkpoints: curves, bars and the per-image CSV remain."""
    data = {"name": "folder", "root": str(tmp_path / "gone")}
    for seed in (0, 1):
        for padding, pred in (("zero", (TARGETS + 1) % 4), ("partial", TARGETS)):
            cfg = {"model": {"name": "resnet18"}, "padding": {"mode": padding}, "data": data, "seed": seed}
            run = make_run(tmp_path / "s", "resnet18", padding, seed, curve(80.0), config=cfg)
            make_predictions(run, pred, TARGETS)
    report = make_figures(load_sweep(tmp_path / "s"), tmp_path / "out", FigureOptions(workers=0, device="cpu"))
    names = {p.name for p in report.paths}
    assert names == {"convergence.png", "best_top1_bars.png", "per_image_resnet18_zero_vs_partial.csv"}
    text = "\n".join(report.warnings)
    assert "contact sheet" in text and "gone is not a directory" in text
    assert "border-artifact score: no run could be scored" in text
    with open(tmp_path / "out" / "per_image_resnet18_zero_vs_partial.csv") as f:
        assert len(list(csv.DictReader(f))) == 16


def test_figures_keep_settings_apart(tmp_path):
    """Issue 9 B: runs of one arch with other settings get their own curves, per-image comparison and files."""
    data = {"name": "folder", "root": str(tmp_path / "gone")}
    for epochs in (3, 6):
        for padding in ("zero", "partial"):
            cfg = {"model": {"name": "resnet18"}, "padding": {"mode": padding}, "data": data, "seed": 0,
                   "trainer": {"epochs": epochs}}
            run = make_run(tmp_path / "s", "resnet18", padding, 0, curve(80.0, epochs), config=cfg,
                           name=f"e{epochs}/{padding}")
            make_predictions(run, TARGETS if padding == "partial" else (TARGETS + 1) % 4, TARGETS)
    report = make_figures(load_sweep(tmp_path / "s"), tmp_path / "out", FigureOptions(activations=False))
    names = {p.name for p in report.paths}
    assert {"per_image_resnet18_epochs=3_zero_vs_partial.csv",
            "per_image_resnet18_epochs=6_zero_vs_partial.csv"} <= names
    assert any(line.startswith("resnet18 [epochs=3]: 16 val images every zero run (1)")
               for line in report.lines)

"""Cross-testing (Table 4) with real tiny checkpoints on a synthetic ImageFolder: every cell is checked
against an independent evaluation (our own loop over the val set, not padlib.engine)."""

import functools
import math
import statistics

import numpy as np
import pytest
import torch
from scipy import stats as sps

from padlib.checkpoint import load_checkpoint, load_weights, save_checkpoint
from padlib.errors import PadlibError
from padlib.models import build_model
from padlib.report.collect import load_sweep
from padlib.report.cross import CrossResult, cross_table, cross_test_checkpoint, cross_test_sweep, write_cross
from padlib.report.power import mde_welch
from padlib.report.summary import RunValue
from padlib.report.tables import best_table
from padlib.report.weights import EvalOptions
from tests.report_fixtures import (
    TINY_ARCH,
    TRAINED_SIZES,
    make_model_run,
    make_trained_run,
    paired_power_by_hand,
    split_tensors,
    synthetic_data_cfg,
)

OPTS = EvalOptions(paddings=["zero", "partial"], workers=0, batch_size=8, device="cpu")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    base = tmp_path_factory.mktemp("cross")
    root, data = base / "sweep", base / "data"
    for seed in (0, 1):
        make_model_run(root, data, "zero", seed)
        make_model_run(root, data, "partial", seed)
    return root, data


@functools.cache
def val_tensors(data_root, default_synthetic=False, trained=False):
    """All val images as one batch, and their targets."""
    cfg = ({"name": "synthetic", "root": str(data_root)} if default_synthetic
           else synthetic_data_cfg(data_root, **(TRAINED_SIZES if trained else {})))
    x, targets = split_tensors(cfg, "val")
    return x, targets.numpy()


def top1_by_hand(ckpt_path, data_root, padding, arch=TINY_ARCH, source="timm", num_classes=4,
                 default_synthetic=False, trained=False):
    """Top-1 of the checkpoint over the whole val set, computed without padlib.engine."""
    x, targets = val_tensors(data_root, default_synthetic, trained)
    model = build_model(arch, num_classes, padding, source)
    load_weights(model, load_checkpoint(ckpt_path), "test")
    model.eval()
    with torch.no_grad():
        pred = model(x).argmax(1).numpy()
    return 100.0 * float(np.mean(pred == targets))


def paired_by_hand(a, b):
    d = [x - y for x, y in zip(a, b, strict=True)]
    if statistics.stdev(d) == 0:
        return None
    se = statistics.stdev(d) / math.sqrt(len(d))
    q = sps.t.ppf(0.975, len(d) - 1)
    m = statistics.mean(d)
    return m - q * se, m + q * se, 2 * sps.t.sf(abs(m / se), len(d) - 1)


def test_cross_mde_is_paired(tmp_path):
    """Table 4's MDE is the paired test's: from the sd of the run-by-run differences and the number of
    pairs, which here is far smaller than Welch's (the runs differ a lot, the paddings little)."""
    same, other = [70.0, 74.0, 78.0, 72.0], [70.3, 74.1, 78.6, 72.2]
    values = {("resnet50", "zero", "zero"): [RunValue(f"r{i}", i, v) for i, v in enumerate(same)],
              ("resnet50", "zero", "partial"): [RunValue(f"r{i}", i, v) for i, v in enumerate(other)]}
    table = cross_table(CrossResult(values=values, dataset="synthetic"))
    rows = {r["test_padding"]: r for r in table.rows}
    diffs = [a - b for a, b in zip(other, same, strict=True)]
    mde = rows["partial"]["mde80"]
    assert paired_power_by_hand(mde, statistics.stdev(diffs), 4) == pytest.approx(0.8, abs=1e-6)
    assert mde < mde_welch(statistics.stdev(other), 4, statistics.stdev(same), 4) / 10
    assert math.isnan(rows["zero"]["mde80"])
    write_cross(CrossResult(values=values, dataset="synthetic"), tmp_path)
    md = (tmp_path / "cross.md").read_text()
    assert "MDE (80%)" in md and "sd of the paired differences" in md and "missed more than 20%" in md
    with open(tmp_path / "cross.csv") as f:
        header = f.readline().strip().split(",")
    assert "mde80" in header


def test_cross_every_cell(sweep, tmp_path):
    root, data = sweep
    result = cross_test_sweep(load_sweep(root), OPTS)
    assert not result.warnings
    table = cross_table(result)
    rows = {(r["train_padding"], r["test_padding"]): r for r in table.rows}
    assert list(rows) == [("zero", "zero"), ("zero", "partial"), ("partial", "partial"), ("partial", "zero")]
    expected = {}
    for train in ("zero", "partial"):
        for test in ("zero", "partial"):
            expected[(train, test)] = [top1_by_hand(root / TINY_ARCH / train / f"seed{s}" / "checkpoints" / "best.pt",
                                                    data, test) for s in (0, 1)]
    for key, row in rows.items():
        vals = expected[key]
        assert [row["run1"], row["run2"]] == pytest.approx(vals)
        assert row["mean"] == pytest.approx(statistics.mean(vals))
        assert row["std"] == pytest.approx(statistics.stdev(vals))
        if key[0] == key[1]:
            assert math.isnan(row["diff"])
            continue
        ref = expected[(key[0], key[0])]
        assert row["diff"] == pytest.approx(statistics.mean(vals) - statistics.mean(ref))
        by_hand = paired_by_hand(vals, ref)
        if by_hand is None:
            assert math.isnan(row["p_value"])
        else:
            assert (row["diff_ci_low"], row["diff_ci_high"], row["p_value"]) == pytest.approx(by_hand)
    paths = write_cross(result, tmp_path)
    assert [p.name for p in paths] == ["cross.csv", "cross.md", "cross.tex"]
    assert "paired t-test" in (tmp_path / "cross.md").read_text()


def test_bad_checkpoints_are_named_and_skipped(sweep, tmp_path):
    root, data = sweep
    bad = tmp_path / "sweep"
    make_model_run(bad, data, "zero", 0)
    garbage = make_model_run(bad, data, "zero", 1)
    garbage.best_checkpoint.write_bytes(b"not a checkpoint")
    wrong = make_model_run(bad, data, "zero", 2)
    save_checkpoint({"model": build_model(TINY_ARCH, 3, "zero", "timm").state_dict()}, wrong.best_checkpoint)
    result = cross_test_sweep(load_sweep(bad), OPTS)
    assert len(result.values[(TINY_ARCH, "zero", "zero")]) == 1
    text = "\n".join(result.warnings)
    assert f"{garbage.best_checkpoint}: " in text
    assert f"{wrong.best_checkpoint}: weights do not fit" in text
    garbage2 = make_model_run(tmp_path / "allbad", data, "zero", 0)
    garbage2.best_checkpoint.unlink()
    with pytest.raises(PadlibError, match="no weights could be evaluated.*checkpoint not found"):
        cross_test_sweep(load_sweep(tmp_path / "allbad"), OPTS)


def test_limit_uses_a_val_subset(sweep):
    root, _ = sweep
    result = cross_test_sweep(load_sweep(root), EvalOptions(paddings=["zero"], workers=0, device="cpu", limit=8))
    assert all(v.value * 8 / 100 == pytest.approx(round(v.value * 8 / 100)) for vs in result.values.values()
               for v in vs)
    assert any("subset of 8 val images" in n for n in result.notes)


def test_paper_authors_file(tmp_path):
    """A released pdresnet-style file: arch from its 'arch' field, 'module.' prefixes, partial training."""
    data = tmp_path / "data"  # --data synthetic: the synthetic set with its default size
    torch.manual_seed(0)
    model = build_model("resnet18", 4, "partial")
    path = tmp_path / "pdresnet18_best.pth.tar"
    torch.save({"arch": "pdresnet18", "best_prec1": 12.5, "epoch": 100,
                "state_dict": {f"module.{k}": v for k, v in model.state_dict().items()}}, path)
    result = cross_test_checkpoint(path, None, None, "synthetic", EvalOptions(
        paddings=["partial", "zero"], data_root=str(data), workers=0, device="cpu"))
    assert set(result.values) == {("resnet18", "partial", "partial"), ("resnet18", "partial", "zero")}
    got = result.values[("resnet18", "partial", "zero")][0].value
    assert got == pytest.approx(top1_by_hand(path, data, "zero", "resnet18", "torchvision", default_synthetic=True))
    rows = cross_table(result).rows
    assert rows[0]["test_padding"] == "partial" and rows[0]["n_runs"] == 1


def test_bare_weight_file_needs_arch(tmp_path, sweep):
    _, data = sweep
    path = tmp_path / "weights.pth"
    torch.save(build_model(TINY_ARCH, 4, "zero", "timm").state_dict(), path)
    opts = EvalOptions(paddings=["zero"], data_root=str(data), workers=0, device="cpu")
    with pytest.raises(PadlibError, match="give --arch"):
        cross_test_checkpoint(path, None, None, "synthetic", opts)
    result = cross_test_checkpoint(path, TINY_ARCH, None, "synthetic", opts, source="timm")
    assert any("assumed zero" in w for w in result.warnings)
    with pytest.raises(PadlibError, match="weights do not fit"):
        cross_test_checkpoint(path, "resnet18", None, "synthetic", opts)
    with pytest.raises(PadlibError, match="give --data-root"):
        cross_test_checkpoint(path, TINY_ARCH, None, None, EvalOptions(paddings=["zero"]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """Zero- and partial-padding runs of TINY_ARCH actually trained (well above chance), 3 seeds each."""
    base = tmp_path_factory.mktemp("trained")
    root, data = base / "sweep", base / "data"
    for padding in ("zero", "partial"):
        for seed in (0, 1, 2):
            make_trained_run(root, data, padding, seed)
    return root, data


def test_cross_testing_trained_weights(trained):
    """Issue 9 D: with trained weights a wrong test padding changes the numbers, so this would catch one.
    Table 4's diagonal is Table 2 (same checkpoints, same precision); every other cell is an independent
    evaluation; the paired CI and p are the textbook ones."""
    root, data = trained
    sweep = load_sweep(root)
    result = cross_test_sweep(sweep, EvalOptions(paddings=["zero", "partial"], workers=0, batch_size=64, device="cpu"))
    assert not result.warnings
    rows = {(r["train_padding"], r["test_padding"]): r for r in cross_table(result).rows}
    logged = {r["padding"]: [r[f"run{i}"] for i in (1, 2, 3)] for r in best_table(sweep).rows}
    ckpt = {(train, s): root / TINY_ARCH / train / f"seed{s}" / "checkpoints" / "best.pt"
            for train in ("zero", "partial") for s in (0, 1, 2)}
    for train, test in (("zero", "partial"), ("partial", "zero")):
        diag, off = rows[(train, train)], rows[(train, test)]
        runs = [diag[f"run{i}"] for i in (1, 2, 3)]
        assert runs == pytest.approx(logged[train])  # Table 4 diagonal == Table 2
        assert min(runs) > 50.0  # chance is 25%
        vals = [top1_by_hand(ckpt[(train, s)], data, test, trained=True) for s in (0, 1, 2)]
        assert [off[f"run{i}"] for i in (1, 2, 3)] == pytest.approx(vals)
        assert off["diff"] == pytest.approx(statistics.mean(vals) - statistics.mean(runs))
        by_hand = paired_by_hand(vals, runs)
        assert by_hand is not None
        assert (off["diff_ci_low"], off["diff_ci_high"], off["p_value"]) == pytest.approx(by_hand)
        sd = statistics.stdev([v - r for v, r in zip(vals, runs, strict=True)])
        assert paired_power_by_hand(off["mde80"], sd, 3) == pytest.approx(0.8, abs=1e-6)
    # the wrong padding at test time is visible: zero-trained weights tested with partial padding
    assert [rows[("zero", "partial")][f"run{i}"] for i in (1, 2, 3)] != pytest.approx(logged["zero"])
    assert any("precision of cross-testing: fp32 for all 6 weights (each run's training precision" in n
               for n in result.notes)


def test_cross_testing_uses_the_run_precision(sweep, tmp_path):
    """Issue 9 C: an fp16 run re-evaluated on a CPU falls back to fp32 with one warning naming it, and the
    table says at what precision it ran."""
    _, data = sweep
    root = tmp_path / "s"
    make_model_run(root, data, "zero", 0, info={"precision": "fp16"})
    make_model_run(root, data, "zero", 1, info={"precision": "fp16"})
    opts = EvalOptions(paddings=["zero"], workers=0, batch_size=8, device="cpu")
    result = cross_test_sweep(load_sweep(root), opts)
    (warning,) = result.warnings
    assert warning == ("evaluated in fp32, not at the training precision (fp16 autocast needs CUDA; this "
                       f"is cpu): {TINY_ARCH}/zero/seed0 (fp16), {TINY_ARCH}/zero/seed1 (fp16)")
    (note,) = [n for n in result.notes if n.startswith("precision")]
    assert note.startswith("precision of cross-testing: fp32 for all 2 weights (each run's training precision")
    assert f"fp32 instead of the training precision (not available on the evaluation device): {TINY_ARCH}" in note
    values = [v.value for v in result.values[(TINY_ARCH, "zero", "zero")]]
    assert values == pytest.approx([top1_by_hand(root / TINY_ARCH / "zero" / f"seed{s}" / "checkpoints" / "best.pt",
                                                 data, "zero") for s in (0, 1)])
    write_cross(result, tmp_path / "out")
    assert "precision of cross-testing: fp32" in (tmp_path / "out" / "cross.md").read_text()
    explicit = cross_test_sweep(load_sweep(root), EvalOptions(paddings=["zero"], workers=0, device="cpu", amp="none"))
    assert not explicit.warnings and any("(--amp none;" in n for n in explicit.notes)

"""Tables 2 and 3 from hand-made sweeps: every cell checked against independent computations."""

import csv
import statistics

import pytest

from padlib.errors import PadlibError
from padlib.report.collect import load_sweep
from padlib.report.tables import best_table, last5_table, write_tables
from tests.report_fixtures import curve, make_run, welch_by_hand, welch_power_by_simulation

ZERO = [80.0, 81.0, 82.5]
PARTIAL = [82.0, 83.0, 83.5]


@pytest.fixture
def sweep_dir(tmp_path):
    root = tmp_path / "sweep"
    # seeds out of order on disk: runs must come out sorted by seed
    for seed in (2, 0, 1):
        make_run(root, "resnet18", "zero", seed, curve(ZERO[seed]))
        make_run(root, "resnet18", "partial", seed, curve(PARTIAL[seed]))
    make_run(root, "resnet18", "reflect", 0, curve(79.0))
    make_run(root, "resnet34", "partial", 0, curve(72.0))  # no zero runs for this arch
    make_run(root, "resnet18", "replicate", 0, curve(90.0, 3), status="running", epochs=6)  # at epoch 3 of 6
    return root


def read_csv(path):
    with open(path) as f:
        return {(r["arch"], r["padding"]): r for r in csv.DictReader(f)}


def num(cell):
    return float(cell) if cell != "" else None


def test_best_table_every_cell(sweep_dir, tmp_path):
    sweep = load_sweep(sweep_dir)
    assert sweep.left_out == [("resnet18/replicate/seed0", "status running")]
    write_tables(sweep, tmp_path / "out")
    rows = read_csv(tmp_path / "out" / "best.csv")
    assert list(rows) == [("resnet18", "zero"), ("resnet18", "partial"), ("resnet18", "reflect"),
                          ("resnet34", "partial")]
    z, p = rows[("resnet18", "zero")], rows[("resnet18", "partial")]
    assert [num(z[f"run{i}"]) for i in (1, 2, 3)] == ZERO
    assert [num(p[f"run{i}"]) for i in (1, 2, 3)] == PARTIAL
    assert z["seeds"] == "0 1 2" and z["n_runs"] == "3"
    assert num(z["mean"]) == pytest.approx(statistics.mean(ZERO), abs=1e-6)
    assert num(z["std"]) == pytest.approx(statistics.stdev(ZERO), abs=1e-6)
    assert z["diff"] == z["diff_ci_low"] == z["diff_ci_high"] == z["p_value"] == ""
    d, lo, hi, pv = welch_by_hand(PARTIAL, ZERO)
    assert num(p["diff"]) == pytest.approx(d, abs=1e-6)
    assert num(p["diff_ci_low"]) == pytest.approx(lo, abs=1e-6)
    assert num(p["diff_ci_high"]) == pytest.approx(hi, abs=1e-6)
    assert num(p["p_value"]) == pytest.approx(pv, rel=1e-5)
    # mde80: a true difference of that size is found by Welch's test (as scipy runs it) 80% of the time
    mde = num(p["mde80"])
    assert welch_power_by_simulation(mde, statistics.stdev(PARTIAL), 3, statistics.stdev(ZERO), 3) == \
        pytest.approx(0.8, abs=0.015)
    assert mde > 2 * abs(d)  # three runs a side cannot tell this 1.67-point difference apart
    assert z["mde80"] == ""  # the reference row
    r = rows[("resnet18", "reflect")]
    assert r["n_runs"] == "1" and r["std"] == "" and r["run2"] == ""
    assert num(r["diff"]) == pytest.approx(79.0 - statistics.mean(ZERO), abs=1e-6)
    assert r["diff_ci_low"] == r["p_value"] == r["mde80"] == ""  # one run: no CI, no MDE
    assert rows[("resnet34", "partial")]["diff"] == ""  # no zero runs of resnet34
    md = (tmp_path / "out" / "tables.md").read_text()
    assert "resnet18/replicate/seed0 (status running)" in md
    assert "no zero-padding runs for resnet34" in md
    assert "| MDE (80%) |" in md and "would be missed more than 20% of the time with these seeds" in md
    tex = (tmp_path / "out" / "tables.tex").read_text()
    assert "\\begin{tabular}" in tex and "MDE (80\\%)" in tex


def test_last5_table_every_cell(sweep_dir):
    make_run(sweep_dir, "resnet34", "partial", 1, curve(74.0, 3))  # 3 epochs only
    table = last5_table(load_sweep(sweep_dir))
    rows = {(r["arch"], r["padding"]): r for r in table.rows}
    # curve(x) ends x-4, ..., x: the last five average to x - 2
    z, p = [v - 2 for v in ZERO], [v - 2 for v in PARTIAL]
    row = rows[("resnet18", "partial")]
    assert [row[f"run{i}"] for i in (1, 2, 3)] == pytest.approx(p)
    assert row["mean"] == pytest.approx(statistics.mean(p))
    assert row["std"] == pytest.approx(statistics.stdev(p))
    d, lo, hi, pv = welch_by_hand(p, z)
    assert (row["diff"], row["diff_ci_low"], row["diff_ci_high"], row["p_value"]) == pytest.approx((d, lo, hi, pv))
    # the last-5 values are the best ones shifted by 2: the same spread, so the same MDE as Table 2's
    best = {(r["arch"], r["padding"]): r for r in best_table(load_sweep(sweep_dir)).rows}
    assert row["mde80"] == pytest.approx(best[("resnet18", "partial")]["mde80"])
    assert welch_power_by_simulation(row["mde80"], statistics.stdev(p), 3, statistics.stdev(z), 3, seed=1) == \
        pytest.approx(0.8, abs=0.015)
    # a 3-epoch run is not pooled with the 6-epoch one (see test_different_settings_are_not_pooled)
    short = rows[("resnet34 [epochs=3]", "partial")]
    assert short["run1"] == pytest.approx(73.0)  # 72, 73, 74 averaged
    assert short["epochs_averaged"] == 3
    assert rows[("resnet34 [epochs=6]", "partial")]["epochs_averaged"] == 5
    assert any("fewer than 5 epochs" in n and "resnet34/partial/seed1 (3)" in n for n in table.notes)


def test_paper_columns(tmp_path):
    root = tmp_path / "s"
    make_run(root, "resnet50", "zero", 0, curve(76.0), dataset="imagenet")
    make_run(root, "resnet50", "partial", 0, curve(76.5), dataset="imagenet")
    make_run(root, "resnet18", "partial", 0, curve(70.0), dataset="imagenet")
    rows = {(r["arch"], r["padding"]): r for r in best_table(load_sweep(root)).rows}
    assert rows[("resnet50", "partial")]["paper_mean"] == 76.611
    assert rows[("resnet50", "partial")]["paper_diff"] == 0.478
    assert rows[("resnet50", "partial")]["paper_std"] == 0.058
    assert rows[("resnet50", "zero")]["paper_diff"] is None
    assert rows[("resnet18", "partial")]["paper_mean"] is None
    # a missing paper folder leaves the columns empty
    rows = best_table(load_sweep(root), paper_dir=tmp_path / "nowhere").rows
    assert all(r["paper_mean"] is None for r in rows)


def test_include_incomplete(sweep_dir):
    sweep = load_sweep(sweep_dir, include_incomplete=True)
    assert not sweep.left_out
    rows = {(r["arch"], r["padding"]): r for r in best_table(sweep).rows}
    assert rows[("resnet18", "replicate")]["mean"] == 90.0
    assert any("included unfinished" in n for n in best_table(sweep).notes)


def test_corrupt_metrics_line_is_skipped(sweep_dir, tmp_path):
    path = sweep_dir / "resnet18" / "zero" / "seed0" / "metrics.jsonl"
    lines = path.read_text().splitlines()
    lines[-1] = lines[-1][:20]  # the best epoch's line is cut short
    lines.insert(1, "{not json")
    path.write_text("\n".join(lines) + "\n")
    sweep = load_sweep(sweep_dir)
    assert any(f"{path}:2: corrupt line" in w for w in sweep.warnings)
    assert any(f"{path}:{len(lines)}: corrupt line" in w for w in sweep.warnings)
    rows = {(r["arch"], r["padding"]): r for r in best_table(sweep).rows}
    assert rows[("resnet18", "zero")]["run1"] == ZERO[0] - 1  # best of the epochs still readable
    write_tables(sweep, tmp_path / "out")
    assert f"{path}:2: corrupt line" in (tmp_path / "out" / "tables.md").read_text()


def test_mixed_datasets(tmp_path):
    make_run(tmp_path, "resnet18", "zero", 0, curve(80), dataset="synthetic")
    make_run(tmp_path, "resnet18", "zero", 1, curve(70), dataset="fashion_mnist")
    with pytest.raises(PadlibError, match="several datasets.*--dataset"):
        load_sweep(tmp_path)
    sweep = load_sweep(tmp_path, dataset="fashion_mnist")
    assert [r.seed for r in sweep.runs] == [1]
    with pytest.raises(PadlibError, match="no runs of dataset 'imagenet'"):
        load_sweep(tmp_path, dataset="imagenet")


def test_empty_and_foreign_dirs(tmp_path):
    with pytest.raises(PadlibError, match="no runs found"):
        load_sweep(tmp_path)
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "run.json").write_text('{"name": "someone else\'s run"}')
    with pytest.raises(PadlibError, match="none of the 1 run.json"):
        load_sweep(tmp_path)
    make_run(tmp_path, "resnet18", "zero", 0, curve(80))
    sweep = load_sweep(tmp_path)
    assert len(sweep.runs) == 1 and any("other/run.json" in w for w in sweep.warnings)


def test_only_incomplete_runs_is_an_error(tmp_path):
    make_run(tmp_path, "resnet18", "zero", 0, curve(80), status="failed")
    with pytest.raises(PadlibError, match="no usable runs.*status failed.*--include-incomplete"):
        load_sweep(tmp_path)


def test_duplicate_seeds_warned(tmp_path):
    make_run(tmp_path, "resnet18", "zero", 0, curve(80), name="a")
    make_run(tmp_path, "resnet18", "zero", 0, curve(81), name="b")
    assert any("both resnet18/zero seed 0" in w for w in load_sweep(tmp_path).warnings)


def corrupt_epochs(run, epochs):
    """Cut the metrics lines of ``epochs`` short, as a crash mid-write would (collect.py skips them)."""
    lines = run.metrics_path.read_text().splitlines()
    for e in epochs:
        lines[e - 1] = lines[e - 1][:15]
    run.metrics_path.write_text("\n".join(lines) + "\n")


def test_last5_counts_epochs_not_rows(tmp_path):
    """Issue 9 A: the window is epochs E-4..E by number; a missing epoch is named, never replaced by an
    older one."""
    top1 = [10.0, 20.0, 30.0, 40.0, 50.0, 60.0, 70.0, 80.0]
    gap = make_run(tmp_path, "resnet18", "zero", 0, top1)
    corrupt_epochs(gap, [6])  # inside the window 4..8
    last = make_run(tmp_path, "resnet18", "zero", 1, top1)
    corrupt_epochs(last, [8])  # the final epoch itself: the planned epochs say it is missing
    lost = make_run(tmp_path, "resnet18", "zero", 2, top1)
    corrupt_epochs(lost, [4, 5, 6, 7, 8])  # nothing of the window left
    make_run(tmp_path, "resnet18", "zero", 3, top1)
    table = last5_table(load_sweep(tmp_path))
    (row,) = table.rows
    assert [row["run1"], row["run2"], row["run3"]] == pytest.approx([
        statistics.mean([40, 50, 70, 80]),  # old code: rows of epochs 3,4,5,7,8
        statistics.mean([40, 50, 60, 70]),  # old code: epochs 3..7
        statistics.mean([40, 50, 60, 70, 80])])
    assert row["seeds"] == "0 1 3" and row["n_runs"] == 3  # seed 2 has no epoch of its window
    assert row["epochs_averaged"] == 4
    (note,) = [n for n in table.notes if "last-5 window" in n]
    assert "resnet18/zero/seed0 (epochs 4-8: no readable metrics for epoch(s) 6; averaged the 4 present)" in note
    assert "resnet18/zero/seed1 (epochs 4-8: no readable metrics for epoch(s) 8; averaged the 4 present)" in note
    assert "resnet18/zero/seed2 (epochs 4-8: no readable metrics for epoch(s) 4, 5, 6, 7, 8; left out" in note
    assert "seed3" not in note


def test_last5_of_an_unfinished_run_ends_at_its_last_epoch(tmp_path):
    make_run(tmp_path, "resnet18", "zero", 0, curve(80.0, 7), status="running", epochs=10)
    table = last5_table(load_sweep(tmp_path, include_incomplete=True))
    assert table.rows[0]["run1"] == pytest.approx(78.0)  # epochs 3..7 of 10
    assert not any("window" in n or "fewer than 5 epochs" in n for n in table.notes)


def settings_config(arch, padding, seed, epochs=6, **changes):
    """A trainer-like config; ``changes`` maps dotted keys to values (``trainer__optim__lr`` style)."""
    cfg = {"seed": seed, "run_dir": f"/somewhere/{padding}/seed{seed}",
           "model": {"name": arch, "source": "torchvision"}, "padding": {"mode": padding},
           "data": {"name": "synthetic", "root": "data/synthetic", "workers": 0, "image_size": 32,
                    "crop_scale": [0.5, 1.0], "train_subset": None},
           "trainer": {"epochs": epochs, "batch_size": 128, "amp": "auto", "device": "auto", "log_every": 50,
                       "progress": True, "keep_last": 5, "optim": {"lr": 0.02}}}
    for key, value in changes.items():
        *path, last = key.split("__")
        node = cfg
        for part in path:
            node = node[part]
        node[last] = value
    return cfg


def test_different_settings_are_not_pooled(tmp_path):
    """Issue 9 B: 3-epoch and 6-epoch runs of one arch and padding land in separate rows, each padding
    compared with zero padding at its own settings; settings that do not change results are ignored."""
    for seed in (0, 1):
        for padding, bonus in (("zero", 0.0), ("partial", 1.0)):
            make_run(tmp_path, "resnet18", padding, seed, curve(70.0 + seed + bonus, 3),
                     config=settings_config("resnet18", padding, seed, 3), name=f"short/{padding}/seed{seed}")
            # runtime-only differences: another data root, device, workers, logging, checkpoints kept
            make_run(tmp_path, "resnet18", padding, seed, curve(80.0 + seed + 2 * bonus),
                     config=settings_config("resnet18", padding, seed, data__root=f"/data{seed}",
                                            data__workers=8, trainer__device="cuda", trainer__log_every=seed + 1,
                                            trainer__progress=False, trainer__keep_last=seed),
                     info={"device": "cpu: x86_64 x2 threads"}, name=f"long/{padding}/seed{seed}")
    make_run(tmp_path, "vgg16_bn", "zero", 0, curve(60.0), config=settings_config("vgg16_bn", "zero", 0))
    sweep = load_sweep(tmp_path)
    table = best_table(sweep)
    rows = {(r["arch"], r["padding"]): r for r in table.rows}
    assert list(rows) == [("vgg16_bn", "zero"),
                          ("resnet18 [epochs=3]", "zero"), ("resnet18 [epochs=3]", "partial"),
                          ("resnet18 [epochs=6]", "zero"), ("resnet18 [epochs=6]", "partial")]
    assert [rows[("resnet18 [epochs=3]", "partial")][f"run{i}"] for i in (1, 2)] == [71.0, 72.0]
    assert rows[("resnet18 [epochs=3]", "partial")]["diff"] == pytest.approx(1.0)
    assert [rows[("resnet18 [epochs=6]", "partial")][f"run{i}"] for i in (1, 2)] == [82.0, 83.0]
    assert rows[("resnet18 [epochs=6]", "partial")]["diff"] == pytest.approx(2.0)
    (note,) = [n for n in table.notes if "not pooled" in n]
    assert note.startswith("resnet18 runs differ in trainer.epochs, which change results")
    assert "(resnet18 [epochs=3]: 4 runs; resnet18 [epochs=6]: 4 runs)" in note
    assert "vgg16_bn" not in note
    # cross-testing and the figures group the same way
    from padlib.report.weights import weights_of_run
    assert {weights_of_run(r).group for r in sweep.runs} == {"vgg16_bn", *(k[0] for k in rows)}
    assert rows[("resnet18 [epochs=6]", "zero")]["paper_mean"] is None  # synthetic: no paper rows
    assert any("not pooled" in n for n in last5_table(sweep).notes)


@pytest.mark.parametrize("a, b, label", [
    ({"trainer__optim__lr": 0.1}, {}, "lr=0.02"),
    ({"data__crop_scale": [0.08, 1.0]}, {}, "crop_scale=[0.5, 1]"),
    ({"data__train_subset": 1000}, {}, "train_subset=null"),
    ({"trainer__amp": "bf16"}, {}, "precision=fp32"),  # config amp "auto" on a CPU: fp32
    ({"trainer__amp": "none"}, {"trainer__amp": "auto"}, None),  # both fp32 on a CPU: pooled
])
def test_settings_that_split(tmp_path, a, b, label):
    make_run(tmp_path, "resnet18", "zero", 0, curve(80), config=settings_config("resnet18", "zero", 0, **a),
             info={"device": "cpu: x86_64 x2 threads"})
    make_run(tmp_path, "resnet18", "zero", 1, curve(81), config=settings_config("resnet18", "zero", 1, **b),
             info={"device": "cpu: x86_64 x2 threads"})
    labels = [r["arch"] for r in best_table(load_sweep(tmp_path)).rows]
    if label is None:
        assert labels == ["resnet18"]
    else:
        assert len(labels) == 2 and f"resnet18 [{label}]" in labels


def test_precision_and_world_size_split(tmp_path):
    cfg = settings_config("resnet18", "zero", 0)
    make_run(tmp_path, "resnet18", "zero", 0, curve(80), config=cfg, info={"device": "cuda: NVIDIA H100"})
    make_run(tmp_path, "resnet18", "zero", 1, curve(81), config=cfg, info={"device": "cpu: x86_64 x2 threads"})
    make_run(tmp_path, "resnet18", "zero", 2, curve(82), config=cfg, info={"device": "cuda: NVIDIA H100",
                                                                          "world_size": 4})
    make_run(tmp_path, "resnet18", "zero", 3, curve(83), config=cfg, info={"device": "cpu", "precision": "bf16"})
    rows = {r["arch"]: r["seeds"] for r in best_table(load_sweep(tmp_path)).rows}
    assert rows == {"resnet18 [precision=bf16, world_size=1]": "0 3", "resnet18 [precision=fp32, world_size=1]": "1",
                    "resnet18 [precision=bf16, world_size=4]": "2"}


@pytest.mark.parametrize("info, expected", [
    ({"precision": "fp16", "device": "cpu"}, "fp16"),  # written by the trainer: wins
    ({"config": {"trainer": {"amp": "auto"}}, "device": "cuda: NVIDIA H100 80GB HBM3"}, "bf16"),
    ({"config": {"trainer": {"amp": "auto"}}, "device": "cpu: x86_64 x2 threads"}, "fp32"),
    ({"config": {"trainer": {"amp": "none"}}, "device": "cuda: NVIDIA H100"}, "fp32"),
    ({"config": {"trainer": {"amp": "fp16"}}, "device": "cuda: NVIDIA H100"}, "fp16"),
    ({"config": {"trainer": {"amp": "bf16"}}, "device": "cpu: x86_64"}, "bf16"),
    ({"config": {}}, "fp32"),  # hand-made: nothing says otherwise
])
def test_run_precision(info, expected):
    from padlib.report.collect import run_precision
    assert run_precision(info, "run.json") == expected


def test_unknown_precision_is_named(tmp_path):
    make_run(tmp_path, "resnet18", "zero", 0, curve(80), info={"precision": "fp8"})
    with pytest.raises(PadlibError, match=r"resnet18/zero/seed0/run.json: precision='fp8' is unknown; expected fp32"):
        load_sweep(tmp_path)


def test_mixed_package_versions_are_warned(tmp_path):
    for seed, torch_version in ((0, "2.14.1"), (1, "2.14.1"), (2, "2.13.0")):
        make_run(tmp_path, "resnet18", "zero", seed, [50.0, 60.0],
                 info={"versions": {"torch": torch_version, "timm": "1.0.31"}})
    warnings = load_sweep(tmp_path).warnings
    mixed = [w for w in warnings if "different" in w]
    assert len(mixed) == 1, warnings
    assert "torch versions: 2.13.0 (1 runs), 2.14.1 (2 runs)" in mixed[0]
    make_run(tmp_path / "same", "resnet18", "zero", 0, [50.0], info={"versions": {"torch": "2.14.1"}})
    make_run(tmp_path / "same", "resnet18", "zero", 1, [50.0], info={"versions": {"torch": "2.14.1"}})
    assert not [w for w in load_sweep(tmp_path / "same").warnings if "different" in w]


def test_equal_numbers_written_differently_and_new_keys_pool(tmp_path):
    # Hydra's `=0` is an int where the YAML default is 0.0; data.fallback exists only in newer runs
    def cfg(smoothing, scale, extra):
        return {"model": {"name": "resnet18"}, "padding": {"mode": "zero"}, "seed": 0,
                "data": {"name": "synthetic", "crop_scale": scale, **extra}, "trainer": {"label_smoothing": smoothing}}

    make_run(tmp_path, "resnet18", "zero", 0, [50.0], config=cfg(0, [0.35, 1], {}))
    make_run(tmp_path, "resnet18", "zero", 1, [51.0], config=cfg(0.0, [0.35, 1.0], {"fallback": "synthetic"}))
    sweep = load_sweep(tmp_path)
    assert list(sweep.groups()) == [("resnet18", "zero")] and not sweep.split_notes

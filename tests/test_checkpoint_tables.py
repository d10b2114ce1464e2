"""Tables 2 and 3 from re-evaluated checkpoints, the integrity check, the result cache, the test-size report and
torchrun sharding, on a tiny sweep trained by train.py (timm's test_resnet, 2 paddings x 2 seeds x 6 epochs)."""

import csv
import json
import os
import re
import shutil
import sys
from pathlib import Path

import pytest
import torch

import evaluate
from padlib.checkpoint import load_checkpoint, save_checkpoint
from padlib.engine import loop
from padlib.report.eval_cache import CACHE_DIR, cache_path, checkpoint_key
from padlib.rundir import RunDir
from tests.report_fixtures import curve, make_model_run, make_run
from tests.train_helpers import REPO, run, train_cmd

pytestmark = pytest.mark.slow
CPU = ["--device", "cpu", "--workers", "0", "--batch-size", "16"]
EPOCHS, KEEP = 6, 5


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, data_root):
    """zero and partial padding, seeds 1 and 2, 6 epochs keeping the last 5 epoch checkpoints: one train.py
    multirun process."""
    root = tmp_path_factory.mktemp("ckpt") / "sweep"
    # lr 0.0005: val top-1 still between 40 and 80% (not saturated), so the tables' cells differ
    cmd = [c for c in train_cmd(root, data_root, "model=timm", "model.name=test_resnet", f"trainer.keep_last={KEEP}",
                                "trainer.optim.lr=0.0005", "padding=zero,partial", "seed=1,2")
           if not c.startswith(("hydra.run.dir=", "trainer.epochs="))]
    # a layout of its own (hydra.sweep.subdir): every point differs in padding and seed only
    res = run([cmd[0], cmd[1], "-m", f"hydra.sweep.dir={root}", "hydra.sweep.subdir=${model.name}/${padding.mode}/"
               "seed${seed}", f"trainer.epochs={EPOCHS}", *cmd[2:]])
    assert res.returncode == 0, res.stderr[-3000:]
    return root


@pytest.fixture(autouse=True)
def one_thread():
    """In-process evaluation on one thread: as fast for these tiny models, and many times faster on a busy
    2-core machine (as the training subprocesses run)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def rows(path: Path) -> list[dict]:
    with open(path) as f:
        return list(csv.DictReader(f))


def one_run(sweep: Path, tmp_path: Path, name: str = "test_resnet/zero/seed1") -> tuple[Path, RunDir]:
    """A sweep of a copy of one run (files the test may change, a cache of its own)."""
    root = tmp_path / "one"
    shutil.copytree(sweep / name, root / name, ignore=shutil.ignore_patterns(CACHE_DIR))
    return root, RunDir(root / name)


def test_from_checkpoints_reproduces_the_logged_tables(sweep, tmp_path, capsys):
    logged, ckpt = tmp_path / "logged", tmp_path / "ckpt"
    assert evaluate.main(["tables", str(sweep), "--out", str(logged)]) == 0
    assert evaluate.main(["tables", str(sweep), "--from-checkpoints", "--out", str(ckpt), *CPU]) == 0
    captured = capsys.readouterr()
    assert "warning:" not in captured.err
    assert "checkpoint evaluation(s) on cpu" in captured.out and "images/s" in captured.out
    best, last5 = rows(ckpt / "best_from_checkpoints.csv"), rows(ckpt / "last5_from_checkpoints.csv")
    assert [(r["padding"], r["n_runs"]) for r in best] == [("zero", "2"), ("partial", "2")]
    assert best == rows(logged / "best.csv")  # every cell: per-run values, mean, std, diff, CI, p, MDE
    assert last5 == rows(logged / "last5.csv") and {r["epochs_averaged"] for r in last5} == {"5"}
    md = (ckpt / "tables_from_checkpoints.md").read_text()
    assert "(paper Table 2), re-evaluated from checkpoints" in md
    assert "fp32 for all 24 weights (--amp none" in md
    assert "on each run's own val set (32x32 centre crop after resizing the short side to 36 px)" in md
    assert "integrity check: 24 of 24 checkpoints re-evaluated on their run's own val set at its own precision " \
           "reproduce the val top-1 logged in training exactly (on CPU)" in md
    checked = rows(ckpt / "checkpoint_integrity.csv")
    assert len(checked) == 4 * (1 + KEEP) and {r["ok"] for r in checked} == {"True"}


def test_tampered_and_missing_checkpoints_are_named(sweep, tmp_path, capsys):
    root, rd = one_run(sweep, tmp_path)
    path = rd.epoch_checkpoint(4)
    ckpt = load_checkpoint(path)
    for key in ("fc.weight", "fc.bias"):  # the classifier turned upside down: argmax becomes argmin
        ckpt["model"][key] = -ckpt["model"][key]
    save_checkpoint(ckpt, path)
    rd.epoch_checkpoint(3).unlink()
    out = tmp_path / "out"
    assert evaluate.main(["tables", str(root), "--from-checkpoints", "--out", str(out), *CPU]) == 0
    err = capsys.readouterr().err
    warnings = [line for line in err.splitlines() if line.startswith("warning: integrity check")]
    assert len(warnings) == 1, err
    assert "integrity check: 1 of 5 checkpoint(s) do not reproduce the val top-1 their run logged: " \
           "test_resnet/zero/seed1 checkpoints/epoch_004.pt (epoch 4): logged " in warnings[0]
    md = (out / "tables_from_checkpoints.md").read_text()
    assert "last-5 window incomplete, averaged only the epochs present: test_resnet/zero/seed1 (epochs 2-6: no " \
           "epoch checkpoint for epoch(s) 3; averaged the 4 present)" in md
    assert "integrity check: 4 of 5 checkpoints" in md and "1 do not (see the warnings above)" in md
    assert "warning: integrity check" not in md and "integrity check: 1 of 5 checkpoint(s) do not" in md
    bad = [r for r in rows(out / "checkpoint_integrity.csv") if r["ok"] == "False"]
    assert [(r["checkpoint"], r["epoch"]) for r in bad] == [("checkpoints/epoch_004.pt", "4")]


def test_cache_serves_a_second_call_and_an_interrupted_call_resumes(sweep, tmp_path, monkeypatch, capsys):
    root, rd = one_run(sweep, tmp_path)
    real, calls = loop.validate, []

    def counting(*args, stop_after=None, **kwargs):
        if stop_after is not None and len(calls) == stop_after:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    args = ["tables", str(root), "--from-checkpoints", "--out", str(tmp_path / "out"), *CPU]
    monkeypatch.setattr(loop, "validate", lambda *a, **k: counting(*a, stop_after=2, **k))
    assert evaluate.main(args) == 130  # interrupted after two evaluations
    assert len(list((rd.path / CACHE_DIR).glob("*.json"))) in (2, 3)  # 3: best.pt was one of them
    monkeypatch.setattr(loop, "validate", counting)
    calls.clear()
    assert evaluate.main(args) == 0
    # 6 files, but best.pt holds the same bytes as the best epoch's checkpoint when that one is still kept
    best_epoch = load_checkpoint(rd.best_checkpoint)["epoch"]
    evaluations = KEEP + (best_epoch <= EPOCHS - KEEP)
    assert len(calls) == evaluations - 2  # resumed: only what the interrupted call had not done
    first = (tmp_path / "out" / "best_from_checkpoints.csv").read_text()
    capsys.readouterr()
    calls.clear()
    assert evaluate.main(args) == 0
    assert calls == [] and "all 6 checkpoint evaluations served from the cache" in capsys.readouterr().out
    assert (tmp_path / "out" / "best_from_checkpoints.csv").read_text() == first
    assert evaluate.main([*args, "--recompute"]) == 0 and len(calls) == evaluations


def test_resolution_table_and_figure(sweep, tmp_path, capsys):
    out = tmp_path / "res"
    assert evaluate.main(["resolution", str(sweep), "--sizes", "24,32", "--out", str(out), *CPU]) == 0
    assert "warning:" not in capsys.readouterr().err
    table = rows(out / "resolution.csv")
    assert [(r["padding"], r["size"], r["n_runs"]) for r in table] == [
        ("zero", "24", "2"), ("partial", "24", "2"), ("zero", "32", "2"), ("partial", "32", "2")]
    assert all(r["diff"] and r["diff_ci_low"] and r["diff_ci_high"] for r in table if r["padding"] == "partial")
    evaluate.main(["tables", str(sweep), "--out", str(tmp_path / "logged")])
    logged = {r["padding"]: (r["run1"], r["run2"]) for r in rows(tmp_path / "logged" / "best.csv")}
    assert {r["padding"]: (r["run1"], r["run2"]) for r in table if r["size"] == "32"} == logged
    md = (out / "resolution.md").read_text()
    assert "each run's best.pt evaluated on each run's own val set at test size s: the short side resized to each " \
           "run's own resize rule (data.resize_size / data.image_size), then the centre s x s crop; trained at " \
           "test_resnet: 32x32" in md
    assert (out / "resolution.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_torchrun_shards_the_val_set_once(sweep, tmp_path):
    """Two gloo processes on CPU: each scores its shard (45 images: 23 + 22), rank 0 alone reports, and the
    numbers are those of one process."""
    root, rd = one_run(sweep, tmp_path)
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(REPO / "evaluate.py"), "tables", str(root), "--from-checkpoints", "--out", str(out), *CPU]
    res = run(cmd)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    assert res.stdout.count("wrote ") == 5 and "warning:" not in res.stderr
    assert {r["ok"] for r in rows(out / "checkpoint_integrity.csv")} == {"True"}
    entries = [json.loads(p.read_text()) for p in (rd.path / CACHE_DIR).glob("*.json")]
    assert entries and {e["result"]["count"] for e in entries} == {45}


@pytest.mark.parametrize("extra, message", [
    (["resolution", "--sizes", "0"], "--sizes 0: 0 is not a size"),
    (["resolution", "--sizes", "a,32"], "--sizes a,32: 'a' is not a whole number of pixels"),
    (["resolution", "--sizes", "32", "--resize-ratio", "0.5"], "--resize-ratio 0.5: must be >= 1"),
    (["tables", "--limit", "10"], "--limit: for re-evaluated checkpoints only; add --from-checkpoints"),
    (["tables", "--from-checkpoints", "--batch-size", "0"], "--batch-size 0: must be at least 1"),
    (["tables", "--from-checkpoints", "--tolerance", "-1"], "--tolerance -1.0: must be a number >= 0"),
    (["tables", "--from-checkpoints", "--data", "NOWHERE"], "is not a directory"),
])
def test_bad_input_is_one_line(sweep, tmp_path, capsys, extra, message):
    extra = [str(tmp_path / "nowhere") if e == "NOWHERE" else e for e in extra]
    assert evaluate.main([extra[0], str(sweep), "--out", str(tmp_path / "o"), *CPU, *extra[1:]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and len(err.strip().splitlines()) == 1, err


def test_a_sweep_without_checkpoints_is_one_line(tmp_path, capsys):
    root = tmp_path / "s"
    make_run(root, "resnet18", "zero", 0, curve(80))
    assert evaluate.main(["tables", str(root), "--from-checkpoints", "--out", str(tmp_path / "o"), *CPU]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: no checkpoint to re-evaluate: resnet18/zero/seed0: no best.pt") and \
        len(err.strip().splitlines()) == 1


def test_help_names_the_new_options(capsys):
    for command, options in (("tables", ["--from-checkpoints", "--data", "--recompute", "--tolerance"]),
                             ("resolution", ["--sizes", "--resize-ratio", "--amp"])):
        with pytest.raises(SystemExit) as exc:
            evaluate.main([command, "--help"])
        out = capsys.readouterr().out
        assert exc.value.code == 0 and all(option in out for option in options)


def test_cache_notices_val_images_changed_under_the_same_path(sweep, data_root, tmp_path, monkeypatch, capsys):
    """The cache key holds the val files' digest: an image replaced in the val tree (same path, same config)
    means every checkpoint is evaluated again, not served the numbers of the old images."""
    root, _ = one_run(sweep, tmp_path)
    data = tmp_path / "data"
    shutil.copytree(data_root, data)
    real, calls = loop.validate, []
    monkeypatch.setattr(loop, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    args = ["tables", str(root), "--from-checkpoints", "--data-root", str(data), "--out", str(tmp_path / "out"),
            *CPU]
    assert evaluate.main(args) == 0 and calls
    evaluations = len(calls)
    calls.clear()
    assert evaluate.main(args) == 0 and calls == []
    image = sorted((data / "val").rglob("*.jpg"))[0]
    shutil.copyfile(sorted((data / "val").rglob("*.jpg"))[-1], image)  # another class's picture, same name
    capsys.readouterr()
    assert evaluate.main(args) == 0 and len(calls) == evaluations
    assert "served from the cache" not in capsys.readouterr().out


@pytest.mark.parametrize("command", [["cross"], ["all"], ["eval"]])
def test_torchrun_scores_each_image_once_and_rank_0_alone_writes(sweep, tmp_path, command):
    """cross and all shard the val set over the ranks (each image scored once, as one process scores it);
    eval FILE runs on rank 0 alone. Only rank 0 writes. Before, every rank evaluated everything on GPU 0 and
    wrote the same files."""
    root, rd = one_run(sweep, tmp_path)
    single, out = tmp_path / "single", tmp_path / "out"
    if command == ["eval"]:
        source = [str(rd.best_checkpoint), "--data-root", rd.read_info()["config"]["data"]["root"]]
    else:
        source = [str(root), "--recompute"]
    assert evaluate.main([*command, *source, "--out", str(single), *CPU]) == 0
    res = run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
               str(REPO / "evaluate.py"), *command, *source, "--out", str(out), *CPU])
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    written = [line for line in res.stdout.splitlines() if line.startswith("wrote ")]
    assert written and len(written) == len(set(written)), written
    assert (out / "cross.csv").read_text() == (single / "cross.csv").read_text()
    if command == ["eval"]:
        # one progress bar: tqdm starts each with "0/N [00:00<?, ?eval/s]"
        assert len(re.findall(r"cross-testing:\s+0%\|\s*\| 0/\d+ \[00:00<\?, \?eval/s\]$", res.stderr,
                              re.MULTILINE)) == 1, res.stderr
    else:
        entries = [json.loads(p.read_text()) for p in (rd.path / CACHE_DIR).glob("*.json")]
        sharded = [e for e in entries if e["key"]["processes"] == 2]
        assert len(sharded) == 4 and {e["result"]["count"] for e in sharded} == {45}


def test_a_checkpoint_replaced_with_its_size_and_times_kept_is_evaluated_again(sweep, tmp_path, capsys):
    """``cp -p``, ``rsync -t`` or a restore put other bytes under the same name, size and mtime: the cache is
    keyed on the content, so that checkpoint is evaluated again and the others still come from the cache."""
    root, rd = one_run(sweep, tmp_path)
    out = tmp_path / "out"
    args = ["tables", str(root), "--from-checkpoints", "--out", str(out), *CPU]
    assert evaluate.main(args) == 0
    before = rows(out / "best_from_checkpoints.csv")[0]
    best, st = rd.best_checkpoint, rd.best_checkpoint.stat()
    ckpt = load_checkpoint(best)  # other weights, same keys and shapes: torch.save writes the same size
    weights = ckpt["model"]
    for name in weights:
        if name.endswith("fc.weight"):
            weights[name] = -weights[name]
    save_checkpoint(ckpt, best)
    os.utime(best, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert (best.stat().st_size, best.stat().st_mtime_ns) == (st.st_size, st.st_mtime_ns)
    capsys.readouterr()
    assert evaluate.main(args) == 0
    printed = capsys.readouterr().out
    assert "1 checkpoint evaluation(s)" in printed and "5 of 6 from the cache" in printed, printed
    assert rows(out / "best_from_checkpoints.csv")[0] != before


def test_one_evaluation_serves_every_report_that_asks_for_it(sweep, tmp_path, capsys, monkeypatch):
    """Cross-testing's diagonal, tables --from-checkpoints' best.pt and resolution at the run's own size are
    the same evaluation (content, padding, val set, size, precision, device): made once."""
    root, rd = one_run(sweep, tmp_path)
    real, calls = loop.validate, []
    monkeypatch.setattr(loop, "validate", lambda *a, **k: calls.append(1) or real(*a, **k))
    assert evaluate.main(["cross", str(root), "--out", str(tmp_path / "cross"), *CPU]) == 0
    assert len(calls) == 4  # zero (its own), partial, reflect, replicate
    assert evaluate.main(["resolution", str(root), "--sizes", "32", "--out", str(tmp_path / "res"), *CPU]) == 0
    assert len(calls) == 4 and "all 1 checkpoint evaluations served from the cache" in capsys.readouterr().out
    assert evaluate.main(["tables", str(root), "--from-checkpoints", "--out", str(tmp_path / "t"), *CPU]) == 0
    best_epoch = load_checkpoint(rd.best_checkpoint)["epoch"]
    assert len(calls) == 4 + KEEP - (best_epoch > EPOCHS - KEEP)  # best.pt, and its twin epoch file, cached


def test_an_edited_user_mode_is_evaluated_again(tmp_path, data_root):
    """The key holds a digest of the module that defines the run's padding mode: edit its pad(), and the old
    numbers are not served."""
    code = tmp_path / "code"
    code.mkdir()
    module = code / "edited_mode.py"
    source = ("import dataclasses\nimport torch.nn.functional as F\nfrom padlib.padding import PadThenConvolve\n\n\n"
              "@dataclasses.dataclass(frozen=True)\nclass ConstPad(PadThenConvolve):\n"
              "    def pad(self, input, pads):\n        return F.pad(input, pads, value=VALUE)\n")
    module.write_text(source.replace("VALUE", "0.5"))
    sys.path.insert(0, str(code))
    try:
        make_model_run(tmp_path / "sweep", tmp_path / "data", "edited_mode.ConstPad", 0)
    finally:
        sys.path.remove(str(code))
    cmd = [sys.executable, "evaluate.py", "tables", str(tmp_path / "sweep"), "--from-checkpoints",
           "--out", str(tmp_path / "out"), *CPU]
    outputs = []
    for value in ("0.5", "0.5", "3.0"):
        module.write_text(source.replace("VALUE", value))
        res = run(cmd, extra_env={"PYTHONPATH": str(code)})
        assert res.returncode == 0, res.stderr[-2000:]
        outputs.append(res.stdout)
    assert "served from the cache" in outputs[1]
    assert "served from the cache" not in outputs[2] and "1 checkpoint evaluation(s)" in outputs[2]


def test_the_device_is_part_of_the_key():
    key = dict(checkpoint_sha256="0" * 64, val={"name": "x"}, val_digest="v", padding="zero", precision="fp32")
    cpu, cuda = checkpoint_key(**key, device="cpu: A (AVX512) x2 threads"), checkpoint_key(**key, device="cuda: B")
    assert cache_path(Path("r"), cpu) != cache_path(Path("r"), cuda)

"""Starting from pretrained weights: model.weights=PATH and model.pretrained=true load real files (torchvision
and timm state dicts, safetensors, padlib checkpoints, the paper authors' format) into a fresh model in any
padding, reset a classifier of another shape, refuse anything else that does not fit, and are recorded."""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from padlib.checkpoint import load_checkpoint
from padlib.errors import PadlibError
from padlib.models import build_model
from padlib.rundir import RunDir, find_runs
from padlib.starting_weights import head_keys, load_into, load_starting_weights
from tests.train_helpers import REPO, interrupt, metrics_without_timing, run, sweep_cmd, train_cmd

RESNET18_URL_NAME = "resnet18-f37072fd.pth"  # torchvision's ResNet18_Weights.IMAGENET1K_V1


def weights_of(seed: int, classes: int, arch: str = "resnet18") -> dict[str, torch.Tensor]:
    torch.manual_seed(seed)
    return build_model(arch, classes).state_dict()


def assert_loaded(model: torch.nn.Module, file_weights: dict[str, torch.Tensor], except_head: bool = False) -> None:
    head = head_keys(model) if except_head else set()
    own = model.state_dict()
    for key, value in file_weights.items():
        if key not in head:
            assert torch.equal(own[key], value), key


@pytest.mark.parametrize("kind", ["pth", "safetensors", "padlib", "authors"])
def test_every_file_kind_loads_exactly(tmp_path, kind):
    weights = weights_of(1, 10)
    path = tmp_path / f"w.{'safetensors' if kind == 'safetensors' else 'pt'}"
    if kind == "pth":
        torch.save(weights, path)
    elif kind == "safetensors":
        save_file(weights, str(path))
    elif kind == "padlib":
        torch.save({"model": weights, "arch": "resnet18", "padding": "zero", "epoch": 3,
                    "config": {"model": {"name": "resnet18"}, "seed": 1}}, path)
    else:  # the paper authors' released checkpoints: DataParallel's module. prefix, arch pd<arch>
        torch.save({"arch": "pdresnet18", "best_prec1": 70.0,
                    "state_dict": {f"module.{k}": v for k, v in weights.items()}}, path)
    model = build_model("resnet18", 10, "partial")
    record = load_starting_weights(model, {"name": "resnet18", "weights": str(path)})
    assert_loaded(model, weights)
    assert record["sha256"] and record["size"] == path.stat().st_size and record["head_reset"] is False
    if kind in ("padlib", "authors"):
        assert record["arch"] == "resnet18" and record["padding"] == ("zero" if kind == "padlib" else "partial")


def test_a_classifier_of_another_shape_is_initialised_afresh(tmp_path):
    path = tmp_path / "imagenet.pth"
    torch.save(weights_of(1, 1000), path)
    torch.manual_seed(5)
    model = build_model("resnet18", 10)
    fresh_head = {k: v.clone() for k, v in model.state_dict().items() if k in head_keys(model)}
    record = load_starting_weights(model, {"name": "resnet18", "weights": str(path)})
    assert record["head_reset"] is True and head_keys(model) == {"fc.weight", "fc.bias"}
    assert_loaded(model, torch.load(path), except_head=True)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in fresh_head.items())


def test_a_vgg_and_a_timm_head_are_found():
    assert head_keys(build_model("vgg16_bn", 10)) == {"classifier.6.weight", "classifier.6.bias"}
    assert head_keys(build_model("test_resnet", 10, source="timm")) == {"fc.weight", "fc.bias"}


@pytest.mark.parametrize("content, message", [
    ({"model": weights_of(1, 10, "resnet34"), "arch": "resnet34"}, "holds a resnet34, this run builds a resnet18"),
    (weights_of(1, 10, "resnet34"), r"weights do not fit ResNet: \d+ unexpected \(layer1.2.conv1.weight"),
    ({"model": {"conv1.weight": torch.zeros(1)}}, r"\d+ missing \(bn1.weight"),
])
def test_weights_of_another_architecture_are_one_clear_error(tmp_path, content, message):
    path = tmp_path / "w.pt"
    torch.save(content, path)
    with pytest.raises(PadlibError, match=message):
        load_starting_weights(build_model("resnet18", 10), {"name": "resnet18", "weights": str(path)})


def test_pretrained_weights_come_from_torchvisions_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    cached = tmp_path / "torch" / "hub" / "checkpoints" / RESNET18_URL_NAME
    cached.parent.mkdir(parents=True)
    torch.save(weights_of(7, 1000), cached)
    model = build_model("resnet18", 10, "reflect")
    record = load_starting_weights(model, {"name": "resnet18", "pretrained": True})
    assert record["source"] == "pretrained" and record["name"].startswith("torchvision ResNet18_Weights")
    assert record["path"] == str(cached) and record["head_reset"] is True
    assert_loaded(model, torch.load(cached), except_head=True)


def test_a_missing_pretrained_file_offline_is_one_clear_error(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(PadlibError, match=f"put https://download.pytorch.org/models/{RESNET18_URL_NAME} at "
                                          f"{tmp_path}/torch/hub/checkpoints/{RESNET18_URL_NAME}"):
        load_starting_weights(build_model("resnet18", 10), {"name": "resnet18", "pretrained": True})


# --- end to end: train.py -----------------------------------------------------------------------------

# the smallest steps the trainer accepts (lr > 0): the parameters stay within 1e-6 of where they started,
# while weights that were not loaded would differ from the file's by ~0.1
FROZEN = ("trainer.optim.lr=1e-12", "trainer.optim.momentum=0", "trainer.optim.weight_decay=0", "trainer.epochs=1")


def _weight_file(tmp_path: Path, name: str, seed: int, classes: int = 3) -> Path:
    path = tmp_path / name
    torch.save(weights_of(seed, classes), path)
    return path


@pytest.mark.slow
@pytest.mark.parametrize("processes", [1, 2])
def test_training_starts_from_the_files_weights(tmp_path, data_root, processes):
    """With lr 1e-12 the parameters hardly move: after the run they are the file's (on every DDP rank)."""
    weights = _weight_file(tmp_path, "start.pth", 3)
    run_dir = tmp_path / "run"
    cmd = train_cmd(run_dir, data_root, f"model.weights={weights}", "padding=partial", *FROZEN)
    if processes == 2:
        cmd[1:2] = ["-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", cmd[1]]
    res = run(cmd, timeout=600)
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-3000:]
    ckpt = load_checkpoint(RunDir(run_dir).best_checkpoint)
    file = torch.load(weights)
    params = {k for k, _ in build_model("resnet18", 3).named_parameters()}
    assert all(torch.allclose(ckpt["model"][k], file[k], rtol=0, atol=1e-6) for k in params)
    assert not torch.allclose(build_model("resnet18", 3).state_dict()["conv1.weight"], file["conv1.weight"], atol=1e-2)
    info = RunDir(run_dir).read_info()
    assert info["init_weights"]["sha256"] == ckpt["init_weights"]["sha256"] and info["init_weights"]["path"] == str(
        weights.resolve())


@pytest.mark.slow
def test_two_starting_files_are_two_runs_the_evaluator_keeps_apart(tmp_path, data_root):
    a, b = _weight_file(tmp_path, "a.pth", 1), _weight_file(tmp_path, "b.pth", 2)
    sweep = tmp_path / "sweep"
    res = run(sweep_cmd(sweep, data_root, f"model.weights={a},{b}", "trainer.epochs=1", "trainer.progress=false"),
              timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert len(find_runs(sweep)) == 2
    res = run([sys.executable, "evaluate.py", "tables", str(sweep), "--out", str(tmp_path / "out")])
    assert res.returncode == 0, res.stderr
    md = (tmp_path / "out" / "tables.md").read_text()
    assert "| resnet18 [weights=a.pth " in md and "| resnet18 [weights=b.pth " in md


@pytest.mark.slow
def test_an_interrupted_fine_tuning_run_resumes_from_its_own_checkpoint(tmp_path, data_root):
    """Resumed from last.pt, never from model.weights again (here: replaced by garbage meanwhile), and the
    metrics of an uninterrupted run."""
    weights = _weight_file(tmp_path, "start.pth", 4)
    reference, run_dir = tmp_path / "reference", tmp_path / "run"
    ft = (f"model.weights={weights}", "experiment=finetune", "trainer.epochs=2", "trainer.batch_size=16")
    res = run(train_cmd(reference, data_root, *ft), timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    cmd = train_cmd(run_dir, data_root, *ft)
    assert interrupt(cmd, "SIGKILL@2:2") == -signal.SIGKILL
    weights.write_bytes(b"not weights any more")
    res = run(cmd, timeout=600)
    assert res.returncode == 0, res.stderr[-3000:]
    assert metrics_without_timing(run_dir) == metrics_without_timing(reference)
    assert RunDir(run_dir).read_info()["init_weights"] == RunDir(reference).read_info()["init_weights"]


@pytest.mark.slow
def test_train_py_without_the_pretrained_file_offline_is_one_error_line(tmp_path, data_root):
    res = run(train_cmd(tmp_path / "run", data_root, "model.pretrained=true"),
              extra_env={"TORCH_HOME": str(tmp_path / "torch")})
    assert res.returncode == 2
    errors = [line for line in res.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "is not in the cache and could not be downloaded" in errors[0], res.stderr[-2000:]
    assert not RunDir(tmp_path / "run").exists()


@pytest.mark.parametrize("experiment", sorted(p.stem for p in (REPO / "configs" / "experiment").glob("*.yaml")))
def test_every_experiment_composes(experiment):
    """Each experiment file composes with the config tree (finetune_demo builds on finetune)."""
    from hydra import compose, initialize_config_dir
    from omegaconf import OmegaConf

    with initialize_config_dir(str(REPO / "configs"), version_base=None):
        cfg = compose("config", overrides=[f"experiment={experiment}", "seed=3"], return_hydra_config=True)
    OmegaConf.resolve(cfg.model)
    if experiment == "finetune_demo":
        assert cfg.trainer.optim.lr == 0.002 and cfg.trainer.epochs == 1  # finetune's lr, its own epochs
        assert cfg.model.weights == "sweeps/demo_fashion_mnist/resnet18/zero/seed3/checkpoints/best.pt"
        assert cfg.hydra.sweep.dir == "sweeps/finetune_demo_fashion_mnist"


def test_a_file_from_before_batchnorm_counted_its_steps_loads(tmp_path):
    """torchvision's vgg16_bn/vgg19_bn weights predate PyTorch 0.4.1: no num_batches_tracked keys."""
    file = {k: v for k, v in weights_of(5, 3).items() if not k.endswith("num_batches_tracked")}
    model = build_model("resnet18", 3)
    load_into(model, file, "old.pth")
    assert_loaded(model, file)

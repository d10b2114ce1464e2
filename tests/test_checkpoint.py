"""padlib/checkpoint.py: atomic, pickle-free checkpoint files, foreign checkpoint formats, the RNG state."""

import math
import os
import random

import numpy as np
import pytest
import torch

from padlib.checkpoint import (
    load_checkpoint,
    load_weights,
    model_state_dict,
    rng_state,
    save_checkpoint,
    set_rng_state,
)
from padlib.errors import PadlibError


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_checkpoint({"epoch": 1, "w": torch.ones(3)}, path)

    def crash(*a, **k):
        raise OSError("disk died mid-rename")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError):
        save_checkpoint({"epoch": 2, "w": torch.zeros(3)}, path)
    monkeypatch.undo()
    assert load_checkpoint(path)["epoch"] == 1
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]  # no temporary left behind


def test_load_checkpoint_refuses_arbitrary_objects(tmp_path):
    class Evil:
        def __reduce__(self):
            return (print, ("owned",))

    path = tmp_path / "evil.pt"
    torch.save({"x": Evil()}, path)
    with pytest.raises(PadlibError, match="evil.pt: refused to load"):
        load_checkpoint(path)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(PadlibError, match="junk.pt: not a readable checkpoint"):
        load_checkpoint(tmp_path / "junk.pt")
    with pytest.raises(PadlibError, match="not found"):
        load_checkpoint(tmp_path / "missing.pt")


def test_foreign_checkpoint_formats_load(tmp_path):
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    sd = model.state_dict()
    paper_style = {"arch": "x", "best_prec1": 76.6, "state_dict": {f"module.{k}": v for k, v in sd.items()}}
    examples_vgg = {"state_dict": {k.replace("0.", "0.module.", 1): v for k, v in sd.items()}}
    assert "0.module.weight" in examples_vgg["state_dict"]
    for ckpt in (paper_style, examples_vgg, {"model": sd}, sd):
        assert model_state_dict(ckpt).keys() == sd.keys()
        load_weights(model, ckpt, "file.pt")
    other = torch.nn.Sequential(torch.nn.Conv2d(3, 8, 3), torch.nn.BatchNorm2d(8))
    with pytest.raises(PadlibError, match=r"file\.pt: weights do not fit.*another shape"):
        load_weights(other, {"model": sd}, "file.pt")


def test_rng_state_roundtrip_through_a_safe_checkpoint(tmp_path):
    torch.manual_seed(3)
    random.seed(3)
    np.random.seed(3)
    save_checkpoint({"rng": rng_state()}, tmp_path / "c.pt")
    expected = (torch.rand(2), random.random(), np.random.rand())
    set_rng_state(load_checkpoint(tmp_path / "c.pt")["rng"])
    got = (torch.rand(2), random.random(), np.random.rand())
    assert torch.equal(expected[0], got[0]) and expected[1:] == got[1:]


def test_pickle_free_checkpoint_has_no_omegaconf(tmp_path):
    # the config goes in as a plain dict; a weights_only load must accept it
    save_checkpoint({"config": {"a": [1, 2.5, "x", None], "b": {"c": True}}, "best": -math.inf}, tmp_path / "c.pt")
    assert load_checkpoint(tmp_path / "c.pt")["config"]["b"]["c"] is True


def test_the_papers_files_without_batchnorm_step_counters_load():
    """Files saved before PyTorch 0.4.1 (the paper authors' and torchvision's vgg*_bn) have no
    num_batches_tracked; the evaluator's strict loader takes them, as BatchNorm's own loader does."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    old = {f"module.{k}": v + 1 for k, v in model.state_dict().items() if not k.endswith("num_batches_tracked")}
    fresh = torch.nn.Sequential(torch.nn.Conv2d(3, 4, 3), torch.nn.BatchNorm2d(4))
    load_weights(fresh, {"arch": "pdresnet50", "state_dict": old}, "pdresnet50.pth")
    assert torch.equal(fresh[0].weight, model[0].weight + 1) and int(fresh[1].num_batches_tracked) == 0

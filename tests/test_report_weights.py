"""Saved weights rebuilt for evaluation: the precision each set of weights is evaluated at, from a run or from
a single checkpoint file."""

import pytest
import torch

from padlib.errors import PadlibError
from padlib.report.collect import load_sweep
from padlib.report.weights import EvalOptions, eval_precision, weights_of_file, weights_of_run
from tests.report_fixtures import make_model_run


@pytest.mark.parametrize("precision, amp, device, expected", [
    ("bf16", "run", "cuda", ("bf16", False)),  # the run's own precision on a GPU
    ("fp16", "run", "cuda", ("fp16", False)),
    ("fp32", "run", "cuda", ("fp32", False)),
    ("bf16", "run", "cpu", ("bf16", False)),  # CPU autocast runs bf16, as the trainer's validation did
    ("fp16", "run", "cpu", ("fp32", True)),  # fp16 needs CUDA: fp32, and the caller warns
    ("bf16", "none", "cuda", ("fp32", False)),  # --amp overrides
    ("fp32", "auto", "cuda", ("bf16", False)),
    ("fp32", "bf16", "cpu", ("bf16", False)),
])
def test_eval_precision(precision, amp, device, expected, tmp_path):
    w = weights_of_run(load_sweep(make_model_run(tmp_path, tmp_path / "d", "zero", 0,
                                                 info={"precision": precision}).path).runs[0])
    assert w.precision == precision
    assert eval_precision(w, amp, torch.device(device)) == expected
    with pytest.raises(PadlibError, match="fp16 needs a CUDA device"):
        eval_precision(w, "fp16", torch.device("cpu"))
    assert EvalOptions().amp == "run"


@pytest.mark.parametrize("stored, expected, noted", [
    ({"precision": "fp16"}, "fp16", False),
    ({"config": {"trainer": {"amp": "bf16"}}}, "bf16", False),
    ({"config": {"trainer": {"amp": "auto"}}}, "fp32", True),  # which device is not recorded
    ({}, "fp32", False),  # a foreign file
])
def test_precision_of_a_checkpoint_file(stored, expected, noted, tmp_path):
    path = tmp_path / "w.pt"
    w, notes = weights_of_file(path, {"arch": "resnet18", **stored}, None, None, "synthetic", str(tmp_path), 4,
                               "auto")
    assert w.precision == expected
    assert any("--amp bf16" in n for n in notes) == noted

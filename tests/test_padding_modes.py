"""Padding as an extension point (issue 15): the mode interface and registry, symmetric padding, and a
user's mode from outside padlib trained by train.py and evaluated by evaluate.py."""

from __future__ import annotations

import dataclasses
import json
import sys

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from padlib.errors import PadlibError
from padlib.padding import (
    PADDING_MODES,
    PaddedConv2d,
    PadThenConvolve,
    PartialConv2d,
    convert_padding,
    get_padding,
    register_padding,
)
from padlib.padding.index_pad import pad_input
from tests.train_helpers import REPO, run, train_cmd

EXAMPLE = REPO / "examples" / "user_padding"


def _np_pad(x: torch.Tensor, pads, mode: str) -> torch.Tensor:
    left, right, top, bottom = pads
    width = [(0, 0)] * (x.dim() - 2) + [(top, bottom), (left, right)]
    return torch.from_numpy(np.pad(x.detach().numpy(), width, mode=mode))


@pytest.mark.parametrize("pads", [(1, 1, 1, 1), (2, 1, 3, 0), (3, 3, 2, 2)])
@pytest.mark.parametrize("size", [(3, 4), (5, 5), (7, 6)])
def test_symmetric_is_numpys_symmetric(pads, size):
    """Values are np.pad(mode='symmetric'); the gradient adds each padded pixel's onto its source."""
    x = torch.randn(2, 3, *size, dtype=torch.float64, requires_grad=True)
    got = pad_input(x, pads, get_padding("symmetric"))
    torch.testing.assert_close(got, _np_pad(x, pads, "symmetric"), rtol=0, atol=0)
    # Gradient reference: the adjoint of the same numpy pad, built from a one-hot per input pixel.
    upstream = torch.randn_like(got)
    (grad,) = torch.autograd.grad(got, x, upstream)
    eye = torch.eye(size[0] * size[1], dtype=torch.float64).view(-1, *size)
    basis = _np_pad(eye, pads, "symmetric")  # (pixels, H', W'): where each pixel lands
    want = torch.einsum("pij,ncij->ncp", basis, upstream).view_as(x)
    torch.testing.assert_close(grad, want)


@pytest.mark.parametrize("size", [(1, 1), (2, 3), (6, 7)])
def test_symmetric_conv_matches_numpy_pad_then_conv_and_falls_back_on_small_maps(size):
    """PaddedConv2d in symmetric mode (folded on tiny maps) equals np.pad + conv; pad > size replicates."""
    torch.manual_seed(0)
    conv = convert_padding(nn.Conv2d(3, 4, 5, padding=2).double(), "symmetric")
    assert isinstance(conv, PaddedConv2d) and conv.mode.name == "symmetric"
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    height, width = size
    padded = x
    # symmetric needs pad <= size: the too-small axis is replicated, as reflect's is.
    padded = torch.from_numpy(
        np.pad(padded.numpy(), [(0, 0), (0, 0), (0, 0), (2, 2)], mode="symmetric" if width >= 2 else "edge")
    )
    padded = torch.from_numpy(
        np.pad(padded.numpy(), [(0, 0), (0, 0), (2, 2), (0, 0)], mode="symmetric" if height >= 2 else "edge")
    )
    torch.testing.assert_close(conv(x), F.conv2d(padded, conv.weight, conv.bias))


def test_every_mode_round_trips_to_zero_and_shares_the_state_dict():
    """Any mode converts back to zero padding exactly, and its checkpoint loads into any other mode."""
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=5).eval()
    x = torch.randn(2, 3, 40, 36)
    with torch.no_grad():
        want = model(x)
        keys = list(model.state_dict())
        for mode in PADDING_MODES:
            out = convert_padding(model, mode)(x)
            assert torch.isfinite(out).all(), mode
            assert list(model.state_dict()) == keys, mode
            other = convert_padding(torchvision.models.resnet18(num_classes=5), "partial")
            other.load_state_dict(model.state_dict())  # a checkpoint of any mode loads into any other
        torch.testing.assert_close(convert_padding(model, "zero")(x), want, rtol=0, atol=0)
    assert all(type(m) is nn.Conv2d for m in model.modules() if isinstance(m, nn.Conv2d))


def test_unknown_unimportable_and_bad_parameters_are_clear_errors():
    with pytest.raises(PadlibError, match="unknown; use one of zero, reflect.*symmetric.*distribution"):
        get_padding("mirror")
    with pytest.raises(PadlibError, match="cannot be imported.*registered mode: zero"):
        get_padding({"mode": "custom", "_target_": "no_such_package.Pad"})
    with pytest.raises(PadlibError, match="not a padlib PaddingMode"):
        get_padding({"mode": "custom", "_target_": "torch.nn.Conv2d"})
    with pytest.raises(PadlibError, match="needs padding._target_"):
        get_padding({"mode": "custom", "_target_": None})
    with pytest.raises(PadlibError, match="no parameter colour; its parameters: variant"):
        get_padding({"mode": "distribution", "colour": 1})
    with pytest.raises(PadlibError, match="variant 'mean_median' is unknown"):
        get_padding({"mode": "distribution", "variant": "mean_median"})


def test_a_registered_user_mode_is_converted_like_padlibs_own():
    """A mode registered by name goes through the same interface: spec, label and layer carry it."""

    @register_padding("test_constant")
    @dataclasses.dataclass(frozen=True)
    class ConstantPad(PadThenConvolve):
        value: float = 1.0

        def pad(self, input, pads):
            return F.pad(input, pads, value=self.value)

    mode = get_padding({"mode": "test_constant", "value": 2.0})
    assert mode.label == "test_constant(value=2.0)" and mode.params() == {"value": 2.0}
    assert get_padding(mode.spec()) == mode  # the recorded spec rebuilds it
    conv = convert_padding(nn.Conv2d(1, 1, 3, padding=1, bias=False), mode)
    nn.init.ones_(conv.weight)
    out = conv(torch.zeros(1, 1, 3, 3))
    assert out[0, 0, 1, 1] == 0 and out[0, 0, 0, 0] == 2.0 * 5  # five taps read the constant 2
    assert "mode=test_constant(value=2.0)" in repr(conv)


def test_partial_is_a_reweight_mode_of_the_same_interface():
    conv = convert_padding(nn.Conv2d(2, 2, 3, padding=1), get_padding("partial"))
    assert isinstance(conv, PartialConv2d) and conv.mode.axis_ratio(2, 3) == 1.5


@pytest.mark.slow
def test_symmetric_and_a_user_mode_from_outside_padlib_train_and_evaluate(tmp_path):
    """`train.py padding=symmetric` and docs/PADDING.md's example (examples/user_padding/mypads.py, not
    importable from padlib) train one epoch each; evaluate.py tables and cross testing rebuild both."""
    sweep, extra = tmp_path / "sweep", {"PYTHONPATH": str(EXAMPLE)}
    for name, padding in (
        ("user", ["padding=custom", "padding._target_=mypads.MeanPad", "+padding.detach=true"]),
        ("sym", ["padding=symmetric"]),
    ):
        cmd = train_cmd(sweep / name, tmp_path / "data", "model=resnet18", "trainer.epochs=1", *padding)
        result = run(cmd, extra_env=extra)
        assert result.returncode == 0, result.stdout + result.stderr
    info = json.loads((sweep / "user" / "run.json").read_text())
    assert info["padding"] == "mean(detach=True)"
    assert info["padding_spec"] == {"mode": "mean", "_target_": "mypads.MeanPad", "detach": True}
    assert json.loads((sweep / "sym" / "run.json").read_text())["padding"] == "symmetric"
    evaluate = [sys.executable, str(REPO / "evaluate.py")]
    out = tmp_path / "report"
    result = run([*evaluate, "tables", str(sweep), "--out", str(out)], extra_env=extra)
    assert result.returncode == 0, result.stdout + result.stderr
    tables = (out / "tables.md").read_text()
    assert "mean(detach=True)" in tables and "symmetric" in tables
    result = run(
        [
            *evaluate,
            "cross",
            str(sweep),
            "--out",
            str(out),
            "--paddings",
            "zero,symmetric,mypads.MeanPad",
            "--limit",
            "12",
            "--workers",
            "0",
        ],
        extra_env=extra,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    cross = (out / "cross.md").read_text()
    assert "mean(detach=True)" in cross and "symmetric" in cross and "| mean |" in cross.replace("  ", " ")
    # Without the user's package importable, that run is left out with one warning naming it and why.
    result = run([*evaluate, "cross", str(sweep), "--out", str(out), "--limit", "12", "--workers", "0"])
    assert result.returncode == 0, result.stderr
    warning = "warning: user: left out of cross-testing: padding._target_ 'mypads.MeanPad' cannot be imported"
    assert warning in result.stderr

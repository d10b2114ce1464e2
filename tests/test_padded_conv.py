"""PaddedConv2d against torch's own padding modes, timm's TF-'same' conv, and maps too small to reflect or wrap."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from padlib.padding import PaddedConv2d, convert_padding
from padlib.padding.padded_conv import pad_input

MODES = ["zeros", "reflect", "replicate", "circular"]


def _twin(conv: nn.Conv2d, cls=PaddedConv2d, **kwargs) -> nn.Conv2d:
    new = cls(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        conv.stride,
        conv.padding,
        conv.dilation,
        conv.groups,
        conv.bias is not None,
        **kwargs,
    )
    new.load_state_dict(conv.state_dict())
    return new


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "kernel,stride,padding,dilation,groups,size",
    [
        (3, 1, 1, 1, 1, (6, 7)),
        (3, 2, (1, 2), 1, 2, (7, 8)),
        (4, 1, "same", 1, 1, (5, 6)),
        (3, 1, "same", 2, 4, (6, 6)),
        (5, 2, 2, 1, 1, (3, 3)),  # pad 2 on a 3-pixel axis: every mode still defined
    ],
)
def test_matches_nn_conv2d_padding_mode(mode, kernel, stride, padding, dilation, groups, size):
    torch.manual_seed(0)
    plain = nn.Conv2d(4, 4, kernel, stride, padding, dilation, groups, padding_mode=mode)
    padded = _twin(plain, padding_mode=mode)
    x = torch.randn(2, 4, *size)
    torch.testing.assert_close(padded(x), plain(x))


@pytest.mark.parametrize("mode", MODES)
def test_tf_same_matches_timm(mode):
    from timm.layers import Conv2dSame
    from timm.layers.padding import pad_same_arg

    torch.manual_seed(0)
    timm_conv = Conv2dSame(3, 5, 3, stride=2)
    padded = _twin(timm_conv, padding_mode=mode, tf_same=True)
    for size in ((8, 8), (7, 10)):
        x = torch.randn(2, 3, *size)
        pads = pad_same_arg(list(size), [3, 3], [2, 2])
        mode_name = "constant" if mode == "zeros" else mode
        want = F.conv2d(F.pad(x, pads, mode=mode_name), timm_conv.weight, timm_conv.bias, 2)
        torch.testing.assert_close(padded(x), want)
    if mode == "zeros":
        torch.testing.assert_close(padded(x), timm_conv(x))


@pytest.mark.parametrize(
    "mode,size,pad",
    [
        ("reflect", (1, 1), 1),
        ("reflect", (2, 2), 2),
        ("reflect", (1, 5), 1),  # only the height is too small
        ("reflect", (5, 2), 3),
        ("circular", (2, 2), 3),
        ("circular", (1, 4), 2),
    ],
)
def test_too_small_axis_falls_back_to_replicate(mode, size, pad):
    x = torch.randn(2, 3, *size)
    got = pad_input(x, (pad, pad, pad, pad), mode)
    height, width = size
    fits = (lambda n: pad < n) if mode == "reflect" else (lambda n: pad <= n)
    want = F.pad(x, (pad, pad, 0, 0), mode=mode if fits(width) else "replicate")
    want = F.pad(want, (0, 0, pad, pad), mode=mode if fits(height) else "replicate")
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("mode", ["reflect", "circular", "replicate"])
def test_where_defined_pad_input_is_f_pad(mode):
    x = torch.randn(1, 2, 4, 5)
    torch.testing.assert_close(pad_input(x, (2, 1, 3, 0), mode), F.pad(x, (2, 1, 3, 0), mode=mode))


def test_resnet_on_28x28_runs_with_1x1_maps():
    torch.manual_seed(0)
    model = torchvision.models.resnet18(num_classes=10)
    for mode in ("reflect", "circular", "replicate"):
        out = convert_padding(model, mode)(torch.randn(2, 3, 28, 28))
        out.sum().backward()
        assert out.shape == (2, 10) and torch.isfinite(out).all(), mode


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize(
    "padding,tf_same,size",
    [(1, False, (6, 7)), (0, True, (7, 8)), (2, False, (2, 1))],  # last: too small, replicate fallback
)
def test_unbatched_input_equals_batched(mode, padding, tf_same, size):
    torch.manual_seed(0)
    conv = PaddedConv2d(3, 4, 3, stride=2, padding=padding, padding_mode=mode, tf_same=tf_same)
    x = torch.randn(3, *size, requires_grad=True)
    want = conv(x[None])[0]
    upstream = torch.randn(want.shape)
    (want_grad,) = torch.autograd.grad(want, x, upstream)
    got = conv(x)
    (got_grad,) = torch.autograd.grad(got, x, upstream)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)

"""PaddedConv2d against torch's own padding modes, timm's TF-'same' conv, and maps too small to reflect or wrap."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision
from torch import nn

from padlib.padding import PaddedConv2d, convert_padding, folded_conv
from padlib.padding.index_pad import pad_input

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
    torch.testing.assert_close(got, _f_pad_reference(x, (pad, pad, pad, pad), mode))


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


def _f_pad_reference(x, pads, mode):
    """torch's own F.pad, one axis at a time, replicating an axis too small for reflect/circular."""
    left, right, top, bottom = pads
    height, width = x.shape[-2:]
    if mode == "zeros":
        return F.pad(x, pads)

    def fits(pad, size):
        return pad < size if mode == "reflect" else pad <= size if mode == "circular" else True

    x = F.pad(x, (left, right, 0, 0), mode=mode if fits(max(left, right), width) else "replicate")
    return F.pad(x, (0, 0, top, bottom), mode=mode if fits(max(top, bottom), height) else "replicate")


# kernel, stride, padding, dilation, groups, (H, W): large maps pad in one pass (index_pad); maps no
# larger than the kernel take the folded product (folded_conv), fallbacks to replication included.
GEOMETRIES = [
    (3, 1, 1, 1, 1, (6, 7)),
    (3, 2, (1, 2), 1, 2, (7, 8)),
    (3, 1, 2, 2, 4, (6, 6)),
    (7, 2, 3, 1, 1, (9, 10)),
    (3, 1, 1, 1, 1, (1, 1)),  # tiny: one position, every tap folded onto the one pixel
    (3, 1, 1, 1, 1, (2, 2)),
    (3, 2, 1, 1, 1, (2, 2)),
    (3, 1, 1, 1, 2, (1, 5)),  # only the height is too small to reflect
    (3, 1, 3, 1, 1, (2, 2)),  # pad beyond the kernel's reach
    (5, 2, 2, 1, 4, (3, 3)),  # grouped, on the grouped-conv branch of the folded product
    (4, 1, (1, 2), 1, 1, (2, 3)),
]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("kernel,stride,padding,dilation,groups,size", GEOMETRIES)
@pytest.mark.parametrize("layout", ["contiguous", "channels_last", "unbatched"])
@pytest.mark.parametrize("fold_cost", [folded_conv.FOLD_COST, 0])
def test_matches_f_pad_reference_forward_and_backward(
    mode, kernel, stride, padding, dilation, groups, size, layout, fold_cost, monkeypatch
):
    """Issue 12: every mode equals torch's F.pad + conv2d in value and in every gradient (input, weight, bias).
    fold_cost 0 folds every map smaller than the kernel (at batch 2 the cost model would pad them)."""
    monkeypatch.setattr(folded_conv, "FOLD_COST", fold_cost)
    torch.manual_seed(0)
    conv = PaddedConv2d(
        4, 4, kernel, stride, padding, dilation, groups, padding_mode=mode, dtype=torch.float64
    )
    nn.init.normal_(conv.bias)
    x = torch.randn(2, 4, *size, dtype=torch.float64)
    x = x[0] if layout == "unbatched" else x
    x = x.to(memory_format=torch.channels_last) if layout == "channels_last" else x
    x.requires_grad_(True)
    pads = tuple(nn.Conv2d(4, 4, kernel, stride, padding, dilation)._reversed_padding_repeated_twice)
    want = F.conv2d(_f_pad_reference(x, pads, mode), conv.weight, conv.bias, stride, 0, dilation, groups)
    got = conv(x)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, rtol=1e-10, atol=1e-10)
    upstream = torch.randn_like(want)
    tensors = [x, conv.weight, conv.bias]
    for g, w in zip(
        torch.autograd.grad(got, tensors, upstream), torch.autograd.grad(want, tensors, upstream), strict=True
    ):
        torch.testing.assert_close(g, w, rtol=1e-10, atol=1e-10)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("pads", [(1, 1, 1, 1), (2, 1, 3, 0), (0, 2, 1, 0), (3, 3, 3, 3)])
@pytest.mark.parametrize("size", [(1, 1), (2, 3), (4, 5), (7, 6)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_pad_input_is_f_pad_forward_and_backward(mode, pads, size, channels_last):
    """The one-pass pad (index_pad) equals F.pad exactly, and its gradient is F.pad's."""
    torch.manual_seed(0)
    x = torch.randn(2, 3, *size, dtype=torch.float64)
    x = (x.to(memory_format=torch.channels_last) if channels_last else x).requires_grad_(True)
    want = _f_pad_reference(x, pads, mode)
    got = pad_input(x, pads, mode)
    assert torch.equal(got, want)
    if size != (1, 1):  # a 1x1 map's strides fit both layouts; torch's own modes disagree on them
        assert got.is_contiguous(memory_format=torch.channels_last) == channels_last
    upstream = torch.randn_like(want)
    torch.testing.assert_close(
        torch.autograd.grad(got, x, upstream)[0], torch.autograd.grad(want, x, upstream)[0]
    )


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
def test_pad_input_traced_by_torch_func_matches_eager(mode):
    """Under torch.func (and torch.compile) pad_input takes plain ops instead of its autograd Function."""
    x = torch.randn(2, 3, 5, 4, dtype=torch.float64)
    pads = (2, 1, 1, 2)
    got = torch.func.grad(lambda t: pad_input(t, pads, mode).sin().sum())(x)
    x_grad = x.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(_f_pad_reference(x_grad, pads, mode).sin().sum(), x_grad)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize("mode", MODES)
def test_autocast_bf16_on_tiny_and_large_maps(mode):
    """bf16 autocast: the folded product and the padded conv give nn.Conv2d's output dtype and close values."""
    torch.manual_seed(0)
    conv = PaddedConv2d(8, 8, 3, padding=1, padding_mode=mode)
    for size in ((1, 1), (2, 2), (9, 9)):
        x = torch.randn(2, 8, *size)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = conv(x)
        assert out.dtype == torch.bfloat16
        torch.testing.assert_close(out.float(), conv(x), rtol=0.05, atol=0.05)


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular"])
@pytest.mark.parametrize("size", [(5, 6), (2, 2)])
def test_forward_mode_and_double_backward(mode, size):
    """Forward-mode AD and gradients of gradients go through the one-pass pad and the folded product."""
    import torch.autograd.forward_ad as fwAD

    torch.manual_seed(0)
    conv = PaddedConv2d(2, 3, 3, padding=1, padding_mode=mode, dtype=torch.float64)
    x = torch.randn(1, 2, *size, dtype=torch.float64, requires_grad=True)
    tangent = torch.randn_like(x)
    with fwAD.dual_level():
        got = fwAD.unpack_dual(conv(fwAD.make_dual(x, tangent))).tangent

    def reference(t):
        return F.conv2d(_f_pad_reference(t, (1, 1, 1, 1), mode), conv.weight, conv.bias)

    _, want = torch.func.jvp(reference, (x,), (tangent,))
    torch.testing.assert_close(got, want)
    assert torch.autograd.gradgradcheck(lambda t: F.silu(conv(t)), (x,))


# Review of the fast paths (issue 12): each of these failed before its fix.


@pytest.mark.parametrize("mode", ["reflect", "partial"])
@pytest.mark.parametrize("size", [(1, 1), (6, 6)])
def test_a_first_call_under_inference_mode_does_not_poison_training(mode, size):
    """Evaluation under torch.inference_mode first (caches built then) must not break later training:
    first- and second-order gradients still work."""
    conv = convert_padding(nn.Conv2d(4, 4, 3, padding=1), mode)
    x = torch.randn(8, 4, *size)
    with torch.inference_mode():
        conv(x)
    x = x.clone().requires_grad_(True)
    (grad,) = torch.autograd.grad(F.silu(conv(x)).sum(), x, create_graph=True)
    grad.sum().backward()
    assert conv.weight.grad is not None


@pytest.mark.parametrize("groups", [1, 2])
@pytest.mark.parametrize("channels_last", [False, True])
def test_folded_output_has_nn_conv2d_layout(groups, channels_last):
    """On tiny maps (the folded product) the output is laid out as nn.Conv2d's would be."""
    conv = PaddedConv2d(4, 4, 3, padding=1, groups=groups, padding_mode="reflect")
    plain = nn.Conv2d(4, 4, 3, padding=1, groups=groups)
    x = torch.randn(64, 4, 2, 2)
    x = x.to(memory_format=torch.channels_last) if channels_last else x
    for fmt in (torch.contiguous_format, torch.channels_last):
        assert conv(x).is_contiguous(memory_format=fmt) == plain(x).is_contiguous(memory_format=fmt)
    if not channels_last:
        conv(x).view(64, -1)


@pytest.mark.parametrize("mode", ["reflect", "partial"])
def test_meta_device_on_tiny_maps(mode):
    conv = convert_padding(nn.Conv2d(3, 4, 3, padding=1, device="meta"), mode)
    assert conv(torch.empty(64, 3, 2, 2, device="meta")).shape == (64, 4, 2, 2)


def test_compiled_with_dynamic_shapes_makes_one_graph_for_many_sizes():
    """Under torch.compile a torch-known mode pads with F.pad: sizes stay symbolic, no graph per size."""
    from torch._dynamo.testing import CompileCounter

    torch.compiler.reset()
    counter = CompileCounter()
    conv = PaddedConv2d(2, 2, 3, padding=1, padding_mode="reflect")
    compiled = torch.compile(conv, backend=counter, dynamic=True)
    for size in range(8, 16):
        x = torch.randn(2, 2, size, size + 1)
        torch.testing.assert_close(compiled(x), conv(x))
    assert counter.frame_count == 1


@pytest.mark.parametrize("mode", ["reflect", "circular"])
def test_jit_trace_and_save(mode, tmp_path):
    """torch.jit.trace (and so TorchScript export) sees F.pad, not padlib's autograd Function."""
    conv = PaddedConv2d(2, 2, 3, padding=1, padding_mode=mode)
    x = torch.randn(1, 2, 7, 7)
    traced = torch.jit.trace(conv, x)
    torch.jit.save(traced, tmp_path / "conv.pt")
    torch.testing.assert_close(torch.jit.load(tmp_path / "conv.pt")(x), conv(x))


@pytest.mark.parametrize("mode", ["reflect", "replicate", "circular", "symmetric"])
@pytest.mark.parametrize("padding", [(0, 1), (2, 0)])
def test_padding_on_one_axis_only(mode, padding):
    """A conv padded along one axis only (e.g. padding=(0, 1)) pads that axis and leaves the other."""
    torch.manual_seed(0)
    conv = convert_padding(nn.Conv2d(2, 3, 3, padding=padding).double(), mode)
    x = torch.randn(2, 2, 6, 7, dtype=torch.float64)
    pads = (padding[1], padding[1], padding[0], padding[0])
    want = F.conv2d(
        torch.from_numpy(
            np.pad(
                x.numpy(),
                [(0, 0), (0, 0), pads[2:], pads[:2]],
                mode={
                    "reflect": "reflect",
                    "replicate": "edge",
                    "circular": "wrap",
                    "symmetric": "symmetric",
                }[mode],
            )
        ),
        conv.weight,
        conv.bias,
    )
    torch.testing.assert_close(conv(x), want)


@pytest.mark.parametrize("mode", ["reflect", "partial"])
def test_fold_once_folds_the_kernels_once_per_size(mode, monkeypatch):
    """Inside fold_once (what validate uses) the kernels are folded once per input size; outside, every call
    folds the weights it is given (tests/test_fold_cache.py: never stale)."""
    from padlib.padding import folded_conv

    calls = []
    real = folded_conv.fold_kernels
    monkeypatch.setattr(folded_conv, "fold_kernels", lambda *a: calls.append(1) or real(*a))
    conv = convert_padding(nn.Conv2d(4, 4, 3, padding=1), mode)
    x = torch.randn(64, 4, 2, 2)
    with torch.inference_mode():
        conv(x), conv(x)
        assert len(calls) == 2
        with folded_conv.fold_once(conv):
            first = conv(x)
            conv(x), conv(x[:8])
        assert len(calls) == 3
    torch.testing.assert_close(first, conv(x))

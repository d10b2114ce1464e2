"""PartialConv2d against a loop reference written from the paper's Eq. 1-2, plus its caching and runtime contracts."""

from __future__ import annotations

import copy
import itertools
import pickle

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import padlib.padding.partial_conv as partial_conv
from padlib.padding import PADDING_MODES, PartialConv2d, convert_padding, folded_conv


def _pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


def reference_partial_conv(x, weight, bias, stride, dilation, groups, pads):
    """out[i, j] = (W . X_window) * k_h*k_w / (#taps inside) + b, and 0 where no tap is inside; plain loops."""
    left, right, top, bottom = pads
    (sh, sw), (dh, dw) = _pair(stride), _pair(dilation)
    n, c, h, w = x.shape
    cout, cin_g, kh, kw = weight.shape
    xp = F.pad(x, (left, right, top, bottom))
    ho = (h + top + bottom - dh * (kh - 1) - 1) // sh + 1
    wo = (w + left + right - dw * (kw - 1) - 1) // sw + 1
    rows = []
    for i in range(ho):
        cols = []
        for j in range(wo):
            inside = sum(
                0 <= i * sh + u * dh - top < h and 0 <= j * sw + v * dw - left < w
                for u in range(kh)
                for v in range(kw)
            )
            window = xp[
                :, :, i * sh : i * sh + dh * (kh - 1) + 1 : dh, j * sw : j * sw + dw * (kw - 1) + 1 : dw
            ]
            per_group = [
                torch.einsum(
                    "ncuv,ocuv->no",
                    window[:, g * cin_g : (g + 1) * cin_g],
                    weight[g * cout // groups : (g + 1) * cout // groups],
                )
                for g in range(groups)
            ]
            value = torch.cat(per_group, dim=1)
            if inside == 0:
                value = value * 0
            else:
                value = value * (kh * kw / inside)
                if bias is not None:
                    value = value + bias
            cols.append(value)
        rows.append(torch.stack(cols, dim=-1))
    return torch.stack(rows, dim=-2)


def timm_same_pads(h, w, kernel, stride, dilation):
    from timm.layers.padding import pad_same_arg

    return tuple(
        int(p) for p in pad_same_arg([h, w], list(_pair(kernel)), list(_pair(stride)), list(_pair(dilation)))
    )


# cin, cout, kernel, stride, padding, dilation, groups, bias, (H, W)
CONFIGS = [
    (3, 4, 3, 1, 1, 1, 1, True, (7, 9)),
    (4, 6, 3, 2, 1, 1, 2, False, (8, 8)),
    (4, 4, 3, 1, 1, 1, 4, True, (5, 6)),  # depthwise
    (4, 8, 3, 2, 1, 1, 4, True, (7, 7)),  # depthwise multiplier 2, odd input
    (2, 3, (3, 5), (1, 2), (1, 2), 1, 1, True, (6, 9)),
    (2, 3, 5, 2, 2, 2, 1, True, (9, 7)),  # dilation
    (2, 3, 4, 1, "same", 1, 1, True, (6, 7)),  # even kernel: one more pixel after
    (2, 3, (2, 3), 1, "same", (2, 1), 1, False, (5, 5)),
    (2, 3, 3, 1, "valid", 1, 1, True, (5, 5)),
    (2, 3, 7, 2, 3, 1, 1, True, (3, 4)),  # input smaller than the kernel
    (2, 3, 3, 1, 3, 1, 1, True, (2, 2)),  # pad beyond the kernel's reach: all-hole outputs
    (2, 2, 1, 1, 1, 1, 1, True, (3, 3)),  # 1x1 kernel with padding: the whole border is holes
    (2, 3, 3, 3, 2, 1, 1, False, (1, 1)),
    (2, 3, 3, 1, 0, 1, 1, True, (4, 4)),
]


def _grads(out, tensors, seed=0):
    upstream = torch.randn(out.shape, dtype=out.dtype, generator=torch.Generator().manual_seed(seed))
    return torch.autograd.grad(out, tensors, upstream)


def _check_against_reference(conv, x, pads):
    x = x.clone().requires_grad_(True)
    out = conv(x)
    ref = reference_partial_conv(x, conv.weight, conv.bias, conv.stride, conv.dilation, conv.groups, pads)
    assert out.shape == ref.shape
    torch.testing.assert_close(out, ref, rtol=1e-6, atol=1e-6)
    params = [x, conv.weight] + ([conv.bias] if conv.bias is not None else [])
    for got, want in zip(_grads(out, params), _grads(ref, params), strict=True):
        torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("cin,cout,kernel,stride,padding,dilation,groups,bias,size", CONFIGS)
@pytest.mark.parametrize("fold_cost", [None, 0])
def test_matches_reference_forward_and_backward(
    cin, cout, kernel, stride, padding, dilation, groups, bias, size, fold_cost, monkeypatch
):
    """fold_cost 0: maps smaller than the kernel take the folded product even at this small batch."""
    if fold_cost is not None:
        monkeypatch.setattr(folded_conv, "FOLD_COST", fold_cost)
    torch.manual_seed(0)
    conv = PartialConv2d(cin, cout, kernel, stride, padding, dilation, groups, bias, dtype=torch.float64)
    if bias:
        nn.init.normal_(conv.bias)
    x = torch.randn(2, cin, *size, dtype=torch.float64)
    # torch's own split of the padding (odd pixel after for 'same') is the reference's pads.
    pads = tuple(
        nn.Conv2d(cin, cout, kernel, stride, padding, dilation, groups)._reversed_padding_repeated_twice
    )
    _check_against_reference(conv, x, pads)


# cin, cout, kernel, stride, dilation, groups, bias, (H, W)
TF_SAME_CONFIGS = [
    (2, 3, 3, 2, 1, 1, True, (7, 8)),
    (2, 3, (5, 4), (2, 3), (1, 2), 1, False, (9, 10)),
    (4, 4, 5, 2, 1, 4, True, (8, 8)),  # timm's depthwise stride-2 'same'
    (2, 3, 3, 2, 1, 1, True, (1, 2)),
]


@pytest.mark.parametrize("cin,cout,kernel,stride,dilation,groups,bias,size", TF_SAME_CONFIGS)
def test_tf_same_matches_reference(cin, cout, kernel, stride, dilation, groups, bias, size):
    torch.manual_seed(0)
    conv = PartialConv2d(
        cin, cout, kernel, stride, 0, dilation, groups, bias, tf_same=True, dtype=torch.float64
    )
    x = torch.randn(2, cin, *size, dtype=torch.float64)
    _check_against_reference(conv, x, timm_same_pads(*size, kernel, stride, dilation))


def _in_image_taps(size, pad, kernel, stride, dilation):
    out = (size + 2 * pad - dilation * (kernel - 1) - 1) // stride + 1
    return [sum(0 <= i * stride + u * dilation - pad < size for u in range(kernel)) for i in range(out)]


def test_ones_image_and_kernel_give_taps_plus_bias_off_holes():
    """W.X counts the in-image taps here, so every non-hole output is exactly k*k + b (each r applied once)."""
    grid = itertools.product((1, 2, 3, 6, 7), (0, 1, 2, 4), (1, 2, 3, 5), (1, 2, 3), (1, 2))
    for size, pad, kernel, stride, dilation in grid:
        if size + 2 * pad < dilation * (kernel - 1) + 1:
            continue
        conv = PartialConv2d(1, 1, kernel, stride, pad, dilation)
        nn.init.ones_(conv.weight)
        nn.init.constant_(conv.bias, 0.5)
        with torch.no_grad():
            out = conv(torch.ones(2, 1, size, size + 1))
        rows = torch.tensor(_in_image_taps(size, pad, kernel, stride, dilation))
        cols = torch.tensor(_in_image_taps(size + 1, pad, kernel, stride, dilation))
        inside = (rows[:, None] * cols[None, :]) > 0
        want = torch.where(inside, kernel * kernel + 0.5, 0.0).expand_as(out)
        torch.testing.assert_close(out, want, msg=f"size={size} pad={pad} k={kernel} s={stride} d={dilation}")


@pytest.mark.parametrize(
    "kernel,stride,padding,size",
    [(3, 1, 1, (16, 17)), (3, 2, 1, (16, 17)), (7, 2, 3, (9, 12)), (3, 1, 1, (2, 9))],
)
def test_rescaled_strips_are_exactly_the_border(kernel, stride, padding, size):
    """Only outputs with r != 1 are touched, each once: the speed of the layer rests on it."""
    conv = PartialConv2d(1, 1, kernel, stride, padding)
    scaling = partial_conv.border_scaling(conv, *size, torch.device("cpu"), torch.float32)
    touched = torch.zeros(scaling.ratio.shape)
    for rows, cols in scaling.strips:
        touched[rows, cols] += 1
    torch.testing.assert_close(touched, (scaling.ratio != 1).float())


def test_interior_is_plain_conv_and_constant_image_stays_constant():
    conv = PartialConv2d(1, 1, 3, padding=1, bias=False)
    nn.init.ones_(conv.weight)
    out = conv(torch.ones(1, 1, 5, 6))
    # Re-weighting makes a constant image look the same at the border as inside (the paper's point).
    torch.testing.assert_close(out, torch.full_like(out, 9.0))
    plain = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    plain.weight = conv.weight
    x = torch.randn(1, 1, 5, 6)
    torch.testing.assert_close(conv(x)[..., 1:-1, 1:-1], plain(x)[..., 1:-1, 1:-1])


def test_ratio_computed_once_per_size_not_per_batch(monkeypatch):
    calls = []

    def counting(*args, **kwargs):
        calls.append(args[1:3])
        return border_scaling(*args, **kwargs)

    border_scaling = partial_conv.border_scaling
    monkeypatch.setattr(partial_conv, "border_scaling", counting)
    conv = PartialConv2d(2, 3, 3, padding=1)
    for batch in (1, 4, 2, 7):
        conv(torch.randn(batch, 2, 6, 6))
    assert calls == [(6, 6)]
    conv(torch.randn(3, 2, 6, 5))
    conv(torch.randn(1, 2, 6, 5))
    conv(torch.randn(1, 2, 6, 6))
    assert calls == [(6, 6), (6, 5)]
    conv.double()(torch.randn(2, 2, 6, 6, dtype=torch.float64))
    assert calls == [(6, 6), (6, 5), (6, 6)]


def test_no_state_dict_entries():
    conv = PartialConv2d(2, 3, 3, padding=1)
    conv(torch.randn(1, 2, 5, 5))
    assert list(conv.state_dict()) == ["weight", "bias"]
    assert list(conv.state_dict()) == list(nn.Conv2d(2, 3, 3, padding=1).state_dict())


@pytest.mark.parametrize("bias", [True, False])
def test_autocast_bf16_keeps_output_dtype(bias):
    torch.manual_seed(0)
    conv = PartialConv2d(3, 4, 3, padding=1, bias=bias)
    x = torch.randn(2, 3, 6, 6)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out = conv(x)
        plain_dtype = F.conv2d(x, conv.weight).dtype
    assert out.dtype == plain_dtype == torch.bfloat16
    torch.testing.assert_close(out.float(), conv(x), rtol=0.05, atol=0.05)
    out.float().sum().backward()
    assert conv.weight.grad.dtype == torch.float32


def test_bf16_module_keeps_dtype():
    conv = PartialConv2d(3, 4, 3, padding=1).to(torch.bfloat16)
    assert conv(torch.randn(1, 3, 5, 5, dtype=torch.bfloat16)).dtype == torch.bfloat16


@pytest.mark.parametrize("bias", [True, False])
def test_channels_last_follows_nn_conv2d(bias):
    torch.manual_seed(0)
    conv = PartialConv2d(4, 6, 3, stride=2, padding=1, bias=bias)
    plain = nn.Conv2d(4, 6, 3, stride=2, padding=1, bias=bias)
    x = torch.randn(2, 4, 9, 8)
    x_cl = x.to(memory_format=torch.channels_last)
    out = conv(x_cl)
    assert out.is_contiguous(memory_format=torch.channels_last) == plain(x_cl).is_contiguous(
        memory_format=torch.channels_last
    )
    torch.testing.assert_close(out, conv(x))


def test_deepcopy_and_pickle_drop_the_cache_and_agree():
    conv = PartialConv2d(2, 3, 3, padding=1)
    x = torch.randn(2, 2, 5, 5)
    out = conv(x)
    for clone in (copy.deepcopy(conv), pickle.loads(pickle.dumps(conv))):
        assert clone._scaling_cache == {}
        torch.testing.assert_close(clone(x), out)
    assert len(conv._scaling_cache) == 1


def test_rejects_other_padding_modes_and_explicit_tf_same_padding():
    with pytest.raises(ValueError, match="padding_mode"):
        PartialConv2d(2, 3, 3, padding=1, padding_mode="reflect")
    with pytest.raises(ValueError, match="tf_same"):
        PartialConv2d(2, 3, 3, padding=1, tf_same=True)


def _border_net() -> nn.Module:
    """Small CNN whose borders matter: bias, stride 2, dilation, a 5x5 kernel and a timm TF-'same' conv."""
    from timm.layers import Conv2dSame

    return nn.Sequential(
        nn.Conv2d(3, 6, 3, padding=1),
        nn.ReLU(),
        nn.Conv2d(6, 6, 3, stride=2, padding=1, bias=False),
        nn.Conv2d(6, 6, 3, padding=2, dilation=2),
        nn.ReLU(),
        nn.Conv2d(6, 8, 5, stride=2, padding=2),
        Conv2dSame(8, 8, 3, stride=2),
        nn.AdaptiveAvgPool2d(1),
        nn.Flatten(),
        nn.Linear(8, 4),
    )


def _loss_and_grads(model, x, y):
    x = x.clone().requires_grad_(True)
    loss = F.cross_entropy(model(x), y)
    params = [x, *model.parameters()]
    return loss, torch.autograd.grad(loss, params)


@pytest.mark.parametrize("mode", PADDING_MODES)
def test_cold_torch_compile_matches_eager(mode):
    """Compiled before any eager call (empty ratio caches), every mode trains like eager, sizes changing."""
    torch.manual_seed(0)
    torch.compiler.reset()
    eager = convert_padding(_border_net(), mode)
    # aot_eager traces forward and backward like inductor without a C++ toolchain run (inductor
    # also passes; it just takes ~45 s per compile on CPU). fullgraph: no graph break is allowed.
    compiled = torch.compile(copy.deepcopy(eager), backend="aot_eager", fullgraph=True)
    # 19x21 leaves strips on every side; 13x13 makes deeper maps all border (one strip, holes).
    for batch, size in ((3, (19, 21)), (2, (19, 21)), (2, (13, 13))):
        x = torch.randn(batch, 3, *size)
        y = torch.randint(0, 4, (batch,))
        want_loss, want_grads = _loss_and_grads(eager, x, y)
        got_loss, got_grads = _loss_and_grads(compiled, x, y)
        torch.testing.assert_close(got_loss, want_loss, rtol=1e-5, atol=1e-6)
        for got, want in zip(got_grads, want_grads, strict=True):
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "kernel,stride,padding,bias,tf_same,size",
    [
        (3, 1, 1, True, False, (6, 7)),  # four strips
        (3, 2, 2, False, False, (5, 5)),
        (3, 1, 3, True, False, (2, 2)),  # no full row: one strip, holes
        (3, 2, 0, True, True, (7, 8)),
    ],
)
def test_unbatched_input_equals_batched(kernel, stride, padding, bias, tf_same, size):
    torch.manual_seed(0)
    conv = PartialConv2d(3, 4, kernel, stride, padding, bias=bias, tf_same=tf_same)
    x = torch.randn(3, *size, requires_grad=True)
    upstream = torch.randn(conv(x[None]).shape[1:])
    want = conv(x[None])[0]
    (want_grad,) = torch.autograd.grad(want, x, upstream)
    got = conv(x)
    assert got.shape == want.shape
    (got_grad,) = torch.autograd.grad(got, x, upstream)
    torch.testing.assert_close(got, want)
    torch.testing.assert_close(got_grad, want_grad)
    got_params = torch.autograd.grad(conv(x), list(conv.parameters()), upstream)
    want_params = torch.autograd.grad(conv(x[None])[0], list(conv.parameters()), upstream)
    for g, w in zip(got_params, want_params, strict=True):
        torch.testing.assert_close(g, w)


def _func_setup(bias=True):
    torch.manual_seed(0)
    conv = PartialConv2d(3, 4, 3, stride=2, padding=1, bias=bias)
    params = {k: v.detach() for k, v in conv.named_parameters()}
    xs = torch.randn(5, 3, 7, 8)
    return conv, params, xs


def test_vmap_of_grad_gives_per_sample_gradients():
    conv, params, xs = _func_setup()

    def loss(p, x):
        return torch.func.functional_call(conv, p, (x[None],)).pow(2).sum()

    per_sample = torch.func.vmap(torch.func.grad(loss), in_dims=(None, 0))(params, xs)
    for i, x in enumerate(xs):
        want = torch.autograd.grad(conv(x[None]).pow(2).sum(), list(conv.parameters()))
        for name, w in zip(params, want, strict=True):
            torch.testing.assert_close(per_sample[name][i], w)


def test_vmap_over_a_batch_and_grad_of_the_input():
    conv, _, xs = _func_setup()
    torch.testing.assert_close(torch.func.vmap(conv)(xs), conv(xs))
    got = torch.func.grad(lambda x: conv(x).sin().sum())(xs)
    x = xs.clone().requires_grad_(True)
    (want,) = torch.autograd.grad(conv(x).sin().sum(), x)
    torch.testing.assert_close(got, want)


def test_jacrev_and_jvp_match_autograd():
    conv, _, xs = _func_setup()
    x = xs[:1]
    jac = torch.func.jacrev(conv)(x)
    out = conv(x)
    basis = torch.eye(out.numel()).view(out.numel(), *out.shape)
    x_grad = x.clone().requires_grad_(True)
    rows = [torch.autograd.grad(conv(x_grad), x_grad, e)[0] for e in basis]
    torch.testing.assert_close(jac, torch.stack(rows).view(*out.shape, *x.shape))
    tangent = torch.randn_like(x)
    _, got = torch.func.jvp(conv, (x,), (tangent,))
    torch.testing.assert_close(got, (jac.reshape(out.numel(), -1) @ tangent.flatten()).view(out.shape))
    # Plain forward-mode AD takes the eager path: its in-place Function has a jvp of its own.
    import torch.autograd.forward_ad as fwAD

    with fwAD.dual_level():
        dual_tangent = fwAD.unpack_dual(conv(fwAD.make_dual(x, tangent))).tangent
    torch.testing.assert_close(dual_tangent, got)


@pytest.mark.parametrize("bias", [True, False])
@pytest.mark.parametrize("autocast", [False, True])
def test_eager_strips_and_functional_path_agree(monkeypatch, bias, autocast):
    """The in-place strip path and the whole-map path (compile, torch.func) give one forward and backward."""
    torch.manual_seed(0)
    conv = PartialConv2d(3, 4, 3, stride=2, padding=1, bias=bias)
    x = torch.randn(2, 3, 9, 8)

    def run():
        x_grad = x.clone().requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=autocast):
            out = conv(x_grad)
        return (out, *_grads(out.float(), [x_grad, *conv.parameters()]))

    fast = run()
    monkeypatch.setattr(partial_conv, "_functorch_active", lambda: True)
    functional = run()
    tol = {"rtol": 1.6e-2, "atol": 1e-2} if autocast else {"rtol": 1e-6, "atol": 1e-6}
    assert fast[0].dtype == functional[0].dtype
    for got, want in zip(functional, fast, strict=True):
        torch.testing.assert_close(got, want, **tol)


def test_meta_device_forward_reads_no_data():
    """The ratio comes from shapes alone: nothing on the forward path asks a tensor for its values."""
    conv = PartialConv2d(3, 4, 3, stride=2, padding=1, device="meta")
    out = conv(torch.empty(2, 3, 9, 8, device="meta"))
    assert out.shape == (2, 4, 5, 4) and out.device.type == "meta"


def test_ddp_single_process():
    import torch.distributed as dist

    store = dist.HashStore()
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)
    try:
        conv = PartialConv2d(2, 3, 3, padding=1)
        ddp = nn.parallel.DistributedDataParallel(conv)
        x = torch.randn(2, 2, 5, 5)
        ddp(x).sum().backward()
        torch.testing.assert_close(ddp(x), conv(x))
        assert conv.weight.grad is not None
    finally:
        dist.destroy_process_group()

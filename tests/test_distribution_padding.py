"""distribution_pad (Nguyen et al., ICIP 2019) against an independent NumPy reference of the authors' code."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from padlib.padding.distribution import distribution_pad, resample_matrix
from tests import distribution_reference as ref

VARIANTS = ["mean_interp", "mean_reflect"]

# torch.func.jvp's import warns about torch.jit.script; nothing here uses TorchScript.
pytestmark = pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:FutureWarning")


def _random(*shape: int, seed: int = 0, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed), dtype=dtype)


def _expected(x: torch.Tensor, pads, variant: str, small: str = "raise") -> torch.Tensor:
    return torch.from_numpy(ref.distribution_pad(x.detach().double().numpy(), pads, variant, small))


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "size,pads",
    [
        ((3, 3), (1, 1, 1, 1)),
        ((4, 4), (1, 1, 1, 1)),
        ((5, 8), (1, 1, 1, 1)),
        ((9, 6), (1, 1, 1, 1)),
        ((14, 14), (1, 1, 1, 1)),
        ((48, 48), (1, 1, 1, 1)),
        ((5, 5), (2, 2, 2, 2)),
        ((8, 11), (2, 2, 2, 2)),
        ((25, 13), (2, 2, 2, 2)),  # H=25, p=2: the size the authors' float32 ceil gets wrong
        ((7, 6), (1, 1, 2, 2)),  # p_h != p_w
        ((6, 9), (1, 2, 0, 1)),  # unequal pads, one side zero
        ((10, 7), (2, 1, 1, 0)),
        ((6, 6), (0, 0, 2, 1)),  # rows only
        ((5, 9), (3, 0, 0, 0)),  # one side only
    ],
)
def test_matches_reference(variant, size, pads):
    x = _random(2, 3, *size)
    out = distribution_pad(x, pads, variant)
    torch.testing.assert_close(out, _expected(x, pads, variant), rtol=0, atol=1e-12)
    left, right, top, bottom = pads
    assert torch.equal(out[..., top : top + size[0], left : left + size[1]], x)


@pytest.mark.parametrize("n,m", [(1, 3), (2, 6), (3, 5), (7, 11), (46, 50), (44, 48)])
def test_resampler_is_the_authors(n, m):
    torch.testing.assert_close(
        resample_matrix(n, m), torch.from_numpy(ref.resize_matrix(n, m)), rtol=0, atol=0
    )


@pytest.mark.parametrize("variant", VARIANTS)
def test_worked_example_3x3(variant):
    x = torch.arange(1.0, 10.0, dtype=torch.float64).reshape(1, 1, 3, 3)
    out = distribution_pad(x, (1, 1, 1, 1), variant)[0, 0]
    expected = torch.full((5, 5), 5.0, dtype=torch.float64)
    expected[1:4, 1:4] = x[0, 0]
    torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


def test_worked_example_4x4():
    x = torch.arange(16.0, dtype=torch.float64).reshape(1, 1, 4, 4)
    third = 1 / 3
    interp = [
        [5, 5, 5, 5 + third, 6 - third, 6],
        [5, 0, 1, 2, 3, 6],
        [5, 4, 5, 6, 7, 6],
        [6 + third, 8, 9, 10, 11, 7 + third],
        [8 - third, 12, 13, 14, 15, 9 - third],
        [9, 9, 9, 9 + third, 10 - third, 10],
    ]
    reflect = [
        [5, 5, 5, 5.5, 6, 5.5],
        [5, 0, 1, 2, 3, 5.5],
        [5, 4, 5, 6, 7, 5.5],
        [7, 8, 9, 10, 11, 7.5],
        [9, 12, 13, 14, 15, 9.5],
        [7, 7, 7, 7.5, 8, 7.5],
    ]
    for variant, table in (("mean_interp", interp), ("mean_reflect", reflect)):
        out = distribution_pad(x, (1, 1, 1, 1), variant)[0, 0]
        torch.testing.assert_close(out, torch.tensor(table, dtype=torch.float64), rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize(
    "size,pads",
    [
        ((1, 1), (1, 1, 1, 1)),
        ((2, 2), (1, 1, 1, 1)),
        ((3, 3), (1, 1, 1, 1)),
        ((1, 5), (1, 1, 1, 1)),
        ((5, 2), (1, 1, 1, 1)),
        ((3, 3), (2, 2, 2, 2)),
        ((2, 7), (2, 1, 2, 0)),
    ],
)
def test_small_maps_clip_the_window(variant, size, pads):
    x = _random(2, 3, *size, seed=1)
    out = distribution_pad(x, pads, variant)
    torch.testing.assert_close(out, _expected(x, pads, variant, small="clip"), rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("size,pad", [((1, 1), 1), ((2, 2), 1), ((3, 3), 1), ((3, 3), 2)])
def test_map_within_the_window_pads_its_global_mean(variant, size, pad):
    x = _random(1, 2, *size, seed=2)
    out = distribution_pad(x, (pad,) * 4, variant)
    border = out.clone()
    border[..., pad:-pad, pad:-pad] = float("nan")
    mean = x.mean(dim=(-2, -1), keepdim=True).expand_as(out)
    mask = border.isnan()
    torch.testing.assert_close(out[~mask], mean[~mask], rtol=0, atol=1e-12)


def test_one_row_map_by_hand():
    # 1x5, pad 1: the window is clipped to 1x3, so the means are m = [7/3, 14/3, 28/3] and every pad
    # row is the same; interp resizes m to 7 columns, reflect resizes m to 5 and mirrors it.
    x = torch.tensor([[[[1.0, 2.0, 4.0, 8.0, 16.0]]]], dtype=torch.float64)
    m0, m1, m2 = 7 / 3, 14 / 3, 28 / 3
    interp_row = [m0, m0, m0 + 2 / 7 * (m1 - m0), m0 + 5 / 7 * (m1 - m0), m1 + 1 / 7 * (m2 - m1)]
    interp_row += [m1 + 4 / 7 * (m2 - m1), m2]
    z = [m0, 0.8 * m0 + 0.2 * m1, 0.2 * m0 + 0.8 * m1, 0.6 * m1 + 0.4 * m2, m2]
    reflect_row = [z[1], *z, z[3]]
    for variant, row in (("mean_interp", interp_row), ("mean_reflect", reflect_row)):
        out = distribution_pad(x, (1, 1, 1, 1), variant)[0, 0]
        expected = torch.tensor([row, [row[0], 1, 2, 4, 8, 16, row[-1]], row], dtype=torch.float64)
        torch.testing.assert_close(out, expected, rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_gradient_is_the_interior_only(variant):
    pads = (1, 2, 2, 1)
    x = _random(2, 3, 7, 9).requires_grad_()
    upstream = _random(2, 3, 10, 12, seed=3)
    (grad,) = torch.autograd.grad(distribution_pad(x, pads, variant), x, upstream)
    assert torch.equal(grad, upstream[..., 2:9, 1:10])
    # forward mode: the tangent is padded by zeros
    tangent = _random(2, 3, 7, 9, seed=4)
    _, out_tangent = torch.func.jvp(lambda t: distribution_pad(t, pads, variant), (x.detach(),), (tangent,))
    assert torch.equal(out_tangent, F.pad(tangent, pads))
    with torch.autograd.forward_ad.dual_level():  # the same through the eager autograd node
        dual = distribution_pad(torch.autograd.forward_ad.make_dual(x, tangent), pads, variant)
        assert torch.equal(torch.autograd.forward_ad.unpack_dual(dual).tangent, F.pad(tangent, pads))


@pytest.mark.parametrize("variant", VARIANTS)
def test_torch_func(variant):
    x = _random(4, 3, 6, 7)
    pads = (1, 1, 1, 1)
    batched = torch.func.vmap(lambda s: distribution_pad(s, pads, variant))(x)
    torch.testing.assert_close(batched, distribution_pad(x, pads, variant), rtol=0, atol=1e-12)
    grad = torch.func.grad(lambda s: (distribution_pad(s, pads, variant) ** 2).sum())(x)
    torch.testing.assert_close(grad, 2 * x, rtol=0, atol=0)


@pytest.mark.parametrize("variant", VARIANTS)
def test_unbatched(variant):
    x = _random(2, 3, 6, 5)
    pads = (2, 1, 1, 2)
    torch.testing.assert_close(distribution_pad(x[0], pads, variant), distribution_pad(x, pads, variant)[0])


@pytest.mark.parametrize("variant", VARIANTS)
def test_channels_last(variant):
    x = _random(2, 4, 8, 9)
    last = x.to(memory_format=torch.channels_last)
    out = distribution_pad(last, (1, 1, 1, 1), variant)
    assert out.is_contiguous(memory_format=torch.channels_last) == F.pad(last, (1, 1, 1, 1)).is_contiguous(
        memory_format=torch.channels_last
    )
    torch.testing.assert_close(out, distribution_pad(x, (1, 1, 1, 1), variant), rtol=0, atol=1e-12)


@pytest.mark.parametrize("variant", VARIANTS)
def test_bf16_autocast(variant):
    conv = torch.nn.Conv2d(3, 4, 1)
    x = _random(2, 3, 10, 12, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = conv(x)
        out = distribution_pad(h, (1, 1, 1, 1), variant)
        plain = distribution_pad(x, (1, 1, 1, 1), variant)  # float32 in: autocast changes nothing
    assert h.dtype == out.dtype == torch.bfloat16 and plain.dtype == torch.float32
    torch.testing.assert_close(plain, distribution_pad(x, (1, 1, 1, 1), variant), rtol=0, atol=0)
    expected = _expected(h.float(), (1, 1, 1, 1), variant).to(torch.bfloat16)
    torch.testing.assert_close(out, expected)  # bf16 tolerances: the stats run in float32, rounded once
    out.float().sum().backward()
    assert conv.weight.grad is not None


@pytest.mark.parametrize(
    "variant,size,pads",
    [
        ("mean_interp", (7, 9), (1, 2, 2, 1)),
        ("mean_reflect", (7, 9), (1, 2, 2, 1)),
        ("mean_reflect", (1, 5), (1, 1, 1, 1)),  # small-map rule
    ],
)
def test_compile_matches_eager(variant, size, pads):
    torch._dynamo.reset()
    fn = torch.compile(lambda t: distribution_pad(t, pads, variant), backend="aot_eager", fullgraph=True)
    x = _random(2, 3, *size).requires_grad_()
    out = fn(x)
    torch.testing.assert_close(out, distribution_pad(x, pads, variant), rtol=0, atol=0)
    upstream = _random(*out.shape, seed=5)
    (grad,) = torch.autograd.grad(out, x, upstream)
    left, right, top, bottom = pads
    assert torch.equal(grad, upstream[..., top : top + size[0], left : left + size[1]])


def test_rejects_bad_arguments():
    x = _random(1, 1, 4, 4)
    with pytest.raises(ValueError, match="variant"):
        distribution_pad(x, (1, 1, 1, 1), "full_mean")
    with pytest.raises(ValueError, match="non-negative"):
        distribution_pad(x, (-1, 1, 1, 1), "mean_interp")
    with pytest.raises(ValueError, match="shape"):
        distribution_pad(x[0, 0], (1, 1, 1, 1), "mean_interp")
    with pytest.raises(TypeError, match="floating-point"):
        distribution_pad(x.long(), (1, 1, 1, 1), "mean_interp")


def test_zero_pads_is_a_copy():
    x = _random(1, 2, 4, 4)
    for variant in VARIANTS:
        assert torch.equal(distribution_pad(x, (0, 0, 0, 0), variant), x)


def test_reference_raises_where_the_authors_code_fails():
    # documents the rule that padlib extends: the authors' code has no mean map below the window's size
    with pytest.raises(ValueError):
        ref.distribution_pad(np.zeros((1, 1, 2, 2)), (1, 1, 1, 1), "mean_interp")

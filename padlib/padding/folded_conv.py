"""A padded conv on a map no larger than its kernel, as one matrix product with folded kernels.

Reflect, replicate and circular padding act on each axis alone and copy pixels from inside the map,
so a tap in the padding reads a pixel in the image; partial padding scales the taps inside by
``k / inside`` per axis (its ratio r factorises). Where the map is no larger than the kernel (the 1x1
and 2x2 maps of a CNN's last stages on small images) every window covers the whole map, and each
output is the map times a *folded* kernel: the weights of the taps that read the same pixel added,
times the mode's factor. Stacking one folded kernel per output position makes the layer one matrix
product over the unpadded map, with the multiply-adds zero padding needs and none of the padded taps
(padding first would multiply every tap: 9x the work on a 1x1 map with a 3x3 kernel, 2.25x on 2x2).

On larger maps the layers pad (``index_pad``) or rescale (partial) instead: there the border is a thin ring.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from padlib.padding.geometry import layer_pads, output_size, pair
from padlib.padding.index_pad import axis_source_map, zero_source
from padlib.padding.mode import AxisRatio, PixelSource


def axis_fold(
    mode: PixelSource | AxisRatio,
    size: int,
    before: int,
    after: int,
    kernel: int,
    stride: int,
    dilation: int,
) -> list[list[list[float]]]:
    """``fold[i][u][j]``: how much of tap ``u`` of output ``i`` lands on input pixel ``j`` of one axis.

    An axis too small for an index mode is replicated instead, as ``pad_input`` does.
    """
    reweight = hasattr(mode, "axis_ratio")
    # A re-weighting mode convolves the zero-padded map: taps outside read nothing.
    source = zero_source if reweight else axis_source_map(mode, size, before, after)
    n_out = (size + before + after - dilation * (kernel - 1) - 1) // stride + 1
    fold = [[[0.0] * size for _ in range(kernel)] for _ in range(n_out)]
    for i in range(n_out):
        for u in range(kernel):
            j = source(i * stride + u * dilation - before, size)
            if j is not None:
                fold[i][u][j] += 1.0
        if reweight:
            # This axis's factor of r; 0 where no tap is inside.
            inside = int(sum(map(sum, fold[i])))
            ratio = mode.axis_ratio(inside, kernel) if inside else 0.0
            fold[i] = [[w * ratio for w in tap] for tap in fold[i]]
    return fold


class Fold(NamedTuple):
    """Every output position's folded kernel of one input size, as a matrix applied to the kernel."""

    matrix: Tensor  # (kh*kw, Ho*Wo*height*width): tap (u, v) -> (position, pixel) weights
    bias_mask: Tensor | None  # (Ho*Wo,): 0 where partial padding has no tap inside (no bias there)
    out_size: tuple[int, int]
    in_size: tuple[int, int]


# Folding costs memory traffic (the folded kernels are written, read, and their gradient summed back)
# where the conv costs multiply-adds; one element moved costs about this many multiply-adds on a CPU
# (measured: resnet50 at 64 px, batch 8, where a 2x2 map folded was 10% slower per step).
FOLD_COST = 32


def is_tiny(conv: nn.Conv2d, input: Tensor) -> bool:
    """Whether ``input``'s map is small enough for the folded product to beat padding and convolving."""
    kh, kw = pair(conv.kernel_size)
    pixels, taps = input.shape[-1] * input.shape[-2], kh * kw
    batch = input.shape[0] if input.dim() == 4 else 1
    # Per output the product reads every pixel where the padded conv reads every tap; folding the
    # kernels adds about FOLD_COST * pixels / batch of that: together under the conv's work.
    # Inside fold_once (evaluation) each kernel is folded once: folding is then free.
    fold_cost = 0 if _memo(conv) is not None and not torch.is_grad_enabled() else FOLD_COST
    return pixels / taps * (1 + fold_cost / batch) < 1


_MEMO = "_padlib_folded_kernels"  # set on a conv only inside fold_once


def _memo(conv: nn.Module) -> dict[tuple, Tensor] | None:
    return conv.__dict__.get(_MEMO)


def fresh_state(state: dict[str, Any], caches: tuple[str, ...]) -> dict[str, Any]:
    """A conv's ``__dict__`` for deepcopy and pickle: derived data left behind (``caches`` emptied, no
    folded kernels), so a copy made inside ``fold_once`` does not keep them after it."""
    return {**{k: v for k, v in state.items() if k != _MEMO}, **{c: {} for c in caches}}


@contextlib.contextmanager
def fold_once(model: nn.Module) -> Iterator[nn.Module]:
    """A block in which ``model``'s weights do not change (an evaluation): each tiny-map conv folds its
    kernels once per input size instead of once per call. Outside it nothing is kept: whatever a user's
    code does to the weights (fused optimizers, ``.data`` edits, parametrizations, ``functional_call``),
    every call folds the weights it is given."""
    convs = [m for m in model.modules() if hasattr(m, "_fold_cache")]
    for conv in convs:
        conv.__dict__[_MEMO] = {}
    try:
        yield model
    finally:
        for conv in convs:
            conv.__dict__.pop(_MEMO, None)


def conv_fold(
    conv: nn.Conv2d,
    mode: PixelSource | AxisRatio,
    height: int,
    width: int,
    device: torch.device,
    dtype: torch.dtype,
) -> Fold:
    """The :class:`Fold` of ``conv`` in ``mode`` on a ``height`` x ``width`` input."""
    left, right, top, bottom = layer_pads(conv, height, width)
    (kh, kw), (sh, sw), (dh, dw) = pair(conv.kernel_size), pair(conv.stride), pair(conv.dilation)
    rows = torch.tensor(axis_fold(mode, height, top, bottom, kh, sh, dh), dtype=torch.float64)
    cols = torch.tensor(axis_fold(mode, width, left, right, kw, sw, dw), dtype=torch.float64)
    # Separable: tap (u, v) of output (i, j) lands on pixel (a, b) with weight rows[i,u,a] * cols[j,v,b].
    matrix = torch.einsum("iua,jvb->uvijab", rows, cols).reshape(kh * kw, -1)
    mask = None
    if hasattr(mode, "axis_ratio"):
        inside = torch.outer(rows.sum((1, 2)) > 0, cols.sum((1, 2)) > 0).flatten()
        mask = inside.to(device, dtype)
    out_size = output_size(height, top, bottom, kh, sh, dh), output_size(width, left, right, kw, sw, dw)
    return Fold(matrix.to(device, dtype), mask, out_size, (height, width))


def fold_kernels(weight: Tensor, fold: Fold, groups: int) -> Tensor:
    """Every output position's folded kernel, stacked as the output channels of one conv: (group, position, out)."""
    positions = fold.out_size[0] * fold.out_size[1]
    out_channels, in_per_group, kh, kw = weight.shape
    height, width = fold.in_size
    per_group = out_channels // groups
    # The fold is a sum of weights: kept in the weights' dtype, not autocast's (where autocast exists).
    device_type = weight.device.type
    no_autocast = (
        torch.autocast(device_type, enabled=False)
        if torch.amp.is_autocast_available(device_type)
        else contextlib.nullcontext()
    )
    with no_autocast:
        folded = weight.reshape(-1, kh * kw) @ fold.matrix
    folded = folded.view(groups, per_group, in_per_group, positions, height, width).permute(0, 3, 1, 2, 4, 5)
    return folded.reshape(groups * positions * per_group, in_per_group, height, width)


def folded_conv2d(input: Tensor, folded: Tensor, bias: Tensor | None, fold: Fold, groups: int) -> Tensor:
    """The padded conv of an ``input`` no larger than the kernel, by the ``folded`` kernels of ``fold``."""
    n_rows, n_cols = fold.out_size
    positions = n_rows * n_cols
    out_channels = folded.shape[0] // positions
    per_group = out_channels // groups
    if bias is not None:
        bias = bias.view(groups, 1, per_group).expand(groups, positions, per_group)
        if fold.bias_mask is not None:
            bias = bias * fold.bias_mask.view(1, positions, 1)
        bias = bias.reshape(-1)
    if groups == 1:
        # The kernel spans the map, so the conv is a matrix product, and oneDNN runs a linear layer
        # about 4x faster than the same product as a conv (measured: 2x2 maps, 256 channels).
        out = F.linear(input.flatten(-3), folded.flatten(1), bias)
    else:
        out = F.conv2d(input, folded, bias, groups=groups)
    out = out.reshape(*out.shape[: input.dim() - 3], groups, n_rows, n_cols, per_group).movedim(-1, -3)
    out = out.reshape(*out.shape[:-4], out_channels, n_rows, n_cols)
    # The layout nn.Conv2d would give: channels_last in, channels_last out; else contiguous.
    return out.contiguous(
        memory_format=torch.channels_last if is_channels_last(input) else torch.contiguous_format
    )


def is_channels_last(t: Tensor) -> bool:
    """Whether ``t`` is a 4-D channels_last tensor (and not also plainly contiguous, as a 1x1 map can be)."""
    if torch._C._are_functorch_transforms_active():
        return False  # vmap cannot say (and has no layouts of its own to keep)
    return t.dim() == 4 and t.is_contiguous(memory_format=torch.channels_last) and not t.is_contiguous()


FoldCache = dict[tuple, Any]


def fold_key(conv: nn.Conv2d, mode: PixelSource | AxisRatio, height: int, width: int, device: torch.device,
             dtype: torch.dtype) -> tuple:
    """Everything a :class:`Fold` depends on: the input size, the conv's geometry and the mode (a frozen
    dataclass: equal by value), the device and dtype."""
    return (height, width, conv.kernel_size, conv.stride, conv.dilation, conv.padding,
            getattr(conv, "tf_same", False), mode, device, dtype)


def tiny_map_forward(
    conv: nn.Conv2d, input: Tensor, mode: PixelSource | AxisRatio, cache: FoldCache
) -> Tensor:
    """``conv`` padded in ``mode`` on a map :func:`is_tiny` says is tiny. The fold (geometry only) is
    cached in eager; the folded kernels are computed from the weights at every call, except inside
    :func:`fold_once`, whose block promises that the weights do not change."""
    height, width = input.shape[-2:]
    device, dtype = conv.weight.device, conv.weight.dtype
    if torch.compiler.is_compiling():
        # Built in the graph as constants; the dict cache would only add guards.
        fold = conv_fold(conv, mode, height, width, device, dtype)
        return folded_conv2d(
            input, fold_kernels(conv.weight, fold, conv.groups), conv.bias, fold, conv.groups
        )
    key = fold_key(conv, mode, height, width, device, dtype)
    fold = cache.get(key)
    if fold is None:
        # Not an inference tensor even when first met under inference_mode: autograd uses it later.
        with torch.inference_mode(False):
            fold = cache[key] = conv_fold(conv, mode, height, width, device, dtype)
    memo = _memo(conv)
    if memo is None or torch.is_grad_enabled() or torch._C._are_functorch_transforms_active():
        kernels = fold_kernels(conv.weight, fold, conv.groups)
    else:
        # the block promised fixed weights; a weight swapped or edited in place anyway is folded again
        seen = _identity(conv.weight)
        kept = memo.get(key)
        if kept is None or kept[0] != seen:
            kept = memo[key] = (seen, fold_kernels(conv.weight, fold, conv.groups))
        kernels = kept[1]
    return folded_conv2d(input, kernels, conv.bias, fold, conv.groups)


def _identity(weight: Tensor) -> tuple:
    """Which tensor, and which write to it (inference tensors have no version counter): a cheap check that
    backs fold_once's promise, not a substitute for it (a fused optimizer writes without a version bump)."""
    version = -1 if weight.is_inference() else weight._version
    try:
        address = weight.data_ptr()
    except RuntimeError:  # no storage (meta)
        address = None
    return (id(weight), address, version)

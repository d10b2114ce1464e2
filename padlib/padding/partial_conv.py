"""Partial-convolution based padding (Liu et al. 2018, Eq. 1-2) as a drop-in ``nn.Conv2d``.

With ``W.X`` the conv over the zero-padded input without bias, ``out = (W.X) * r + b`` where
``r = k_h*k_w / (taps inside the image)``, and ``out = 0`` where no tap is inside. ``r`` is 1 away
from the border, so the layer runs the ordinary conv (bias included) and rescales the border:
``out = conv(X) * r + b * (inside - r)``. The taps inside factorise into a row count times a column
count, both plain functions of integer shapes, so ``r`` never needs a look at tensor data.

On maps no larger than the kernel, r folds into the kernels instead (``folded_conv``): one matrix
product. Elsewhere eager autograd rescales only the border strips, in place, with maps cached per input size: that keeps
the layer about as fast as zero padding. ``torch.compile`` (maps built in the graph, no cache) and
``torch.func`` transforms get the same formula on the whole map, out of place, with no custom
autograd Function: one fused elementwise op once compiled.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from padlib.padding.folded_conv import FoldCache, fold_key, fresh_state, is_tiny, tiny_map_forward
from padlib.padding.geometry import layer_pads, pair
from padlib.padding.mode import PaddingMode, get_padding
from padlib.padding.padded_conv import conv_like


def axis_taps(size: int, kernel: int, stride: int, dilation: int, before: int, after: int) -> list[int]:
    """In-image taps of each output position along one axis zero-padded by ``before`` and ``after``."""
    out = (size + before + after - dilation * (kernel - 1) - 1) // stride + 1
    return [sum(0 <= i * stride + u * dilation - before < size for u in range(kernel)) for i in range(out)]


def _layer_taps(conv: nn.Conv2d, height: int, width: int) -> tuple[list[int], list[int]]:
    """Per-row and per-column in-image tap counts of ``conv`` on a ``height`` x ``width`` input."""
    left, right, top, bottom = layer_pads(conv, height, width)
    (kh, kw), (sh, sw), (dh, dw) = pair(conv.kernel_size), pair(conv.stride), pair(conv.dilation)
    return axis_taps(height, kh, sh, dh, top, bottom), axis_taps(width, kw, sw, dw, left, right)


def _full_run(taps: list[int], kernel: int) -> tuple[int, int]:
    """[start, stop) of the positions with every tap inside; contiguous, as the window slides."""
    full = [i for i, t in enumerate(taps) if t == kernel]
    return (full[0], full[-1] + 1) if full else (0, 0)


def ratio_maps(
    conv: PartialConv2d, height: int, width: int, device: torch.device, dtype: torch.dtype
) -> tuple[Tensor, Tensor] | None:
    """``(r, inside - r)`` as ``(Ho, Wo)`` maps for a ``height`` x ``width`` input; None where r is all 1."""
    return _maps(*_layer_taps(conv, height, width), pair(conv.kernel_size), device, dtype, conv.mode)


def _maps(
    rows: list[int],
    cols: list[int],
    kernel: tuple[int, int],
    device: torch.device,
    dtype: torch.dtype,
    mode: ReweightOutput,
) -> tuple[Tensor, Tensor] | None:
    """``ratio_maps`` from the per-row and per-column tap counts."""
    kh, kw = kernel
    if all(t == kh for t in rows) and all(t == kw for t in cols):
        return None
    # r factorises: one factor per row and per column, multiplied in float64 and cast once.
    row_ratio = torch.tensor([mode.axis_ratio(t, kh) if t else 0.0 for t in rows], dtype=torch.float64)
    col_ratio = torch.tensor([mode.axis_ratio(t, kw) if t else 0.0 for t in cols], dtype=torch.float64)
    inside = torch.outer(torch.tensor(rows) > 0, torch.tensor(cols) > 0).double()
    ratio = torch.outer(row_ratio, col_ratio)
    return ratio.to(device, dtype), (inside - ratio).to(device, dtype)


@dataclass(frozen=True)
class BorderScaling:
    """Where and how much one input size's output is rescaled; ``strips`` cover every r != 1."""

    ratio: Tensor  # (Ho, Wo): r, 0 where no tap is inside
    share: Tensor  # (Ho, Wo): inside - r, the bias share conv's own bias misses
    strips: tuple[tuple[slice, slice], ...]  # (rows, cols) of the output where r != 1
    strip_ratios: tuple[Tensor, ...]  # r on each strip
    strip_shares: tuple[Tensor, ...]  # inside - r on each strip


def border_strips(
    rows: list[int], cols: list[int], kernel: tuple[int, int]
) -> tuple[tuple[slice, slice], ...]:
    """Top, bottom, left and right strips covering every output with a tap outside the image."""
    n_rows, n_cols = len(rows), len(cols)
    top, bottom = _full_run(rows, kernel[0])
    left, right = _full_run(cols, kernel[1])
    if top == bottom or left == right:
        return ((slice(0, n_rows), slice(0, n_cols)),)
    strips = [
        (slice(0, top), slice(0, n_cols)),
        (slice(bottom, n_rows), slice(0, n_cols)),
        (slice(top, bottom), slice(0, left)),
        (slice(top, bottom), slice(right, n_cols)),
    ]
    return tuple((r, c) for r, c in strips if r.stop > r.start and c.stop > c.start)


def border_scaling(
    conv: PartialConv2d, height: int, width: int, device: torch.device, dtype: torch.dtype
) -> BorderScaling | None:
    """The paper's ratio r for a ``height`` x ``width`` input and its border strips; None where r is all 1."""
    rows, cols = _layer_taps(conv, height, width)
    kernel = pair(conv.kernel_size)
    maps = _maps(rows, cols, kernel, device, dtype, conv.mode)
    if maps is None:
        return None
    ratio, share = maps
    strips = border_strips(rows, cols, kernel)
    return BorderScaling(
        ratio=ratio,
        share=share,
        strips=strips,
        strip_ratios=tuple(ratio[r, c] for r, c in strips),
        strip_shares=tuple(share[r, c] for r, c in strips),
    )


def _channel_sum(t: Tensor) -> Tensor:
    """Sum over every dim but channels, for a batched (N, C, H, W) or unbatched (C, H, W) map."""
    t = t.sum((-2, -1))
    return t.sum(0) if t.dim() == 2 else t


def _scale_strips(out: Tensor, bias: Tensor | None, scaling: BorderScaling) -> Tensor:
    """``out * r + bias * (inside - r)`` on the border strips of ``out``, in place."""
    for (rows, cols), ratio, share in zip(
        scaling.strips, scaling.strip_ratios, scaling.strip_shares, strict=True
    ):
        strip = out[..., rows, cols]
        strip.mul_(ratio)
        if bias is not None:
            strip.add_(bias.view(-1, 1, 1) * share)
    return out


class _ScaleBorder(torch.autograd.Function):
    """``out * r + bias * (inside - r)`` on the border strips of a fresh conv output, in place."""

    @staticmethod
    def forward(ctx: Any, out: Tensor, bias: Tensor | None, scaling: BorderScaling) -> Tensor:
        _scale_strips(out, bias, scaling)
        ctx.mark_dirty(out)
        ctx.scaling = scaling
        return out

    @staticmethod
    def jvp(ctx: Any, out_tangent: Tensor, bias_tangent: Tensor | None, _: None) -> Tensor:
        # The map is linear in (out, bias): its tangent is the same map, in place like the output.
        return _scale_strips(out_tangent, bias_tangent, ctx.scaling)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor | None, None]:
        scaling = ctx.scaling
        grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_bias = sum(
                _channel_sum(grad[..., rows, cols] * share)
                for (rows, cols), share in zip(scaling.strips, scaling.strip_shares, strict=True)
            )
        # The one full-size pass: the gradient may be shared with other branches, so no in-place.
        return grad * scaling.ratio, grad_bias, None


def _functorch_active() -> bool:
    """Whether a torch.func transform (grad, vmap, jacrev, ...) is running."""
    # autograd.Function.apply asks the same private question before refusing a Function like ours.
    return torch._C._are_functorch_transforms_active()


class PartialConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose zero padding is re-weighted: ``out = (W.X) * r + b``, and 0 where no tap is inside.

    ``r`` depends only on the layer and the input's height and width, so eager calls compute it once
    per (height, width, device, dtype) and keep it in a plain dict: not in the state_dict, not pickled,
    and shared by every batch size. ``tf_same=True`` pads like timm's ``Conv2dSame`` (TF 'same', from
    the input size, extra pixel after) instead of by ``padding``.
    """

    def __init__(
        self, *args: Any, tf_same: bool = False, mode: ReweightOutput | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros":
            raise ValueError(
                f"PartialConv2d pads by itself; padding_mode must be 'zeros', not {self.padding_mode!r}"
            )
        if tf_same and self.padding != (0, 0):
            raise ValueError("PartialConv2d(tf_same=True) computes its padding; pass padding=0")
        self.tf_same = tf_same
        self.mode = mode if mode is not None else get_padding("partial")
        self._scaling_cache: dict[tuple, BorderScaling | None] = {}
        self._fold_cache: FoldCache = {}

    def __getstate__(self) -> dict[str, Any]:
        # The caches are derived data: deepcopy and pickle start without them.
        return fresh_state(self.__dict__, ("_scaling_cache", "_fold_cache"))

    @classmethod
    def like(cls, conv: nn.Conv2d, tf_same: bool, mode: ReweightOutput) -> PartialConv2d:
        """A ``PartialConv2d`` re-weighting by ``mode`` and sharing ``conv``'s parameters."""
        return conv_like(cls, conv, tf_same, mode=mode)

    def extra_repr(self) -> str:
        named = "" if self.mode.label == "partial" else f", mode={self.mode.label}"
        return super().extra_repr() + named + (", tf_same=True" if self.tf_same else "")

    def scaling(
        self, height: int, width: int, device: torch.device, dtype: torch.dtype
    ) -> BorderScaling | None:
        """The cached border scaling for a ``height`` x ``width`` input (keyed on all it depends on)."""
        key = fold_key(self, self.mode, height, width, device, dtype)
        if key not in self._scaling_cache:  # None is a value: r is 1 everywhere
            with torch.inference_mode(False):  # autograd may use it later, outside inference mode
                scaling = self._scaling_cache[key] = border_scaling(self, height, width, device, dtype)
            return scaling
        return self._scaling_cache[key]

    def forward(self, input: Tensor) -> Tensor:
        height, width = input.shape[-2:]
        if is_tiny(self, input):
            # Every window covers the map: r folds into the kernels of one matrix product.
            return tiny_map_forward(self, input, self.mode, self._fold_cache)
        if self.tf_same:
            input, padding = F.pad(input, layer_pads(self, height, width)), 0
        else:
            padding = self.padding
        out = F.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        bias = None if self.bias is None else self.bias.to(out.dtype)
        if torch.compiler.is_compiling():
            # The maps become constants of the graph; the dict cache would only add guards.
            maps = ratio_maps(self, height, width, out.device, out.dtype)
        else:
            scaling = self.scaling(height, width, out.device, out.dtype)
            # in place on the border only, where autograd runs as usual (not under torch.func or a trace)
            if scaling is not None and not _functorch_active() and not torch.jit.is_tracing():
                return _ScaleBorder.apply(out, bias, scaling)
            maps = None if scaling is None else (scaling.ratio, scaling.share)
        if maps is None:
            return out
        # Out of place on the whole map: what dynamo and torch.func can trace, one fused op compiled.
        ratio, share = maps
        return out * ratio if bias is None else out * ratio + bias.view(-1, 1, 1) * share


@dataclasses.dataclass(frozen=True)
class ReweightOutput(PaddingMode):
    """Family 2: convolve with zero padding, then ``out * r + bias`` (0 where no tap is inside).

    ``r`` is the product of ``axis_ratio(taps inside, kernel)`` over rows and columns, and must be 1
    where every tap is inside: only the border is re-weighted, and on maps no larger than the kernel
    ``r`` folds into the kernel.
    """

    def axis_ratio(self, inside: int, kernel: int) -> float:
        """This axis's factor of ``r`` for an output whose window has ``inside`` of ``kernel`` taps in the image."""
        raise NotImplementedError

    def convert(self, conv: nn.Conv2d, tf_same: bool) -> nn.Conv2d:
        """A ``PartialConv2d`` re-weighting by this mode's ratio."""
        return PartialConv2d.like(conv, tf_same=tf_same, mode=self)

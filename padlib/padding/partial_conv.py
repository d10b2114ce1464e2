"""Partial-convolution based padding (Liu et al. 2018, Eq. 1-2) as a drop-in ``nn.Conv2d``.

With ``W.X`` the conv over the zero-padded input without bias, ``out = (W.X) * r + b`` where
``r = k_h*k_w / (taps inside the image)``, and ``out = 0`` where no tap is inside. ``r`` is 1 away
from the border, so the layer runs the ordinary conv (bias included) and rescales only the border
strips in place: ``out = conv(X) * r + b * (inside - r)`` there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from padlib.padding.geometry import layer_pads, pair


@dataclass(frozen=True)
class BorderScaling:
    """Where and how much one input size's output is rescaled; ``strips`` cover every r != 1."""

    ratio: Tensor  # (1, 1, Ho, Wo): r, 0 where no tap is inside
    strips: tuple[tuple[slice, slice], ...]  # (rows, cols) of the output where r != 1
    strip_ratios: tuple[Tensor, ...]  # r on each strip
    strip_bias: tuple[Tensor, ...]  # inside - r on each strip: the bias share conv's own bias misses


def _border_strips(off: Tensor) -> tuple[tuple[slice, slice], ...]:
    """Top, bottom, left and right strips covering the True entries of a border-only 2-D mask."""
    rows, cols = off.shape
    # r is a row factor times a column factor, both >= 1 (0 on holes), and in-image tap counts only
    # drop towards an edge: the border rows (cols) are a leading and a trailing run of rows (cols)
    # that are off all along. Without an interior column every row is off: one strip, the whole map.
    row_off, col_off = off.all(1).tolist(), off.all(0).tolist()
    top = next((i for i, o in enumerate(row_off) if not o), rows)
    bottom = rows - next((i for i, o in enumerate(reversed(row_off)) if not o), rows)
    left = next((i for i, o in enumerate(col_off) if not o), cols)
    right = cols - next((i for i, o in enumerate(reversed(col_off)) if not o), cols)
    bottom = max(bottom, top)
    strips = [
        (slice(0, top), slice(0, cols)),
        (slice(bottom, rows), slice(0, cols)),
        (slice(top, bottom), slice(0, left)),
        (slice(top, bottom), slice(max(right, left), cols)),
    ]
    return tuple((r, c) for r, c in strips if r.stop > r.start and c.stop > c.start)


def border_scaling(
    conv: nn.Conv2d, height: int, width: int, device: torch.device, dtype: torch.dtype
) -> BorderScaling | None:
    """The paper's ratio r for a ``height`` x ``width`` input and its border strips; None where r is all 1."""
    with torch.no_grad():
        # Counted in fp32 (exact for any kernel) and cast once to the activation dtype.
        ones = F.pad(torch.ones(1, 1, height, width, device=device), layer_pads(conv, height, width))
        taps = torch.ones(1, 1, *pair(conv.kernel_size), device=device)
        counts = F.conv2d(ones, taps, stride=conv.stride, dilation=conv.dilation)
        inside = (counts > 0).float()
        ratio = torch.where(counts > 0, taps.numel() / counts.clamp(min=1), 0.0)
        off = (ratio != 1)[0, 0]
        if not bool(off.any()):
            return None
        strips = _border_strips(off)
        bias_share = inside - ratio
        return BorderScaling(
            ratio=ratio.to(dtype),
            strips=strips,
            strip_ratios=tuple(ratio[..., r, c].to(dtype) for r, c in strips),
            strip_bias=tuple(bias_share[0, :, r, c].to(dtype) for r, c in strips),
        )


class _ScaleBorder(torch.autograd.Function):
    """``out * r + bias * (inside - r)`` on the border strips of a fresh conv output, in place."""

    @staticmethod
    def forward(ctx: Any, out: Tensor, bias: Tensor | None, scaling: BorderScaling) -> Tensor:
        for (rows, cols), ratio, share in zip(
            scaling.strips, scaling.strip_ratios, scaling.strip_bias, strict=True
        ):
            strip = out[:, :, rows, cols]
            strip.mul_(ratio)
            if bias is not None:
                strip.add_(bias.view(-1, 1, 1) * share)
        ctx.mark_dirty(out)
        ctx.scaling = scaling
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, Tensor | None, None]:
        scaling = ctx.scaling
        grad_bias = None
        if ctx.needs_input_grad[1]:
            grad_bias = sum(
                (grad[:, :, rows, cols] * share).sum((0, 2, 3))
                for (rows, cols), share in zip(scaling.strips, scaling.strip_bias, strict=True)
            )
        # The one full-size pass: the gradient may be shared with other branches, so no in-place.
        return grad * scaling.ratio, grad_bias, None


class PartialConv2d(nn.Conv2d):
    """``nn.Conv2d`` whose zero padding is re-weighted: ``out = (W.X) * r + b``, and 0 where no tap is inside.

    ``r`` depends only on the layer and the input's height and width, so it is computed once per
    (height, width, device, dtype) and kept in a plain dict: not in the state_dict, not pickled, and
    shared by every batch size. ``tf_same=True`` pads like timm's ``Conv2dSame`` (TF 'same', from the
    input size, extra pixel after) instead of by ``padding``.
    """

    def __init__(self, *args: Any, tf_same: bool = False, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.padding_mode != "zeros":
            raise ValueError(
                f"PartialConv2d pads by itself; padding_mode must be 'zeros', not {self.padding_mode!r}"
            )
        if tf_same and self.padding != (0, 0):
            raise ValueError("PartialConv2d(tf_same=True) computes its padding; pass padding=0")
        self.tf_same = tf_same
        self._scaling_cache: dict[tuple[int, int, torch.device, torch.dtype], BorderScaling | None] = {}

    def __getstate__(self) -> dict[str, Any]:
        # The cache is derived data: deepcopy and pickle start without it.
        return {**self.__dict__, "_scaling_cache": {}}

    def extra_repr(self) -> str:
        return super().extra_repr() + (", tf_same=True" if self.tf_same else "")

    def scaling(
        self, height: int, width: int, device: torch.device, dtype: torch.dtype
    ) -> BorderScaling | None:
        """The cached border scaling for a ``height`` x ``width`` input."""
        key = (height, width, device, dtype)
        if key not in self._scaling_cache:
            self._scaling_cache[key] = border_scaling(self, height, width, device, dtype)
        return self._scaling_cache[key]

    def forward(self, input: Tensor) -> Tensor:
        height, width = input.shape[-2:]
        if self.tf_same:
            input, padding = F.pad(input, layer_pads(self, height, width)), 0
        else:
            padding = self.padding
        out = F.conv2d(input, self.weight, self.bias, self.stride, padding, self.dilation, self.groups)
        scaling = self.scaling(height, width, out.device, out.dtype)
        if scaling is None:
            return out
        bias = None if self.bias is None else self.bias.to(out.dtype)
        return _ScaleBorder.apply(out, bias, scaling)

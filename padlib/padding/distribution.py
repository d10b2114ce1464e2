"""Distribution padding (Nguyen et al., "Distribution Padding in Convolutional Neural Networks", ICIP 2019).

The pad is filled with *local means* of the map instead of zeros or mirrored pixels: a sliding box mean
``M`` of the map is taken with the conv's window, valid placement (one mean per window that fits), and
``M`` is resampled onto the pad. Two variants, per sample and per channel, no learned parameters:

* ``'mean_interp'``, mean-interpolation padding (paper Algorithm 1; ``neuralnet`` border mode
  ``'mean-int'``; the authors' default and better variant): ``M`` is resized to the padded size
  ``(H + top + bottom) x (W + left + right)`` and the interior is overwritten by the input.
* ``'mean_reflect'``, mean-reflection padding (Algorithm 2, ``'mean-ref'``): ``M`` is resized to the
  input size ``H x W``, mirrored without repeating its edge (``F.pad`` ``'reflect'``), and the interior
  is overwritten by the input.

What this follows. The paper's two algorithm boxes and ICIP slides (read from the first author's site,
justanhduc/justanhduc.github.io at b37b2c817f2c4f68478b735f058f52d6d193dc51; the PDF was not available)
fix the method and the two variants' names (mean-interpolation / mean-reflection, not 'partial' / 'full'
mean). Where paper and code differ or the paper is silent (it names no interpolation, and its sizes drop
a factor 2), this follows the authors' code: justanhduc/distribution-padding ``src/ops.py`` (``mean_interp_pad``,
``mean_ref_pad``; HEAD 8322c71cc83b484aeadb584d7473974e6c31ac8d, unchanged since edfa0ed) and the library
it calls, justanhduc/neuralnet ``neuralnet/utils.py`` at bd59a9824cd145f62b37e205ee1fef5cb4e8f037
(``frac_bilinear_upsampling``, unchanged since 96fd704; ``reflection_pad``; ``mean_interp_pad``;
``mean_ref_pad``). With equal pads per axis and maps of at least the window's size, the output equals
theirs (their float32 rounding aside):

* The mean map ``M`` is the per-channel box mean over ``(top+bottom+1) x (left+right+1)`` windows,
  valid placement, stride 1, i.e. ``avg_pool2d(x, window, stride=1, padding=0)`` (their
  ``dnn_pool(..., mode='average_exc_pad')`` with cuDNN's default zero pad). One mean map for the whole
  map; what reaches the pad is its boundary part, not separate per-border statistics.
* The resampler ``R_{n->m}`` is their ``frac_bilinear_upsampling``: separable bilinear interpolation in
  which output index ``i`` reads input coordinate ``u(i) = clamp(n (i+1) / m - 1, 0, n-1)``. This map is
  neither ``align_corners=True`` nor ``False`` (``F.interpolate`` cannot reproduce it): the last output
  lands on the last input, the first ones clamp onto input 0, so on small maps the pad is asymmetric.
  It is kept as is (:func:`resample_matrix` writes ``R_{n->m}`` out).

Where the sources are silent or ambiguous, and what is chosen here:

* Unequal pads (the authors pad ``kernel // 2`` on both sides): the window is
  ``(top+bottom+1) x (left+right+1)`` and the interior sits at offset ``(top, left)``; interp resizes to
  the padded size, reflect mirrors ``top``/``bottom`` rows and ``left``/``right`` columns of ``R M R^T``.
  A zero pad on one axis is allowed (the authors' ``reflection_pad`` breaks there).
* Gradient: none through the pad values, as in the code (``disconnected_grad``) and the slides ("grads
  are not backprop-ed through the padded pixels"). They are computed from ``input.detach()``; the
  gradient w.r.t. ``input`` is the interior slice of the upstream gradient, as for a zero pad.
* Small maps. The authors' code needs ``H >= top+bottom+1`` and ``W >= left+right+1`` (else their mean
  map is empty); at ``H == 2p+1`` their CPU path makes the pad constant along that axis (their GPU path
  divides 0 by 0; the CPU semantics are followed). Rule here, per axis, in the spirit of padlib's reflect fallback (an axis too small
  to reflect is replicated): **where an axis is shorter than the window, the window is clipped to the
  whole axis**, so the mean map has one row (column) and the pad is constant along that axis: the
  means over the full height (width), resampled along the other axis as usual. This is the authors'
  CPU result for ``H == 2p+1`` carried down to smaller maps (a 3x3 map padded by 1 or 2 gets its global
  mean all round; a 1x1 map gets its own pixel). For ``'mean_reflect'`` the constant axis is then
  replicated rather than mirrored (equal values; mirroring would need pad < H).
* Exact sizes: the authors' float32 ``ceil`` size arithmetic that returns m+1 for a few sizes (and then
  crashes) is not reproduced.
* Half precision: for float16/bfloat16 input (e.g. under ``torch.autocast``) the means and their
  resampling run in float32 and the pad is rounded once to the input's dtype; the output has the input's
  dtype and ``F.pad``'s memory format (channels_last stays channels_last).

How it is computed. Box mean and resampling are both linear and separable, so each pad strip is
``L_rows @ x_band @ L_cols^T`` with small explicit matrices ``L = R (taps of the strip) @ B (box of the
window)``, built once per geometry, device and dtype (``functools.lru_cache``; inline under
``torch.compile``). ``x_band`` is only the input rows (columns) whose windows reach the top and bottom
(left and right) pads, a few lines per side, so the work beyond ``F.pad``'s zero pad grows with the
border, not with the map; the mean map itself is never materialized. Autocast is disabled inside (the
matmuls stay in float32 or float64), and in eager autograd the pad is one node whose backward is
``F.pad``'s (the interior of the upstream gradient).
"""

from __future__ import annotations

import functools
import math
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F
from torch import Tensor

from padlib.padding.geometry import Pads

VARIANTS = ("mean_interp", "mean_reflect")


def _sample(n: int, m: int, i: int) -> tuple[int, int, float]:
    """Row ``i`` of ``R_{n->m}`` as ``(i0, i1, w)``: ``(1 - w) in[i0] + w in[i1]``, ``i1 = i0`` where ``w = 0``."""
    u = min(max(n * (i + 1) / m - 1.0, 0.0), n - 1.0)
    i0 = math.floor(u)
    w = u - i0
    return (i0, i0 + 1, w) if w > 0.0 else (i0, i0, 0.0)


def _taps(n: int, m: int, rows: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """``_sample`` for float64 ``rows`` of ``R_{n->m}`` at once (the same IEEE operations, the same bits)."""
    u = (n * (rows + 1) / m - 1.0).clamp(0.0, n - 1.0)
    i0 = u.floor()
    w = u - i0
    return i0, torch.where(w > 0, i0 + 1, i0), w


def resample_matrix(n: int, m: int) -> Tensor:
    """``R_{n->m}`` of ``neuralnet.utils.frac_bilinear_upsampling`` as a dense float64 ``(m, n)`` matrix.

    Output ``i`` reads input coordinate ``u = clamp(n (i+1) / m - 1, 0, n-1)`` bilinearly.
    """
    i0, i1, w = _taps(n, m, torch.arange(m, dtype=torch.float64))
    cols = torch.arange(n, dtype=torch.float64)
    return (1 - w)[:, None] * (cols == i0[:, None]) + w[:, None] * (cols == i1[:, None])


def _window(size: int, before: int, after: int) -> int:
    """The box length on an axis: pad + 1 + pad, clipped to the axis (the small-map rule)."""
    return min(before + after + 1, size)


def _source(size: int, before: int, after: int, variant: str, position: int) -> tuple[int, int, int]:
    """(n, m, row) of ``R_{n->m}`` that padded ``position`` (0 = outermost top/left pad) reads."""
    n = size - _window(size, before, after) + 1
    if variant == "mean_interp":
        return n, size + before + after, position
    # Mirror without repeating the edge; clamped only where n == 1 and every row of R is the same.
    p = position - before
    p = -p if p < 0 else 2 * (size - 1) - p if p >= size else p
    return n, size, min(max(p, 0), size - 1)


def _weights(size: int, before: int, after: int, variant: str, positions: range, pixels: range) -> Tensor:
    """(positions, pixels) float64 matrix: padded position <- input pixel, box mean then ``R``."""
    window = _window(size, before, after)
    n = size - window + 1
    pos = torch.arange(positions.start, positions.stop, dtype=torch.float64)
    if variant == "mean_interp":
        i0, i1, w = _taps(n, size + before + after, pos)
    else:
        p = pos - before
        p = torch.where(p < 0, -p, torch.where(p >= size, 2 * (size - 1) - p, p)).clamp(0, size - 1)
        i0, i1, w = _taps(n, size, p)
    pix = torch.arange(pixels.start, pixels.stop, dtype=torch.float64)

    def box(start: Tensor) -> Tensor:
        return ((pix >= start[:, None]) & (pix < start[:, None] + window)).double() / window

    return (1 - w)[:, None] * box(i0) + w[:, None] * box(i1)


class _Band(NamedTuple):
    """The input lines whose windows reach one axis' pads: ``[0, head)`` and ``[tail, size)``."""

    head: int
    tail: int
    weights: Tensor | None  # (before + after, band lines), block diagonal: head block, then tail block


def _band(size: int, before: int, after: int, variant: str) -> _Band:
    window = _window(size, before, after)
    taps = [_sample(*_source(size, before, after, variant, p)) for p in range(before)]
    head = max(i1 for _, i1, _ in taps) + window if before else 0
    taps = [
        _sample(*_source(size, before, after, variant, p))
        for p in range(before + size, size + before + after)
    ]
    tail = min(i0 for i0, _, _ in taps) if after else size
    blocks = []
    if before:
        blocks.append(_weights(size, before, after, variant, range(before), range(head)))
    if after:
        end = size + before + after
        blocks.append(_weights(size, before, after, variant, range(before + size, end), range(tail, size)))
    return _Band(head, tail, torch.block_diag(*blocks) if blocks else None)


class _Plan(NamedTuple):
    rows: _Band  # top and bottom pads: (top + bottom, band rows)
    cols: _Band  # left and right pads: (left + right, band cols)
    cols_all: Tensor | None  # (W, W + left + right): every padded column <- input columns (top/bottom pads)
    rows_inner: Tensor | None  # (H, H): interior rows <- input rows (left/right pads)


def _plan(
    height: int, width: int, pads: Pads, variant: str, device: torch.device, dtype: torch.dtype
) -> _Plan:
    left, right, top, bottom = pads
    rows, cols = _band(height, top, bottom, variant), _band(width, left, right, variant)

    def put(matrix: Tensor | None) -> Tensor | None:
        return None if matrix is None else matrix.to(device=device, dtype=dtype)

    cols_all = rows_inner = None
    if top or bottom:
        cols_all = _weights(width, left, right, variant, range(width + left + right), range(width)).T
    if left or right:
        rows_inner = _weights(height, top, bottom, variant, range(top, top + height), range(height)).T
    return _Plan(
        rows._replace(weights=put(rows.weights)),
        cols._replace(weights=put(cols.weights)),
        put(cols_all),
        put(rows_inner),
    )


# A handful of geometries per model: the small matrices are built once per device and dtype.
_cached_plan = functools.lru_cache(maxsize=256)(_plan)


def _lines(x: Tensor, dim: int, band: _Band, size: int) -> Tensor:
    """The lines of ``x`` along ``dim`` in ``band``: the head block, then the tail block."""
    parts = [x.narrow(dim, 0, band.head)] if band.head else []
    if band.tail < size:
        parts.append(x.narrow(dim, band.tail, size - band.tail))
    return torch.cat(parts, dim) if len(parts) > 1 else parts[0]


def _pad_values(x: Tensor, plan: _Plan, dtype: torch.dtype) -> tuple[Tensor | None, Tensor | None]:
    """(top + bottom, W') strips and (H, left + right) strips of the pad, from a detached input."""
    height, width = x.shape[-2:]
    horizontal = vertical = None
    with torch.autocast(x.device.type, enabled=False):
        if plan.rows.weights is not None:
            band = _lines(x, -2, plan.rows, height).to(dtype)
            horizontal = torch.matmul(torch.matmul(plan.rows.weights, band), plan.cols_all)
        if plan.cols.weights is not None:
            band = _lines(x, -1, plan.cols, width).to(dtype)
            sides = torch.matmul(band, plan.cols.weights.T)  # (..., H, left + right)
            # rows last, as (..., left + right, H) @ (H, H): one matrix product, not one per channel
            vertical = torch.matmul(sides.mT.contiguous(), plan.rows_inner).mT
    return horizontal, vertical


def _assemble(input: Tensor, pads: Pads, horizontal: Tensor | None, vertical: Tensor | None) -> Tensor:
    """``F.pad(input, pads)`` (its memory format) with the pad overwritten by the strips."""
    left, right, top, bottom = pads
    height, width = input.shape[-2:]
    out = F.pad(input, pads)
    if horizontal is not None:
        if top:
            out[..., :top, :] = horizontal[..., :top, :]
        if bottom:
            out[..., top + height :, :] = horizontal[..., top:, :]
    if vertical is not None:
        if left:
            out[..., top : top + height, :left] = vertical[..., :left]
        if right:
            out[..., top : top + height, left + width :] = vertical[..., left:]
    return out


class _Assemble(torch.autograd.Function):
    """Eager autograd: one node, backward as ``F.pad``'s (the interior of the gradient), no strip copies."""

    @staticmethod
    def forward(ctx: Any, input: Tensor, pads: Pads, horizontal: Tensor | None, vertical: Tensor | None):
        ctx.pads = pads
        return _assemble(input, pads, horizontal, vertical)

    @staticmethod
    def jvp(ctx: Any, input_tangent: Tensor, *_: None) -> Tensor:
        return F.pad(input_tangent, ctx.pads)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None, None, None]:
        left, right, top, bottom = ctx.pads
        return F.pad(grad, (-left, -right, -top, -bottom)), None, None, None


def distribution_pad(input: Tensor, pads: Pads, variant: str = "mean_interp") -> Tensor:
    """``input`` (N, C, H, W) or (C, H, W) padded by ``pads`` = (left, right, top, bottom) with means.

    ``variant`` is ``'mean_interp'`` (mean-interpolation padding) or ``'mean_reflect'`` (mean-reflection
    padding); see the module docstring. The interior is ``input`` itself; no gradient reaches ``input``
    through the pad values.
    """
    if variant not in VARIANTS:
        raise ValueError(f"unknown distribution padding variant {variant!r}; expected one of {VARIANTS}")
    if input.dim() not in (3, 4):
        raise ValueError(f"expected a (N, C, H, W) or (C, H, W) input, got shape {tuple(input.shape)}")
    if not input.is_floating_point():
        raise TypeError(
            f"distribution padding takes means: expected a floating-point input, got {input.dtype}"
        )
    pads = tuple(int(p) for p in pads)
    if len(pads) != 4 or min(pads) < 0:
        raise ValueError(f"pads must be four non-negative ints (left, right, top, bottom), got {pads}")
    height, width = int(input.shape[-2]), int(input.shape[-1])
    if height == 0 or width == 0:
        raise ValueError(f"cannot take means of an empty {height}x{width} map")
    if not any(pads):
        return F.pad(input, pads)
    dtype = torch.float32 if input.dtype in (torch.float16, torch.bfloat16) else input.dtype
    key = (height, width, pads, variant, input.device, dtype)
    compiling = torch.compiler.is_compiling()
    plan = _plan(*key) if compiling else _cached_plan(*key)
    horizontal, vertical = _pad_values(input.detach(), plan, dtype)
    if (
        compiling
        or torch._C._are_functorch_transforms_active()
        or not (input.requires_grad and torch.is_grad_enabled())
    ):
        # Plain ops: what dynamo and torch.func trace (the pad is overwritten by constants).
        return _assemble(input, pads, horizontal, vertical)
    return _Assemble.apply(input, pads, horizontal, vertical)

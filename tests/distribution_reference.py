"""NumPy reference for distribution padding, independent of padlib (tests only).

A port of the specification's reference (which follows justanhduc/distribution-padding ``src/ops.py`` and
justanhduc/neuralnet ``utils.frac_bilinear_upsampling`` / ``reflection_pad``), with one addition:
``small='clip'`` applies padlib's small-map rule (a window longer than its axis is clipped to the axis)
instead of raising as the authors' code does.
"""

from __future__ import annotations

import numpy as np


def box_mean_valid(x: np.ndarray, kh: int, kw: int) -> np.ndarray:
    """Per-sample, per-channel mean of every kh x kw window, valid placement: (..., H-kh+1, W-kw+1)."""
    win = np.lib.stride_tricks.sliding_window_view(x, (kh, kw), axis=(-2, -1))
    return win.mean(axis=(-2, -1))


def resize_matrix(n: int, m: int) -> np.ndarray:
    """(m, n) bilinear weights of frac_bilinear_upsampling: output i reads u = clamp(n(i+1)/m - 1, 0, n-1)."""
    R = np.zeros((m, n))
    for i in range(m):
        u = min(max(n * (i + 1) / m - 1.0, 0.0), n - 1.0)
        i0 = int(np.floor(u))
        i1 = min(i0 + 1, n - 1)
        t = u - i0
        R[i, i0] += 1.0 - t
        R[i, i1] += t
    return R


def resize(y: np.ndarray, out_h: int, out_w: int) -> np.ndarray:
    Rh = resize_matrix(y.shape[-2], out_h)
    Rw = resize_matrix(y.shape[-1], out_w)
    return np.einsum("ih,...hw,jw->...ij", Rh, y, Rw)


def distribution_pad(x, pads=(1, 1, 1, 1), variant="mean_interp", small="raise"):
    """x: (..., H, W); pads = (left, right, top, bottom); variant 'mean_interp' or 'mean_reflect'."""
    x = np.asarray(x, dtype=np.float64)
    left, right, top, bottom = pads
    H, W = x.shape[-2:]
    kh, kw = top + bottom + 1, left + right + 1
    if kh > H or kw > W:
        if small != "clip":
            raise ValueError(f"map {H}x{W} is smaller than the {kh}x{kw} mean window")
        kh, kw = min(kh, H), min(kw, W)
    y = box_mean_valid(x, kh, kw)
    lead = [(0, 0)] * (x.ndim - 2)
    if variant == "mean_interp":
        z = resize(y, H + top + bottom, W + left + right)
    elif variant == "mean_reflect":
        z = resize(y, H, W)
        # np.pad 'reflect' repeats a length-1 axis (the clipped case, where z is constant on it anyway).
        z = np.pad(z, [*lead, (top, bottom), (left, right)], mode="reflect")
    else:
        raise ValueError(variant)
    z[..., top : top + H, left : left + W] = x
    return z

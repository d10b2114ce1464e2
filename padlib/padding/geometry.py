"""Per-side padding of a 2-D conv or pool for a given input size: the one place this arithmetic lives.

Pads are ``(left, right, top, bottom)``, the order ``F.pad`` takes for the last two dims.
"""

from __future__ import annotations

import math
import sys

from torch import nn

Pads = tuple[int, int, int, int]

# timm's dynamic TF-'same' layers pad from the input size at every call; they are looked up in
# sys.modules so that padlib never imports timm itself (a model that holds them has imported it).
_TIMM_TF_SAME = {
    "timm.layers.conv2d_same": ("Conv2dSame", "Conv2dSameExport"),
    "timm.layers.pool2d_same": ("MaxPool2dSame", "AvgPool2dSame"),
}


def pair(value: int | tuple[int, ...]) -> tuple[int, int]:
    """``value`` as an (height, width) pair."""
    if isinstance(value, int):
        return value, value
    return int(value[0]), int(value[-1])


def is_tf_same(module: nn.Module) -> bool:
    """Whether ``module`` pads TF-'same' style, computed from the input size (timm or padlib layers)."""
    if getattr(module, "tf_same", False):
        return True
    for module_name, class_names in _TIMM_TF_SAME.items():
        timm_module = sys.modules.get(module_name)
        if timm_module is None:
            continue
        classes = tuple(getattr(timm_module, n) for n in class_names if hasattr(timm_module, n))
        if isinstance(module, classes):
            return True
    return False


def static_pads(
    padding: str | int | tuple[int, ...], kernel_size: tuple[int, int], dilation: tuple[int, int]
) -> Pads:
    """Per-side pads of an ``nn.Conv2d``-style ``padding`` (int, pair, 'valid' or PyTorch 'same')."""
    if padding == "valid":
        return 0, 0, 0, 0
    if padding == "same":
        # PyTorch's split (nn.Conv2d._reversed_padding_repeated_twice): the odd pixel goes after.
        total_h, total_w = (d * (k - 1) for d, k in zip(dilation, kernel_size, strict=True))
        return total_w // 2, total_w - total_w // 2, total_h // 2, total_h - total_h // 2
    pad_h, pad_w = pair(padding)
    return pad_w, pad_w, pad_h, pad_h


def tf_same_pad(size: int, kernel: int, stride: int, dilation: int) -> tuple[int, int]:
    """(before, after) TF-'same' pad of one axis, as timm's ``get_same_padding`` splits it."""
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def layer_pads(module: nn.Module, height: int, width: int) -> Pads:
    """Per-side pads ``module`` (a conv or pool) applies to a ``height`` x ``width`` input."""
    kernel, stride, dilation = (
        pair(module.kernel_size),
        pair(module.stride),
        pair(getattr(module, "dilation", 1)),
    )
    if is_tf_same(module):
        top, bottom = tf_same_pad(height, kernel[0], stride[0], dilation[0])
        left, right = tf_same_pad(width, kernel[1], stride[1], dilation[1])
        return left, right, top, bottom
    return static_pads(module.padding, kernel, dilation)


def could_pad(module: nn.Module) -> bool:
    """Whether ``module`` pads some input: a non-zero static pad, or TF-'same' with a kernel wider than 1."""
    if is_tf_same(module):
        return any(
            d * (k - 1) > 0 for k, d in zip(pair(module.kernel_size), pair(module.dilation), strict=True)
        )
    return any(static_pads(module.padding, pair(module.kernel_size), pair(module.dilation)))


def output_size(
    size: int, before: int, after: int, kernel: int, stride: int, dilation: int, ceil_mode: bool = False
) -> int:
    """Output length of one axis, with PyTorch's rule that a ceil-mode window must start inside."""
    span = size + before + after - dilation * (kernel - 1) - 1
    out = (-(-span // stride) if ceil_mode else span // stride) + 1
    if ceil_mode and (out - 1) * stride >= size + before:
        out -= 1
    return max(out, 0)


def read_pad(
    size: int, before: int, after: int, kernel: int, stride: int, dilation: int, ceil_mode: bool = False
) -> tuple[int, int]:
    """(before, after) padding that some window of one axis reads: a stride can skip the end."""
    out = output_size(size, before, after, kernel, stride, dilation, ceil_mode)
    if out == 0:
        return 0, 0
    # The first window always starts on the first pad pixel; the last one may stop short of the
    # end (stride) or, for a ceil-mode pool, run past the declared pad.
    last = (out - 1) * stride + dilation * (kernel - 1) + 1 - (size + before)
    return before, max(0, last)


def effective_pads(module: nn.Module, height: int, width: int) -> Pads:
    """Per-side pads that ``module``'s windows actually read on a ``height`` x ``width`` input."""
    left, right, top, bottom = layer_pads(module, height, width)
    kernel, stride, dilation = (
        pair(module.kernel_size),
        pair(module.stride),
        pair(getattr(module, "dilation", 1)),
    )
    ceil_mode = bool(getattr(module, "ceil_mode", False))
    top, bottom = read_pad(height, top, bottom, kernel[0], stride[0], dilation[0], ceil_mode)
    left, right = read_pad(width, left, right, kernel[1], stride[1], dilation[1], ceil_mode)
    return left, right, top, bottom

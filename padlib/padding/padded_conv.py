"""``nn.Conv2d`` that pads its input by a padding mode of the pad-then-convolve family, tiny maps included.

The layer computes ``conv2d(mode.pad(input), weight)``. For a mode that copies pixels (reflect,
replicate, circular, symmetric) that is one pass (``index_pad``), or on maps no larger than the kernel
one product with folded kernels (``folded_conv``), which skips the padded taps as zero padding does.
Reflection needs a pad smaller than the axis and wrapping one no larger than it; where a feature map
is too small for that (deep layers of a ResNet on 28x28 images are 1x1 or 2x2), that axis is padded by
replication for that call instead of failing.
"""

from __future__ import annotations

import dataclasses
from typing import Any, ClassVar, TypeVar

import torch.nn.functional as F
from torch import Tensor, nn

from padlib.padding.folded_conv import FoldCache, fresh_state, is_tiny, tiny_map_forward
from padlib.padding.geometry import Pads, layer_pads
from padlib.padding.index_pad import pad_input
from padlib.padding.mode import PaddingMode, get_padding

# padlib's name for each nn.Conv2d padding_mode.
TORCH_MODES = {"zeros": "zero", "reflect": "reflect", "replicate": "replicate", "circular": "circular"}

C = TypeVar("C", bound=nn.Conv2d)


def conv_like(cls: type[C], conv: nn.Conv2d, tf_same: bool, **kwargs: Any) -> C:
    """A ``cls`` with ``conv``'s geometry sharing its Parameters (optimizers holding them stay valid)."""
    # Built on the meta device, so no weights are allocated before the originals are put in.
    new = cls(
        conv.in_channels,
        conv.out_channels,
        conv.kernel_size,
        stride=conv.stride,
        padding=0 if tf_same else conv.padding,
        dilation=conv.dilation,
        groups=conv.groups,
        bias=conv.bias is not None,
        device="meta",
        **({"tf_same": True} if tf_same else {}),
        **kwargs,
    )
    new.weight = conv.weight
    new.bias = conv.bias
    return new.train(conv.training)


def plain_conv_like(conv: nn.Conv2d) -> nn.Conv2d:
    """A stock zero-padded ``nn.Conv2d`` sharing ``conv``'s parameters."""
    return conv_like(nn.Conv2d, conv, tf_same=False)


class PaddedConv2d(nn.Conv2d):
    """``nn.Conv2d`` padded by ``mode`` (a ``PadThenConvolve``), or by ``padding_mode`` when no mode is given.

    ``tf_same=True`` pads like timm's ``Conv2dSame`` (TF 'same', from the input size) instead of by
    ``padding``; with zeros it is a zero-padded dynamic 'same' conv.
    """

    def __init__(
        self, *args: Any, tf_same: bool = False, mode: PaddingMode | None = None, **kwargs: Any
    ) -> None:
        super().__init__(*args, **kwargs)
        if tf_same and self.padding != (0, 0):
            raise ValueError("PaddedConv2d(tf_same=True) computes its padding; pass padding=0")
        self.tf_same = tf_same
        self.mode = mode if mode is not None else get_padding(TORCH_MODES[self.padding_mode])
        self._fold_cache: FoldCache = {}

    @classmethod
    def like(cls, conv: nn.Conv2d, tf_same: bool, mode: PaddingMode) -> PaddedConv2d:
        """A ``PaddedConv2d`` in ``mode`` sharing ``conv``'s parameters."""
        # nn.Conv2d's own padding_mode names the mode where torch has one, and is unused otherwise.
        torch_mode = {v: k for k, v in TORCH_MODES.items()}.get(mode.name, "zeros")
        return conv_like(cls, conv, tf_same, mode=mode, padding_mode=torch_mode)

    def __getstate__(self) -> dict[str, Any]:
        # The folds are derived data: deepcopy and pickle start without them.
        return fresh_state(self.__dict__, ("_fold_cache",))

    def extra_repr(self) -> str:
        return super().extra_repr() + f", mode={self.mode.label}" + (", tf_same=True" if self.tf_same else "")

    def forward(self, input: Tensor) -> Tensor:
        height, width = input.shape[-2:]
        if isinstance(self.mode, IndexPadding) and is_tiny(self, input):
            return tiny_map_forward(self, input, self.mode, self._fold_cache)
        input = self.mode.pad(input, layer_pads(self, height, width))
        return F.conv2d(input, self.weight, self.bias, self.stride, 0, self.dilation, self.groups)


@dataclasses.dataclass(frozen=True)
class PadThenConvolve(PaddingMode):
    """Family 1: pad the input by ``pads`` (left, right, top, bottom), then convolve without padding."""

    def pad(self, input: Tensor, pads: Pads) -> Tensor:
        """``input`` (N, C, H, W) or (C, H, W) padded by ``pads``: H + top + bottom by W + left + right."""
        raise NotImplementedError

    def convert(self, conv: nn.Conv2d, tf_same: bool) -> nn.Conv2d:
        """A ``PaddedConv2d`` that calls :meth:`pad`."""
        return PaddedConv2d.like(conv, tf_same=tf_same, mode=self)


@dataclasses.dataclass(frozen=True)
class IndexPadding(PadThenConvolve):
    """Padding that copies pixels: position ``i`` of an axis of ``size`` (``i`` < 0 or >= size) copies ``source``.

    padlib pads such a mode in one pass (``index_pad``) and, on maps no larger than the kernel, folds it
    into the kernel (``folded_conv``). An axis that ``fits`` says is too small is replicated instead.
    """

    f_pad_mode: ClassVar[str | None] = None  # F.pad's name for the same padding, where torch has one

    def source(self, i: int, size: int) -> int | None:
        """The input pixel that padded position ``i`` copies; None for a zero."""
        raise NotImplementedError

    def fits(self, pad: int, size: int) -> bool:
        """Whether ``pad`` pixels can be padded onto an axis of ``size`` (else that axis is replicated)."""
        return True

    def pad(self, input: Tensor, pads: Pads) -> Tensor:
        """``input`` padded by copying source pixels (see ``index_pad``)."""
        return pad_input(input, pads, self)

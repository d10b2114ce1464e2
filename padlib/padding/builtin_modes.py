"""padlib's own padding modes, registered through the same interface a user's mode uses (``mode.py``)."""

from __future__ import annotations

import dataclasses

from torch import Tensor, nn

from padlib.padding.distribution import distribution_pad
from padlib.padding.geometry import Pads
from padlib.padding.index_pad import replicate_source, zero_source
from padlib.padding.mode import register_padding, registered_paddings
from padlib.padding.padded_conv import IndexPadding, PadThenConvolve, plain_conv_like
from padlib.padding.partial_conv import ReweightOutput


@register_padding("zero")
@dataclasses.dataclass(frozen=True)
class Zero(IndexPadding):
    """Zeros: the stock ``nn.Conv2d``, untouched (a TF-'same' conv pads dynamically instead)."""

    f_pad_mode = "constant"

    def source(self, i: int, size: int) -> int | None:
        return zero_source(i, size)

    def convert(self, conv: nn.Conv2d, tf_same: bool) -> nn.Conv2d:
        return super().convert(conv, tf_same) if tf_same else plain_conv_like(conv)


@register_padding("reflect")
@dataclasses.dataclass(frozen=True)
class Reflect(IndexPadding):
    """Mirror without repeating the edge (``F.pad`` 'reflect', numpy 'reflect'): ``c b | a b c | b a``."""

    f_pad_mode = "reflect"

    def source(self, i: int, size: int) -> int | None:
        return -i if i < 0 else 2 * (size - 1) - i if i >= size else i

    def fits(self, pad: int, size: int) -> bool:
        return pad < size


@register_padding("replicate")
@dataclasses.dataclass(frozen=True)
class Replicate(IndexPadding):
    """Repeat the edge pixel: ``a a | a b c | c c``."""

    f_pad_mode = "replicate"

    def source(self, i: int, size: int) -> int | None:
        return replicate_source(i, size)


@register_padding("circular")
@dataclasses.dataclass(frozen=True)
class Circular(IndexPadding):
    """Wrap around (a torus): ``b c | a b c | a b``."""

    f_pad_mode = "circular"

    def source(self, i: int, size: int) -> int | None:
        return i % size

    def fits(self, pad: int, size: int) -> bool:
        return pad <= size


@register_padding("partial")
@dataclasses.dataclass(frozen=True)
class Partial(ReweightOutput):
    """Partial-convolution based padding (Liu et al. 2018): ``r = window area / taps inside``."""

    def axis_ratio(self, inside: int, kernel: int) -> float:
        return kernel / inside


@register_padding("symmetric")
@dataclasses.dataclass(frozen=True)
class Symmetric(IndexPadding):
    """Mirror repeating the edge (numpy 'symmetric', TensorFlow 'SYMMETRIC'): ``b a | a b c | c b``."""

    def source(self, i: int, size: int) -> int | None:
        return -i - 1 if i < 0 else 2 * size - 1 - i if i >= size else i

    def fits(self, pad: int, size: int) -> bool:
        return pad <= size


@register_padding("distribution")
@dataclasses.dataclass(frozen=True)
class Distribution(PadThenConvolve):
    """Distribution padding (Nguyen et al., ICIP 2019): pads from the local means (``distribution.py``)."""

    variant: str = "mean_interp"  # mean_interp | mean_reflect

    def __post_init__(self) -> None:
        if self.variant not in ("mean_interp", "mean_reflect"):
            raise ValueError(f"variant {self.variant!r} is unknown; use mean_interp or mean_reflect")

    def pad(self, input: Tensor, pads: Pads) -> Tensor:
        return distribution_pad(input, pads, self.variant)


# padlib's own modes; registered_paddings() also lists the ones users registered since.
PADDING_MODES = registered_paddings()

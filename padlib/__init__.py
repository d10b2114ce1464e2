"""padlib: padding modes (zero, reflect, replicate, circular, partial) for any CNN, and the harness
that trains and evaluates them to reproduce "Partial Convolution based Padding" (Liu et al., 2018)."""

from padlib.padding import PADDING_MODES, PartialConv2d, convert_padding

__all__ = ["PADDING_MODES", "PartialConv2d", "convert_padding"]
__version__ = "0.1.0"

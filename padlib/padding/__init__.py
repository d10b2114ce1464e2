"""Padding modes for any CNN: the mode interface and registry, padlib's modes, model conversion and audit."""

from padlib.padding.builtin_modes import PADDING_MODES
from padlib.padding.convert import convert_padding, converted_convs
from padlib.padding.folded_conv import fold_once
from padlib.padding.layer_report import LayerRow, format_layer_report, report_layers
from padlib.padding.mode import PaddingMode, get_padding, register_padding, registered_paddings
from padlib.padding.padded_conv import IndexPadding, PaddedConv2d, PadThenConvolve
from padlib.padding.partial_conv import PartialConv2d, ReweightOutput

__all__ = [
    "PADDING_MODES",
    "IndexPadding",
    "LayerRow",
    "PadThenConvolve",
    "PaddedConv2d",
    "PaddingMode",
    "PartialConv2d",
    "ReweightOutput",
    "convert_padding",
    "converted_convs",
    "fold_once",
    "format_layer_report",
    "get_padding",
    "register_padding",
    "registered_paddings",
    "report_layers",
]

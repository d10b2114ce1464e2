"""Padding modes for any CNN: the mode interface and registry, padlib's modes, model conversion and audit."""

from padlib.padding.builtin_modes import PADDING_MODES
from padlib.padding.convert import convert_padding, converted_convs
from padlib.padding.layer_report import AuditRow, audit_layers, format_audit
from padlib.padding.mode import PaddingMode, get_padding, register_padding, registered_paddings
from padlib.padding.padded_conv import IndexPadding, PaddedConv2d, PadThenConvolve
from padlib.padding.partial_conv import PartialConv2d, ReweightOutput

__all__ = [
    "PADDING_MODES",
    "AuditRow",
    "IndexPadding",
    "PadThenConvolve",
    "PaddedConv2d",
    "PaddingMode",
    "PartialConv2d",
    "ReweightOutput",
    "audit_layers",
    "convert_padding",
    "converted_convs",
    "format_audit",
    "get_padding",
    "register_padding",
    "registered_paddings",
]

"""Padding modes for any CNN: partial-convolution padding, F.pad modes, model conversion and audit."""

from padlib.padding.convert import PADDING_MODES, convert_padding, converted_convs
from padlib.padding.layer_report import AuditRow, audit_layers, format_audit
from padlib.padding.padded_conv import PaddedConv2d
from padlib.padding.partial_conv import PartialConv2d

__all__ = [
    "PADDING_MODES",
    "AuditRow",
    "PaddedConv2d",
    "PartialConv2d",
    "audit_layers",
    "convert_padding",
    "converted_convs",
    "format_audit",
]

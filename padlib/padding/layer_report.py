"""List every conv and pool of a model with the padding it applies at an input size, and what a mode does to it.

A window grid that does not reach the last rows or columns (a stride-2 conv on an even input) never
reads the bottom/right padding, so a symmetric declared pad acts one-sided and the partial-conv ratio
is asymmetric; the audit shows the pads each side really reads and flags those layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from padlib.errors import PadlibError
from padlib.padding.convert import layer_mode
from padlib.padding.geometry import Pads, could_pad, effective_pads, is_tf_same, layer_pads, pair
from padlib.padding.padded_conv import PaddedConv2d
from padlib.padding.partial_conv import PartialConv2d

_LAYERS = (nn.Conv2d, nn.MaxPool2d, nn.AvgPool2d)


@dataclass(frozen=True)
class LayerRow:
    """One conv or pool: its geometry, the pads it applies and reads at the audited input, its mode."""

    name: str
    layer: str
    kind: str  # "conv" or "pool"
    kernel: tuple[int, int]
    stride: tuple[int, int]
    padding: str
    input_hw: tuple[int, int] | None
    pads: Pads | None
    read: Pads | None
    one_sided: str
    mode: str | None  # the padlib mode of a conv that pads, None for the rest
    converted: bool
    action: str


def _declared_padding(module: nn.Module) -> str:
    if is_tf_same(module):
        return "tf-same"
    if isinstance(module.padding, str):
        return module.padding
    pad_h, pad_w = pair(module.padding)
    return str(pad_h) if pad_h == pad_w else f"{pad_h},{pad_w}"


def _action(module: nn.Module, mode: str | None, converted: bool) -> str:
    if isinstance(module, nn.MaxPool2d):
        return "max-pool, pads with -inf (untouched)"
    if isinstance(module, nn.AvgPool2d):
        return f"avg-pool, count_include_pad={module.count_include_pad} (untouched)"
    if mode is None:
        return "untouched (no padding)"
    return f"{mode} (converted)" if converted else mode


def _one_sided(read: Pads) -> str:
    left, right, top, bottom = read
    return ",".join(axis for axis, uneven in (("H", top != bottom), ("W", left != right)) if uneven)


def _row(name: str, module: nn.Module, input_hw: tuple[int, int] | None) -> LayerRow:
    is_conv = isinstance(module, nn.Conv2d)
    mode = layer_mode(module) if is_conv and could_pad(module) else None
    converted = isinstance(module, PartialConv2d | PaddedConv2d)
    pads = read = None
    if input_hw is not None:
        pads, read = layer_pads(module, *input_hw), effective_pads(module, *input_hw)
    return LayerRow(
        name=name,
        layer=type(module).__name__,
        kind="conv" if is_conv else "pool",
        kernel=pair(module.kernel_size),
        stride=pair(module.stride),
        padding=_declared_padding(module),
        input_hw=input_hw,
        pads=pads,
        read=read,
        one_sided="" if read is None else _one_sided(read),
        mode=mode,
        converted=converted,
        action=_action(module, mode, converted),
    )


def report_layers(model: nn.Module, size: int = 224) -> list[LayerRow]:
    """Rows for every conv and pool of ``model``, input sizes taken from a 1-image ``size`` x ``size`` forward."""
    layers = [(name, m) for name, m in model.named_modules() if isinstance(m, _LAYERS)]
    seen: dict[str, tuple[int, int]] = {}

    def record(name: str):
        def hook(module: nn.Module, inputs: tuple[Tensor, ...], output: Tensor) -> None:
            seen.setdefault(name, tuple(inputs[0].shape[-2:]))

        return hook

    handles = [module.register_forward_hook(record(name)) for name, module in layers]
    channels = next((m.in_channels for _, m in layers if isinstance(m, nn.Conv2d)), 3)
    was_training = model.training
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, channels, size, size))
    except RuntimeError as error:
        raise PadlibError(
            f"the model cannot run a {size}x{size} input: {str(error).splitlines()[0]}"
        ) from error
    finally:
        model.train(was_training)
        for handle in handles:
            handle.remove()
    return [_row(name, module, seen.get(name)) for name, module in layers]


def _sides(pads: Pads | None) -> str:
    return "-" if pads is None else " ".join(map(str, pads))


def format_layer_report(rows: list[LayerRow]) -> str:
    """An aligned text table of ``rows`` followed by totals."""
    header = (
        "layer",
        "type",
        "kernel",
        "stride",
        "padding",
        "input",
        "pads l r t b",
        "read l r t b",
        "one-sided",
        "mode",
    )
    table = [header] + [
        (
            r.name,
            r.layer,
            "x".join(map(str, r.kernel)),
            "x".join(map(str, r.stride)),
            r.padding,
            "-" if r.input_hw is None else "x".join(map(str, r.input_hw)),
            _sides(r.pads),
            _sides(r.read),
            r.one_sided or "-",
            r.action,
        )
        for r in rows
    ]
    widths = [max(len(line[i]) for line in table) for i in range(len(header))]
    lines = [
        "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip()
        for line in table
    ]
    convs = [r for r in rows if r.kind == "conv"]
    padded = [r for r in convs if r.mode is not None]
    modes = sorted({r.mode for r in padded})
    lines.append(
        f"totals: padded convs {len(padded)} ({', '.join(modes) or 'none'}; "
        f"converted {sum(r.converted for r in padded)}), unpadded convs untouched {len(convs) - len(padded)}, "
        f"pools untouched {len(rows) - len(convs)} (the paper converts convs only), "
        f"reading their padding one-sided {sum(bool(r.one_sided) for r in rows)}"
    )
    return "\n".join(lines)

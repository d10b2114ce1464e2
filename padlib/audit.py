"""``python -m padlib.audit MODEL --padding MODE``: build a model by name and print what its padding does.

The layer-by-layer audit itself (``report_layers``, ``format_layer_report``) lives in ``padlib.padding.layer_report`` and
works on any module; this floor adds the model factory and the command line, so padding/ never imports it.
"""

from __future__ import annotations

import argparse
import sys

from padlib.errors import PadlibError
from padlib.models import build_model
from padlib.padding.layer_report import LayerRow, format_layer_report, report_layers
from padlib.padding.mode import get_padding


def audit_model(
    name: str, padding: str, size: int = 224, num_classes: int = 1000, source: str = "auto"
) -> list[LayerRow]:
    """Build model ``name`` in padding mode ``padding`` and audit it at ``size`` x ``size``."""
    get_padding(padding)  # an unknown mode is an error before the model is built
    return report_layers(build_model(name, num_classes=num_classes, padding=padding, source=source), size)


def main(argv: list[str] | None = None) -> int:
    """``python -m padlib.audit MODEL --padding MODE``: print the audit table; 2 on a bad model or mode."""
    parser = argparse.ArgumentParser(prog="python -m padlib.audit", description=main.__doc__)
    parser.add_argument("model", help="torchvision or timm model name, e.g. resnet50")
    parser.add_argument("--padding", default="partial", help="zero, reflect, replicate, circular or partial")
    parser.add_argument("--size", type=int, default=224, help="input height and width")
    parser.add_argument("--num-classes", type=int, default=1000)
    parser.add_argument("--source", default="auto", help="auto, torchvision or timm")
    args = parser.parse_args(argv)
    try:
        rows = audit_model(args.model, args.padding, args.size, args.num_classes, args.source)
    except PadlibError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(f"{args.model} at {args.size}x{args.size}, padding {args.padding}:")
    print(format_layer_report(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())

"""The padding audit: per-side pads read at an input size, one-sided flags, the table and the CLI."""

from __future__ import annotations

import itertools
import runpy
import sys

import pytest
import torch
from torch import nn

from padlib.audit import audit_model, main
from padlib.padding import convert_padding, format_layer_report, report_layers
from padlib.padding.geometry import effective_pads, output_size


def brute_force_read(size, before, after, kernel, stride, dilation):
    """How far (before, after) the image some window's taps reach, by walking every window of one axis."""
    out = (size + before + after - dilation * (kernel - 1) - 1) // stride + 1
    taps = [i * stride + u * dilation - before for i in range(out) for u in range(kernel)]
    return max(0, -min(taps)), max(0, max(taps) - (size - 1))


def test_effective_pads_match_walking_the_windows():
    for size, pad, kernel, stride, dilation in itertools.product(
        (1, 2, 5, 8, 9), (0, 1, 2, 3), (3, 4, 7), (1, 2, 3), (1, 2)
    ):
        if size + 2 * pad < dilation * (kernel - 1) + 1:
            continue
        conv = nn.Conv2d(1, 1, kernel, stride, pad, dilation)
        left, right, top, bottom = effective_pads(conv, size, size + 1)
        where = f"size={size} pad={pad} k={kernel} s={stride} d={dilation}"
        assert (top, bottom) == brute_force_read(size, pad, pad, kernel, stride, dilation), where
        assert (left, right) == brute_force_read(size + 1, pad, pad, kernel, stride, dilation), where


def test_output_size_matches_torch_pools():
    for size, (kernel, stride, pad), ceil_mode in itertools.product(
        (1, 2, 4, 5, 7, 8), ((3, 2, 1), (2, 2, 0), (3, 3, 1), (5, 2, 2)), (False, True)
    ):
        if size + 2 * pad < kernel:
            continue
        pool = nn.MaxPool2d(kernel, stride, pad, ceil_mode=ceil_mode)
        want = pool(torch.zeros(1, 1, size, size)).shape[-1]
        assert output_size(size, pad, pad, kernel, stride, 1, ceil_mode) == want, (size, kernel, stride, pad)


def _toy() -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, stride=2, padding=1),
        nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True),
        nn.Conv2d(4, 4, 1),
        nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False),
    )


def test_rows_on_a_toy_model():
    model = convert_padding(_toy(), "partial")
    conv, pool, pointwise, avg = report_layers(model, size=8)
    assert (conv.layer, conv.input_hw, conv.pads, conv.read) == (
        "PartialConv2d",
        (8, 8),
        (1, 1, 1, 1),
        (1, 0, 1, 0),
    )
    assert conv.one_sided == "H,W" and conv.mode == "partial" and conv.converted
    # 4x4 in, ceil mode: a third window starts at row 3 and reads one row past the declared pad
    assert pool.input_hw == (4, 4) and pool.read == (1, 2, 1, 2) and pool.mode is None
    assert "-inf" in pool.action
    assert pointwise.action == "untouched (no padding)" and pointwise.one_sided == ""
    assert "count_include_pad=False" in avg.action
    assert report_layers(model, size=9)[0].one_sided == ""


def test_table_is_aligned_with_totals():
    text = format_layer_report(report_layers(convert_padding(_toy(), "reflect"), size=8))
    lines = text.splitlines()
    assert lines[0].split()[0] == "layer" and len(lines) == 6
    assert lines[1].index("Padded") == lines[2].index("MaxPool2d")
    assert "padded convs 1 (reflect; converted 1)" in lines[-1]
    assert "reading their padding one-sided 2" in lines[-1]


def test_resnet50_audit_counts():
    rows = audit_model("resnet50", "partial", size=64)
    padded = [r for r in rows if r.mode is not None]
    assert len(padded) == 17 and all(r.mode == "partial" and r.converted for r in padded)
    assert sum(r.kind == "conv" for r in rows) == 53
    # the stem and the three stride-2 3x3 convs see even inputs and never read their bottom/right pad
    assert [r.name for r in padded if r.one_sided] == [
        "conv1",
        "layer2.0.conv2",
        "layer3.0.conv2",
        "layer4.0.conv2",
    ]


def test_tf_same_layers_show_dynamic_pads():
    rows = audit_model("tf_mobilenetv3_small_100", "zero", size=65, num_classes=10, source="timm")
    same = [r for r in rows if r.padding == "tf-same"]
    assert same and all(r.mode == "zero" and not r.converted for r in same)
    stem = same[0]
    assert stem.input_hw == (65, 65) and stem.pads == (1, 1, 1, 1)


@pytest.mark.parametrize(
    "argv,needle",
    [(["no_such_net"], "no_such_net"), (["resnet18", "--padding", "mirror"], "zero, reflect, replicate")],
)
def test_cli_errors_are_one_line_exit_2(argv, needle, capsys):
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and needle in captured.err and "Traceback" not in captured.err


def test_module_entry_point(monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["padlib.audit", "resnet18", "--padding", "partial", "--size", "32"])
    with pytest.raises(SystemExit) as exit_:
        runpy.run_module("padlib.audit", run_name="__main__")
    assert exit_.value.code == 0
    assert "padded convs 17 (partial; converted 17), unpadded convs untouched 3" in capsys.readouterr().out

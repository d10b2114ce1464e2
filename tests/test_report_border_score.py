"""The border-artifact score: border / interior mean |activation|, by hand and through a real conv's padding
(the whole experiment on a sweep runs in test_report_figures.py's end-to-end test)."""

import pytest
import torch
from torch import nn

from padlib.report.border_score import BorderSums, border_scores


def test_border_score_by_hand():
    maps = torch.ones(2, 4, 5)
    maps[:, 0, :] = maps[:, -1, :] = maps[:, :, 0] = maps[:, :, -1] = 3.0
    s = BorderSums()
    s.add(maps)
    assert s.score == pytest.approx(3.0)
    s.add(torch.ones(3, 2, 2))  # no interior: ignored
    assert s.score == pytest.approx(3.0)


def test_border_scores_see_padding():
    """A conv whose padding adds constant 1s to its border: zero padding's border is weaker than the inside."""
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    nn.init.constant_(conv.weight, 1.0)
    model = nn.Sequential(conv)
    scores = border_scores(model, ["0"], [torch.ones(2, 1, 8, 8)], torch.device("cpu"))
    # interior sums 9 ones; the border ring averages (4 corners x 4 + 24 edges x 6) / 28
    assert scores["0"] == pytest.approx((4 * 4 + 24 * 6) / 28 / 9)

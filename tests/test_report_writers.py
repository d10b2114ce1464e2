"""The writers: a Markdown table keeps one width whatever its cells hold."""

import re

from padlib.report.writers import Column, Table, to_latex, to_markdown
from tests.report_fixtures import markdown_tables


def test_markdown_rows_have_the_header_width_whatever_the_cells_hold():
    table = Table("t", [Column("arch", "text"), Column("a|b", header="x | y"), Column("note", "text")],
                  [{"arch": "resnet18 [sep=|]", "a|b": 1.5, "note": "two\nlines"}, {"arch": "vgg16_bn"}])
    [parsed] = markdown_tables(to_markdown(table))
    assert [len(row) for row in parsed] == [3, 3, 3, 3]
    assert parsed[0] == ["arch", r"x \| y", "note"]
    assert parsed[2] == [r"resnet18 [sep=\|]", "1.500", "two lines"]
    assert parsed[3] == ["vgg16_bn", "-", "-"]


def test_latex_escapes_what_it_must():
    table = Table("a_b & c", [Column("x", "text")], [{"x": "50% of $5 #1 ~ ^ \\ {}"}])
    tex = to_latex(table)
    assert r"50\% of \$5 \#1 \textasciitilde{} \^{} \textbackslash{} \{\}" in tex
    assert re.search(r"\\caption\{a\\_b \\& c\}", tex)

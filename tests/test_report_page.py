"""`fashion.evaluation.report_page`: sections of paragraphs, lists, tables and figures rendered
as one self-contained HTML page and as Markdown."""

import base64
import re

import pytest

from fashion.evaluation.report_page import (
    PageFigure,
    Section,
    Table,
    format_value,
    render_html,
    render_markdown,
)

PNG = b"\x89PNG\r\n\x1a\n fake image bytes"


@pytest.mark.parametrize("value, text", [
    (None, "-"), (0.0, "0.0000"), (0.93875, "0.9387"), (12.5, "12.5000"),
    (1.5e-4, "0.00015"), (2.5e7, "2.5e+07"), (3, "3"), ("vgg", "vgg"), (True, "True"),
])
def test_values_are_short_and_comparable(value, text):
    assert format_value(value) == text


@pytest.fixture
def sections():
    return [
        Section("How good", ["Right 93.88% of the time on `seed`'s test split.",
                             ["first <point>", "second & `last`"]]),
        Section("Trials", [Table(["trial", "score", "note"],
                                 [["0000", 0.5, None], ["0001", 0.9, "a|b"]], highlight=1)]),
        Section("Curves", [PageFigure("curves.png", 'Loss "per" epoch <train>')]),
    ]


def test_html_is_one_escaped_page_with_its_figures_embedded(tmp_path, sections):
    (tmp_path / "curves.png").write_bytes(PNG)
    page = render_html("Run <1>", sections, tmp_path)
    assert page.startswith("<!DOCTYPE html>") and page.rstrip().endswith("</html>")
    assert "<title>Run &lt;1&gt;</title>" in page and "<h1>Run &lt;1&gt;</h1>" in page
    assert re.findall(r"<h2>(.*?)</h2>", page) == ["How good", "Trials", "Curves"]
    assert "<p>Right 93.88% of the time on <code>seed</code>&#x27;s test split.</p>" in page
    assert "<ul><li>first &lt;point&gt;</li><li>second &amp; <code>last</code></li></ul>" in page
    assert "<tr><th>trial</th><th>score</th><th>note</th></tr>" in page
    assert "<tr><td>0000</td><td>0.5000</td><td>-</td></tr>" in page
    assert '<tr class="highlight"><td>0001</td><td>0.9000</td><td>a|b</td></tr>' in page
    [source] = re.findall(r'<img src="data:image/png;base64,([^"]+)"', page)
    assert base64.b64decode(source) == PNG  # no file to fetch: the page stands alone
    caption = "Loss &quot;per&quot; epoch &lt;train&gt;"
    assert f'alt="{caption}"' in page and f"<figcaption>{caption}</figcaption>" in page


def test_markdown_links_its_figures_and_bolds_the_highlighted_row(sections):
    text = render_markdown("Run 1", sections, "figures")
    lines = text.splitlines()
    assert lines[:2] == ["# Run 1", ""]
    assert [line for line in lines if line.startswith("## ")] == ["## How good", "## Trials",
                                                                  "## Curves"]
    assert "Right 93.88% of the time on `seed`'s test split." in lines
    assert "- first <point>" in lines and "- second & `last`" in lines
    table = lines[lines.index("| trial | score | note |"):][:4]
    assert table == ["| trial | score | note |", "| --- | --- | --- |", "| 0000 | 0.5000 | - |",
                     "| **0001** | **0.9000** | **a\\|b** |"]
    assert '![Loss "per" epoch <train>](figures/curves.png)' in lines
    assert '*Loss "per" epoch <train>*' in lines


def test_a_missing_figure_file_is_not_silently_left_out(tmp_path):
    with pytest.raises(FileNotFoundError):
        render_html("Run", [Section("Curves", [PageFigure("gone.png", "gone")])], tmp_path)

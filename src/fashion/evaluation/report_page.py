"""A report as text: sections of paragraphs, tables and figures, rendered as HTML and Markdown."""

from __future__ import annotations

import base64
import html
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Table:
    headers: list[str]
    rows: list[list]
    highlight: int | None = None  # index of a row to emphasise, e.g. the best trial


@dataclass(frozen=True)
class PageFigure:
    file: str  # PNG file name inside the figures folder
    caption: str


@dataclass(frozen=True)
class Section:
    title: str
    blocks: list = field(default_factory=list)  # str paragraphs, lists of str, Tables, Figures


def format_value(value) -> str:
    """Numbers short and comparable; None as a dash; everything else as text."""
    if value is None:
        return "-"
    if isinstance(value, float):
        plain = value == 0 or 1e-2 <= abs(value) < 1e5
        return f"{value:.4f}" if plain else f"{value:.4g}"
    return str(value)


CSS = """
body { font-family: system-ui, sans-serif; max-width: 1200px; margin: 2em auto; padding: 0 1em;
       color: #222; line-height: 1.45; }
h1 { border-bottom: 2px solid #ddd; padding-bottom: .3em; }
h2 { margin-top: 2em; border-bottom: 1px solid #eee; }
table { border-collapse: collapse; margin: 1em 0; font-size: 0.88em; }
th, td { border: 1px solid #ddd; padding: .25em .6em; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { background: #f4f4f4; }
tr.highlight td { background: #fff4c2; font-weight: 600; }
.scroll { overflow-x: auto; }
figure { margin: 1.5em 0; }
figure img { max-width: 100%; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.9em; }
code { background: #f4f4f4; padding: 0 .2em; }
"""


def render_html(title: str, sections: list[Section], figures_dir: Path) -> str:
    """Return one HTML page with every figure embedded as base64, so it needs no server or net."""
    parts = [f"<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
             f"<title>{html.escape(title)}</title>\n<style>{CSS}</style>\n</head>\n<body>\n"
             f"<h1>{html.escape(title)}</h1>"]
    for section in sections:
        parts.append(f"<h2>{html.escape(section.title)}</h2>")
        parts.extend(_html_block(block, figures_dir) for block in section.blocks)
    parts.append("</body>\n</html>\n")
    return "\n".join(parts)


def _html_block(block, figures_dir: Path) -> str:
    if isinstance(block, PageFigure):
        data = base64.b64encode((figures_dir / block.file).read_bytes()).decode("ascii")
        caption = html.escape(block.caption)
        return (f'<figure><img src="data:image/png;base64,{data}" alt="{caption}">'
                f"<figcaption>{caption}</figcaption></figure>")
    if isinstance(block, Table):
        head = "".join(f"<th>{html.escape(h)}</th>" for h in block.headers)
        rows = []
        for i, row in enumerate(block.rows):
            cells = "".join(f"<td>{html.escape(format_value(v))}</td>" for v in row)
            mark = ' class="highlight"' if i == block.highlight else ""
            rows.append(f"<tr{mark}>{cells}</tr>")
        return f'<div class="scroll"><table><tr>{head}</tr>\n' + "\n".join(rows) + "</table></div>"
    if isinstance(block, list):
        return "<ul>" + "".join(f"<li>{_html_inline(item)}</li>" for item in block) + "</ul>"
    return f"<p>{_html_inline(block)}</p>"


def _html_inline(text: str) -> str:
    """Escape text, turning `code` spans (Markdown's backticks) into <code>."""
    pieces = html.escape(text).split("`")
    return "".join(f"<code>{p}</code>" if i % 2 else p for i, p in enumerate(pieces))


def render_markdown(title: str, sections: list[Section], figures_folder: str) -> str:
    """Return the same report as Markdown, its figures linked from `figures_folder`."""
    lines = [f"# {title}", ""]
    for section in sections:
        lines += [f"## {section.title}", ""]
        for block in section.blocks:
            lines += _markdown_block(block, figures_folder) + [""]
    return "\n".join(lines)


def _markdown_block(block, figures_folder: str) -> list[str]:
    if isinstance(block, PageFigure):
        return [f"![{block.caption}]({figures_folder}/{block.file})", "", f"*{block.caption}*"]
    if isinstance(block, Table):
        def cells(values):
            return "| " + " | ".join(format_value(v).replace("|", "\\|") for v in values) + " |"

        rows = [cells(r) if i != block.highlight else cells([f"**{format_value(v)}**" for v in r])
                for i, r in enumerate(block.rows)]
        return [cells(block.headers), "| " + " | ".join("---" for _ in block.headers) + " |",
                *rows]
    if isinstance(block, list):
        return [f"- {item}" for item in block]
    return [block]

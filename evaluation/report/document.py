"""A small document model (headings, paragraphs, tables, images) rendered to Markdown and to HTML.

The report is built once as a list of blocks and written twice, so the two formats never drift.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field


@dataclass
class Heading:
    text: str
    level: int = 2
    """1 = the title, 2 = a section, 3 = a subsection."""


@dataclass
class Paragraph:
    text: str
    """Plain text; rendered escaped in HTML, as is in Markdown."""


@dataclass
class Table:
    header: list[str]
    rows: list[list[str]]
    caption: str = ""
    """Optional line printed under the table."""

    def __post_init__(self) -> None:
        for row in self.rows:
            if len(row) != len(self.header):
                raise ValueError(f"table row {row} has {len(row)} cells, header has {len(self.header)}")

    def to_markdown(self) -> str:
        lines = [
            "| " + " | ".join(_markdown_cell(cell) for cell in self.header) + " |",
            "|" + "|".join(" --- " for _ in self.header) + "|",
        ]
        lines += ["| " + " | ".join(_markdown_cell(cell) for cell in row) + " |" for row in self.rows]
        if self.caption:
            lines += ["", self.caption]
        return "\n".join(lines)


@dataclass
class Image:
    path: str
    """Path relative to the report's folder (the PNG is written beside report.md)."""
    alt: str


@dataclass
class Document:
    blocks: list[Heading | Paragraph | Table | Image] = field(default_factory=list)

    def add(self, *blocks: Heading | Paragraph | Table | Image) -> None:
        self.blocks.extend(blocks)

    def to_markdown(self) -> str:
        return "\n\n".join(_block_markdown(block) for block in self.blocks) + "\n"

    def to_html(self, title: str) -> str:
        body = "\n".join(_block_html(block) for block in self.blocks)
        return (
            "<!DOCTYPE html>\n<html><head><meta charset='utf-8'>"
            f"<title>{html.escape(title)}</title>\n<style>{_CSS}</style></head>\n"
            f"<body>\n{body}\n</body></html>\n"
        )


_CSS = (
    "body{font-family:sans-serif;max-width:1100px;margin:2em auto;line-height:1.4}"
    "table{border-collapse:collapse;margin:1em 0}"
    "th,td{border:1px solid #bbb;padding:4px 8px;text-align:right}"
    "th:first-child,td:first-child{text-align:left}"
    "img{max-width:100%}.caption{color:#555;font-size:90%}"
)


def _markdown_cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _block_markdown(block: Heading | Paragraph | Table | Image) -> str:
    if isinstance(block, Heading):
        return "#" * block.level + " " + block.text
    if isinstance(block, Paragraph):
        return block.text
    if isinstance(block, Image):
        return f"![{block.alt}]({block.path})"
    return block.to_markdown()


def _block_html(block: Heading | Paragraph | Table | Image) -> str:
    if isinstance(block, Heading):
        return f"<h{block.level}>{html.escape(block.text)}</h{block.level}>"
    if isinstance(block, Paragraph):
        return f"<p>{html.escape(block.text)}</p>"
    if isinstance(block, Image):
        return f"<p><img src='{html.escape(block.path)}' alt='{html.escape(block.alt)}'></p>"
    head = "".join(f"<th>{html.escape(cell)}</th>" for cell in block.header)
    rows = "".join(
        "<tr>" + "".join(f"<td>{html.escape(cell)}</td>" for cell in row) + "</tr>" for row in block.rows
    )
    caption = f"<p class='caption'>{html.escape(block.caption)}</p>" if block.caption else ""
    return f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>{caption}"

"""``python -m evaluation report RUN_DIR... [out=DIR]``."""

from __future__ import annotations

from dataclasses import dataclass

from ..cli import UsageError, option
from ..report import build_report


@dataclass
class Options:
    out: str = option("report", help="folder that receives report.md, report.html and the PNG plots")


def run(options: Options, positional: list[str]) -> int:
    if not positional:
        raise UsageError(
            "report needs run folders: python -m evaluation report RUN_DIR [RUN_DIR ...] [out=DIR]"
        )
    markdown_path, html_path = build_report(positional, options.out)
    print(f"wrote {markdown_path} and {html_path}")
    return 0

"""``python -m evaluation report RUN_DIR... [out=DIR]``, and ``python -m evaluation report mode=reproduction
[root=outputs/repro] [out=docs]`` (docs/reproduction.md from the runs of benchmarks/reproduce.py)."""

from __future__ import annotations

from dataclasses import dataclass

from ..cli import UsageError, option
from ..report import build_report
from ..report.reproduction import build_reproduction

MODES = ("runs", "reproduction")


@dataclass
class Options:
    mode: str = option("runs", help="runs: compare the RUN_DIRs given | reproduction: the paper's claims")
    out: str | None = option(None, help="output folder (default: report for runs, docs for reproduction)")
    root: str = option("outputs/repro", help="reproduction mode: benchmarks/reproduce.py's --root")


def run(options: Options, positional: list[str]) -> int:
    if options.mode not in MODES:
        raise UsageError(f"mode must be one of {', '.join(MODES)}, got {options.mode!r}")
    if options.mode == "reproduction":
        if positional:
            raise UsageError("mode=reproduction reads root=DIR, not run folders")
        path = build_reproduction(options.root, options.out or "docs")
        print(f"wrote {path}")
        return 0
    if not positional:
        raise UsageError(
            "report needs run folders: python -m evaluation report RUN_DIR [RUN_DIR ...] [out=DIR]"
        )
    markdown_path, html_path = build_report(positional, options.out or "report")
    print(f"wrote {markdown_path} and {html_path}")
    return 0

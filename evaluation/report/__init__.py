"""Markdown + HTML reports comparing run folders (loss curves, perplexity, downstream, LRA, synthetic)."""

from .build import build_report

__all__ = ["build_report"]

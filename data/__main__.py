"""``python -m data build NAME [KEY=VALUE ...]``: build (or find) a data config's cache and describe it.

NAME is a file stem under configs/data/ or a path to a YAML file; KEY=VALUE pairs override its
keys (dotted for nested ones, values parsed as YAML), e.g.
``python -m data build lra_pathfinder workers=16`` or ``python -m data build embedded seqlen=512``.
Useful to prepare large sets (Pathfinder, Path-X, OpenWebText) once before training.
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

import yaml

CONFIGS = Path(__file__).resolve().parent.parent / "configs" / "data"
USAGE = "usage: python -m data build NAME|FILE.yaml [KEY=VALUE ...]"


def load_config(name: str, overrides: list[str]) -> dict:
    """The data config NAME (or YAML path) with KEY=VALUE overrides applied."""
    path = Path(name) if name.endswith((".yaml", ".yml")) else CONFIGS / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in CONFIGS.glob("*.yaml")))
        raise SystemExit(f"no data config {name!r}; known: {known}")
    config = yaml.safe_load(path.read_text())
    for item in overrides:
        key, separator, value = item.partition("=")
        if not separator:
            raise SystemExit(f"override {item!r} is not KEY=VALUE\n{USAGE}")
        *parents, leaf = key.removeprefix("data.").split(".")
        node = config
        for parent in parents:
            node = node.setdefault(parent, {})
        node[leaf] = yaml.safe_load(value)
    return config


def main(argv: list[str]) -> int:
    if len(argv) < 2 or argv[0] != "build":
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    from mamba_lm.data import build_datamodule

    module = build_datamodule(load_config(argv[1], argv[2:]), seed=0)
    print(json.dumps(module.describe(), indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

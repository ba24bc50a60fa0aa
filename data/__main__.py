"""Data commands: build a data config's cache, verify token shards, build the code corpus.

``python -m data build NAME [KEY=VALUE ...]``: build (or find) a data config's cache and describe
it. NAME is a file stem under configs/data/ or a path to a YAML file; KEY=VALUE pairs override its
keys (dotted for nested ones, merged with OmegaConf as Hydra does), e.g. ``python -m data build lra_pathfinder
workers=16`` or ``python -m data build embedded seqlen=512 verify=full``. Useful to prepare large
sets (Pathfinder, Path-X, OpenWebText) once before training.

``python -m data verify FOLDER [sample|full]``: check a token-shard folder (the ``shards`` path that
``build`` prints) against its manifest; ``full`` (the default here) hashes every byte. Exit status
1 and one line naming the shard when one differs.

``python -m data code-corpus out=DIR [packages=[NAME==VERSION,...]] [downloads=DIR]
[max_file_bytes=N]``: the Python-source corpus of ``configs/data/code_corpus.yaml``
(:mod:`data.lm.code_corpus`).
"""

from __future__ import annotations

import json
import logging
import sys
from pathlib import Path

from mamba_lm.data import build_datamodule
from mamba_lm.data.lm.code_corpus import build_code_corpus
from mamba_lm.data.lm.shards import ShardError, load_manifest
from omegaconf import DictConfig, OmegaConf

from mamba_lm.config_files import config_dir

USAGE = """usage: python -m data build NAME|FILE.yaml [KEY=VALUE ...]
       python -m data verify SHARD_FOLDER [sample|full]
       python -m data code-corpus out=DIR [packages=[NAME==VERSION,...]] [downloads=DIR] [max_file_bytes=N]"""


def parse_overrides(items: list[str]) -> dict:
    """{key: value} from KEY=VALUE strings (dotted keys nest), values typed by OmegaConf."""
    for item in items:
        if "=" not in item:
            raise SystemExit(f"argument {item!r} is not KEY=VALUE\n{USAGE}")
    return OmegaConf.to_container(OmegaConf.from_dotlist(items))


def load_config(name: str, overrides: list[str]) -> DictConfig:
    """The data config NAME (a file stem under the Hydra configs' data/ group, or a YAML path) with
    KEY=VALUE overrides merged in (a ``data.`` prefix is optional); the schema checks it when it is built."""
    configs = config_dir() / "data"
    path = Path(name) if name.endswith((".yaml", ".yml")) else configs / f"{name}.yaml"
    if not path.is_file():
        known = ", ".join(sorted(p.stem for p in configs.glob("*.yaml")))
        raise SystemExit(f"no data config {name!r}; known: {known}")
    parse_overrides(overrides)  # each is KEY=VALUE
    dotlist = [item.removeprefix("data.") for item in overrides]
    return OmegaConf.merge(OmegaConf.load(path), OmegaConf.from_dotlist(dotlist))


def build(args: list[str]) -> int:
    if not args:
        print(USAGE, file=sys.stderr)
        return 2
    try:
        module = build_datamodule(load_config(args[0], args[1:]), seed=0)
    except ValueError as error:  # a bad key or value, named by the schema
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(module.describe(), indent=2))
    return 0


def verify(args: list[str]) -> int:
    if len(args) not in (1, 2) or args[1:] not in ([], ["sample"], ["full"]):
        print(USAGE, file=sys.stderr)
        return 2
    mode = args[1] if len(args) == 2 else "full"
    try:
        manifest = load_manifest(Path(args[0]), mode)
    except ShardError as error:
        print(f"error: {error}", file=sys.stderr)
        return 1
    shards = sum(len(entry["shards"]) for entry in manifest["splits"].values())
    tokens = {split: entry["tokens"] for split, entry in manifest["splits"].items()}
    print(json.dumps({"folder": args[0], "check": mode, "ok": True, "shards": shards, "tokens": tokens}))
    return 0


def code_corpus(args: list[str]) -> int:
    options = parse_overrides(args)
    unknown = sorted(set(options) - {"out", "packages", "downloads", "max_file_bytes", "shard_bytes"})
    if "out" not in options or unknown:
        print(f"unknown option(s) {unknown}\n{USAGE}" if unknown else USAGE, file=sys.stderr)
        return 2
    if isinstance(options.get("packages"), str):
        options["packages"] = options["packages"].split(",")
    manifest = build_code_corpus(**options)
    summary = {key: manifest[key] for key in ("files", "text_bytes")}
    print(json.dumps({**summary, "outputs": len(manifest["outputs"]), "out": str(options["out"])}, indent=2))
    return 0


COMMANDS = {"build": build, "verify": verify, "code-corpus": code_corpus}


def main(argv: list[str]) -> int:
    if not argv or argv[0] not in COMMANDS:
        print(USAGE, file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    return COMMANDS[argv[0]](argv[1:])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

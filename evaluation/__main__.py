"""``python -m evaluation <command> key=value ...``: perplexity, harness, lra, synthetic, generate, report,
export. An installed package has the same commands as ``mamba-lm-evaluate <command> key=value ...``.

``python -m evaluation help [command]`` lists the commands, or one command's keys with their defaults.
Errors in the input (unknown command or key, a bad value, a missing checkpoint...) print one line
that names the cause and exit with status 2.
"""

from __future__ import annotations

import importlib
import sys

from mamba_lm.trainer import CheckpointError

from .cli import EvaluationError, UsageError, describe_options, parse_options, split_arguments
from .commands import COMMANDS


def usage(command: str | None = None) -> str:
    if command in COMMANDS:
        module = importlib.import_module(f".commands.{command}", __package__)
        lines = [f"python -m evaluation {command} key=value ...", f"  {COMMANDS[command]}", "  keys:"]
        return "\n".join(lines + describe_options(module.Options))
    lines = ["usage: python -m evaluation <command> key=value ...", "", "commands:"]
    lines += [f"  {name:<11} {summary}" for name, summary in COMMANDS.items()]
    lines += ["", "python -m evaluation help <command>   lists a command's keys"]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("help", "-h", "--help"):
        print(usage(argv[1] if len(argv) > 1 else None))
        return 0
    command, arguments = argv[0], argv[1:]
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}\n\n{usage()}", file=sys.stderr)
        return 2
    if any(argument in ("-h", "--help", "help") for argument in arguments):
        print(usage(command))
        return 0
    module = importlib.import_module(f".commands.{command}", __package__)
    try:
        positional, pairs = split_arguments(arguments)
        options = parse_options(module.Options, pairs, command)
        return module.run(options, positional)
    except UsageError as error:
        print(f"error: {error}\n\n{usage(command)}", file=sys.stderr)
        return 2
    except expected_errors() as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        print(f"error: {message}", file=sys.stderr)
        return 2


def expected_errors() -> tuple[type[BaseException], ...]:
    """Errors that describe bad input or an unusable environment: printed as one line, no traceback."""
    return (ValueError, FileNotFoundError, FileExistsError, KeyError, EvaluationError, CheckpointError)


if __name__ == "__main__":
    sys.exit(main())

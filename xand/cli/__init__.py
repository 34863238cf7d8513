"""The ``python -m xand`` command line.

Each sub-command is one module in this package exposing ``NAME``, ``HELP``, ``add_arguments(parser)``
and ``run(args) -> int``. Modules are discovered, so adding a command never edits this file. Command
modules stay thin: they parse arguments, call the core and print; heavy imports (torch, wfdb) happen
inside ``run`` so that ``--help`` is instant.
"""

from __future__ import annotations

import argparse
import importlib
import pkgutil
import sys


def _commands() -> dict[str, object]:
    found = {}
    for info in pkgutil.iter_modules(__path__):
        if info.name.startswith("_"):
            continue
        mod = importlib.import_module(f"{__name__}.{info.name}")
        found[mod.NAME] = mod
    return dict(sorted(found.items()))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m xand",
        description="XAND review: explainable 12-lead ECG classification (research grade, not a medical device).",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, mod in _commands().items():
        p = sub.add_parser(name, help=mod.HELP, description=mod.HELP)
        mod.add_arguments(p)
        p.set_defaults(_run=mod.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    from xand.errors import XandError

    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except XandError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2

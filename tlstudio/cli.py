"""The ``tlstudio`` command line: ``scan | models | layers | train | predict | export``.

With no arguments it opens the desktop app. Every command runs on the Qt-free core, and any
:class:`~tlstudio.core.errors.TlstudioError` ends the command with a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from tlstudio import __version__
from tlstudio.commands import COMMANDS


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tlstudio",
        description="Transfer learning for image classification. Run with no command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"tlstudio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"tlstudio.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"tlstudio.commands.{name}":
                raise
            continue
        module.register(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args_list = list(sys.argv[1:] if argv is None else argv)
    if not args_list:
        from tlstudio.app import main as app_main

        return app_main([])
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    args = parser.parse_args(args_list)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from tlstudio.core.errors import TlstudioError

    try:
        return int(args.func(args) or 0)
    except TlstudioError as exc:
        print(f"tlstudio {args.command}: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"tlstudio {args.command}: interrupted", file=sys.stderr)
        return 130


def gui_main() -> int:
    """Entry point of the ``tlstudio-gui`` script."""
    from tlstudio.app import main as app_main

    return app_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())

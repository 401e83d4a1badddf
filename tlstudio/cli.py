"""The ``tlstudio`` command line: ``scan | models | layers | train | predict | export``.

With no arguments it opens the desktop app. Every command runs on the Qt-free core. No Python
traceback reaches a user: a usage error, a :class:`~tlstudio.core.errors.TlstudioError` or a file
that cannot be read or written ends the command with one line ``tlstudio COMMAND: reason`` and exit
code 2; anything unforeseen with one line and exit code 1. ``--debug`` (anywhere on the command line,
or ``TLSTUDIO_DEBUG=1``) prints the traceback too, for bug reports.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from tlstudio import __version__
from tlstudio.commands import COMMANDS


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error in one line (``tlstudio train: error ...``), exit code 2."""

    def error(self, message: str) -> None:  # type: ignore[override]
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="tlstudio",
        description="Transfer learning for image classification. Run with no command to open the app.",
    )
    parser.add_argument("--version", action="version", version=f"tlstudio {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the Python traceback of an error (for bug reports)")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)
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
    debug = "--debug" in args_list or os.environ.get("TLSTUDIO_DEBUG", "") not in ("", "0")
    args_list = [a for a in args_list if a != "--debug"]
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    parser = build_parser()
    try:
        args = parser.parse_args(args_list)
    except SystemExit as exc:  # --help, --version, or a usage error already reported in one line
        return int(exc.code or 0) if not isinstance(exc.code, str) else 2
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    from tlstudio.core.errors import TlstudioError

    name = f"tlstudio {args.command}"
    try:
        return int(args.func(args) or 0)
    except TlstudioError as exc:
        _report(name, str(exc), debug)
        return 2
    except OSError as exc:  # a file or folder the user named that cannot be read or written
        where = f": {exc.filename}" if exc.filename else ""
        _report(name, f"{exc.strerror or exc}{where}", debug)
        return 2
    except KeyboardInterrupt:
        _report(name, "interrupted", debug)
        return 130
    except Exception as exc:  # noqa: BLE001 - a bug: one line for the user, the traceback with --debug
        text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        hint = "" if debug else " (run again with --debug to see the traceback and report it)"
        _report(name, f"unexpected error: {type(exc).__name__}: {text}{hint}", debug)
        return 1


def _report(name: str, message: str, debug: bool) -> None:
    if debug:
        import traceback

        traceback.print_exc(file=sys.stderr)
    first = message.strip().splitlines()[0] if message.strip() else "failed"
    print(f"{name}: {first}", file=sys.stderr)


def console_main() -> int:
    """Entry point of the ``tlstudio`` script and of ``python -m tlstudio``: :func:`main`, then exit.

    A command that loaded TensorFlow leaves quickly: the exit handlers run and the output is
    flushed, then the process ends without the interpreter's teardown, which with TensorFlow
    loaded takes about a second (its modules and native threads torn down one by one) and
    changes nothing on disk: every file of the command is written and closed by then.
    In-process callers (tests, scripts) use :func:`main`, which always returns.
    """
    code = main()
    if "tensorflow" in sys.modules:
        exit_now(code)
    return code


def exit_now(code: int) -> None:
    """End the process with ``code`` the way the interpreter's exit begins, without its teardown:
    wait for threads that are not daemons, run the exit handlers, flush the output."""
    import atexit
    import threading

    threading._shutdown()  # type: ignore[attr-defined]  # joins non-daemon threads, as at a normal exit
    atexit._run_exitfuncs()  # weakref finalizers (temporary folders) and registered handlers
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe: nothing more can be said
            pass
    os._exit(code)


def gui_main() -> int:
    """Entry point of the ``tlstudio-gui`` script."""
    from tlstudio.app import main as app_main

    return app_main(sys.argv[1:])


if __name__ == "__main__":
    sys.exit(main())

"""Entry point of the bundled app: the same ``tlstudio`` command line, which opens the window with no arguments.

``tlstudio -m MODULE ARGS...`` runs a bundled module as a script, the way ``python -m`` does: the export
check (``tlstudio export --verify``) starts ``sys.executable -m tlstudio.core.deploy.verify`` in a fresh process,
and in the bundle ``sys.executable`` is this launcher.
"""

import multiprocessing
import runpy
import sys

if __name__ == "__main__":
    multiprocessing.freeze_support()
    if len(sys.argv) > 2 and sys.argv[1] == "-m":
        module = sys.argv[2]
        sys.argv = [sys.argv[0], *sys.argv[3:]]
        runpy.run_module(module, run_name="__main__", alter_sys=True)
        sys.exit(0)
    from tlstudio.cli import main

    sys.exit(main())

"""Entry point of the bundled app: the same ``tlstudio`` command line, which opens the window with no arguments."""

import multiprocessing
import sys

from tlstudio.cli import main

if __name__ == "__main__":
    multiprocessing.freeze_support()
    sys.exit(main())

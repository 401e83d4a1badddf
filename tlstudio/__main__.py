"""``python -m tlstudio``: the command line; with no arguments it opens the app."""

import sys

from tlstudio.cli import console_main

if __name__ == "__main__":
    sys.exit(console_main())

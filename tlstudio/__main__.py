"""``python -m tlstudio``: the command line; with no arguments it opens the app."""

import sys

from tlstudio.cli import main

if __name__ == "__main__":
    sys.exit(main())

"""One module per ``tlstudio`` sub-command.

Each module defines ``register(subparsers)`` which adds its parser and sets ``func`` to a
callable taking the parsed ``argparse.Namespace`` and returning an exit code. Modules
import nothing heavy at module level, so ``tlstudio --help`` stays instant.
"""

COMMANDS = ("scan", "models", "layers", "train", "predict", "export", "audit")

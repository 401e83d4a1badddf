"""Exceptions whose message is meant for the user, in one line, without a traceback."""


class TlstudioError(Exception):
    """Base of every error tlstudio reports to a person (CLI one-liner, GUI message box).

    The message must say what went wrong and, where possible, what to do about it.
    """


class Cancelled(TlstudioError):
    """Long work was stopped because the user asked for it."""

    def __init__(self, message: str = "Cancelled.") -> None:
        super().__init__(message)


class Interrupted(Cancelled):
    """A run was stopped because the app is closing: it stays "interrupted" and can be resumed."""

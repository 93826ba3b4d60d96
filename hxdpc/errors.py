"""Errors that reach the user as one line and exit code 2 (bad input)."""


class InputError(Exception):
    """Bad input: `where` names the file (and offset, section or packet index)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason

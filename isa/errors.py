"""Errors that reach the user as one line and exit code 2 (bad input)."""


class InputError(Exception):
    """Bad input: `where` names the file (and offset, section or packet index)."""

    def __init__(self, where: str, reason: str):
        super().__init__(f"{where}: {reason}")
        self.where = where
        self.reason = reason


def read_json(path, what: str):
    """The JSON in file `path` (None when path is None), or InputError naming the file."""
    import json
    from pathlib import Path
    if path is None:
        return None
    try:
        return json.loads(Path(path).read_text())
    except OSError as e:
        raise InputError(str(path), f"cannot read {what}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise InputError(str(path), f"{what} is not valid JSON ({e})") from None

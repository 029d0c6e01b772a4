"""Errors a user sees as one line on stderr; the exit code tells bad input (2) from a run-time failure (1)."""


class PaperlabError(Exception):
    """A failure at run time: network, storage, training. Exit code 1."""

    exit_code = 1


class BadInput(PaperlabError):
    """Bad usage or input: a malformed ID, an unknown key, an unknown paper. Exit code 2."""

    exit_code = 2


class NotFound(BadInput):
    """Something named by the user does not exist."""


def shown(value: object, limit: int = 60) -> str:
    """A user's value quoted for an error line, cut to `limit` characters: a 120 KB argument is not echoed."""
    text = str(value)
    if len(text) <= limit:
        return repr(text)
    return f"{text[:limit]!r}… ({len(text):,} characters)"

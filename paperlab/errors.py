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


WORKER_ERRORS = "PAPERLAB_WORKER_ERRORS"  # set by `paperlab run --nproc` for its workers: a folder


def tell_launcher(message: str, code: int) -> bool:
    """A torchrun worker started by `paperlab run --nproc`: its one-line error goes to the launcher, which
    says the one that matters once (every worker may meet the same bad input). False elsewhere."""
    import os
    from pathlib import Path

    folder = os.environ.get(WORKER_ERRORS)
    if not folder:
        return False
    Path(folder, f"rank{os.environ.get('RANK', '0')}").write_text(f"{code}\n{message}", encoding="utf-8")
    return True


def told_launcher(folder: str) -> dict[int, tuple[int, str]]:
    """What each worker told `tell_launcher`: rank -> (exit code, one-line error)."""
    from pathlib import Path

    out = {}
    for path in Path(folder).glob("rank*"):
        code, _, message = path.read_text(encoding="utf-8").partition("\n")
        out[int(path.name[4:])] = (int(code), message)
    return out

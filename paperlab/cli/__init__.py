"""The `paperlab` command: thin typer commands over the library modules. Heavy imports stay lazy."""

from __future__ import annotations

import os
import sys

import typer

from paperlab.cli import lab, papers, report

app = typer.Typer(
    help="paperlab: keep the papers you read, reproduce their claims, show the evidence.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks instead of one-line errors.")):
    """paperlab: keep the papers you read, reproduce their claims, show the evidence."""


papers.register(app)
lab.register(app)
report.register(app)


def _raised_in_mlflow(exc: BaseException) -> bool:
    import traceback

    return any("/mlflow/" in frame.filename for frame in traceback.extract_tb(exc.__traceback__))


def _one_line(exc: BaseException) -> tuple[str, int]:
    from paperlab.errors import PaperlabError

    if isinstance(exc, PaperlabError):
        return str(exc), exc.exit_code
    module = type(exc).__module__
    if module.startswith(("sqlite3", "sqlalchemy")):
        from paperlab.library.db import storage_error
        from paperlab.settings import load

        settings = load()
        if _raised_in_mlflow(exc):  # name the store that failed: never the library for MLflow's error
            from paperlab.settings import redact

            return redact(f"the MLflow tracking store {settings.mlflow_uri} failed: {str(exc).splitlines()[0][:200]}"), 1
        return str(storage_error(exc, settings)), 1
    full = _disk_full(exc)
    if full:
        return full, 1
    text = str(exc)
    if module.startswith("mlflow") and any(s in text for s in ("Max retries exceeded", "Connection refused",
                                                                "Read timed out", "ConnectionError")):
        from paperlab.settings import load

        from paperlab.settings import redact

        return (f"the MLflow tracking server at {redact(load().mlflow_uri)} stopped answering; the stages finished and "
                "the last epoch checkpoint are kept: start it again, then rerun the same command with --resume"), 1
    if isinstance(exc, OSError) and exc.filename:
        return f"cannot use {exc.filename}: {exc.strerror}", 1
    first = (str(exc).strip().splitlines() or [""])[0][:300]
    if "paperlab.lab.extensions" in sys.modules:  # raised in a user's own method: name their file and line
        at = sys.modules["paperlab.lab.extensions"].where(exc)
        if at:
            return f"{at}: {type(exc).__name__}: {first} (in your method; run with --debug for the traceback)", 1
    return f"{type(exc).__name__}: {first} (run with --debug for the traceback)", 1


def _disk_full(exc: BaseException) -> str | None:
    """A full disk, whichever layer met it (torch.save, SQLite under MLflow, a plain write): one line saying so."""
    import errno
    import shutil

    from paperlab.settings import load

    chain, seen = [], exc
    while seen is not None and len(chain) < 10:
        chain.append(seen)
        seen = seen.__cause__ or seen.__context__
    said = " ".join(str(e) for e in chain)

    def free() -> int:
        home = load().home
        return shutil.disk_usage(home).free if home.exists() else 0

    # torch.save's zip writer reports a short write as "unexpected pos N vs M" (inline_container.cc): a full
    # disk when the disk is in fact full, anything else otherwise
    if not (any(getattr(e, "errno", None) == errno.ENOSPC for e in chain) or "No space left" in said
            or "disk is full" in said or "file write failed" in said
            or ("unexpected pos" in said and free() < 1 << 20)):
        return None
    home = load().home
    return f"no space left on the disk holding {home} ({free():,} bytes free); free some and rerun with --resume"


INTERRUPTED = "interrupted (an interrupted `paperlab run` continues where it stopped with --resume)"


def main() -> None:
    from typer.exceptions import Abort, TyperException

    debug = "--debug" in sys.argv[1:]
    if os.environ.get("RANK", "0") != "0" and not debug:  # a torchrun worker other than rank 0: rank 0 speaks
        quiet = os.open(os.devnull, os.O_WRONLY)  # for all (the launcher names a rank that failed; --debug shows
        os.dup2(quiet, 2)                          # why), torch's own C++ warnings included
        sys.stderr = open(os.devnull, "w")
    try:
        code = app(standalone_mode=False)
        if code == 130:  # typer turns Ctrl-C into Exit(130) before we see it
            print(INTERRUPTED, file=sys.stderr)
    except Abort:
        print("aborted", file=sys.stderr)
        code = 1
    except TyperException as exc:  # typer's own copy of click's usage errors: click's message, exit 2
        exc.show()
        code = exc.exit_code
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        code = 130
    except Exception as exc:  # every error ends as one line unless --debug
        if debug:
            raise
        from paperlab.cli.output import error_line

        from paperlab.errors import tell_launcher

        message, code = _one_line(exc)
        if not tell_launcher(message, code):
            error_line(message)
    sys.exit(code if isinstance(code, int) else 0)

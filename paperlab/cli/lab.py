"""Experiment commands (templates, run, sweep, runs, ui)."""

import typer


def register(app: typer.Typer) -> None:
    pass

"""Printing helpers shared by the commands: rich tables for people, JSON for scripts."""

from __future__ import annotations

import json
import sys
from typing import Any


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    from rich.table import Table
    from rich.text import Text

    t = Table(title=title, header_style="bold", show_edge=False, pad_edge=False)
    for column in columns:
        t.add_column(column, overflow="fold")
    for row in rows:
        t.add_row(*[Text("" if v is None else str(v)) for v in row])  # outside text is never markup
    console().print(t)


def error_line(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)

"""Printing helpers shared by the commands: plain aligned columns for people, JSON for scripts.

Plain text rather than rich tables: `list` prints a thousand rows in a few milliseconds, and nothing a
paper's title holds is ever read as markup.
"""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Indented on a terminal; compact (and several times faster to encode) into a pipe or file."""
    indent = 2 if sys.stdout.isatty() else None
    sys.stdout.write(json.dumps(data, indent=indent, ensure_ascii=False, default=str) + "\n")


def _cell(value: Any) -> str:
    return "" if value is None else " ".join(str(value).split())


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """Columns sized to their content; the last column is cut to the terminal's width on a terminal."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    if sys.stdout.isatty():
        room = shutil.get_terminal_size().columns - sum(widths[:-1]) - 2 * (len(widths) - 1)
        widths[-1] = max(10, min(widths[-1], room))
    lines = [title] if title else []
    for row in [columns, *cells]:
        text = "  ".join(v.ljust(w) if i < len(row) - 1 else v[:w] for i, (v, w) in enumerate(zip(row, widths)))
        lines.append(text.rstrip())
    sys.stdout.write("\n".join(lines) + "\n")


def error_line(message: str) -> None:
    print(f"error: {message}", file=sys.stderr)

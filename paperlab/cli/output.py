"""Printing helpers shared by the commands: plain aligned columns for people, JSON for scripts.

Plain text rather than rich tables: `list` prints a thousand rows in a few milliseconds, and nothing a
paper's title holds is ever read as markup.
"""

from __future__ import annotations

import json
import shutil
import sys
from typing import Any


# C0 and C1 control characters (but tab and newline) and the bidirectional overrides/isolates: a title from a
# BibTeX file or an arXiv feed must not clear the screen, plant an OSC-8 link or reverse the line it is on.
_UNSAFE = [*range(0x00, 0x09), *range(0x0B, 0x20), *range(0x7F, 0xA0), 0x061C, 0x200E, 0x200F,
           *range(0x202A, 0x202F), *range(0x2066, 0x206A)]
_VISIBLE = {c: f"\\x{c:02x}" if c < 0x100 else f"\\u{c:04x}" for c in _UNSAFE}
_JSON_ESCAPED = {c: f"\\u{c:04x}" for c in _UNSAFE if c >= 0x7F}  # json.dumps escapes those below 0x20 itself


def clean(text: Any) -> str:
    """Text safe to print on a terminal: control and bidi characters shown as escapes (\\x1b, \\u202e)."""
    return str(text).translate(_VISIBLE)


def say(*parts: Any, err: bool = False) -> None:
    """print() for text that holds stored or user-given data: neutralised for the terminal."""
    print(*(clean(p) for p in parts), file=sys.stderr if err else sys.stdout)


def console(stderr: bool = False):
    from rich.console import Console

    return Console(stderr=stderr, highlight=False, soft_wrap=True)


def print_json(data: Any) -> None:
    """Indented on a terminal; compact (and several times faster to encode) into a pipe or file."""
    indent = 2 if sys.stdout.isatty() else None
    text = json.dumps(data, indent=indent, ensure_ascii=False, default=str)
    sys.stdout.write(text.translate(_JSON_ESCAPED) + "\n")


def _cell(value: Any) -> str:
    return "" if value is None else clean(" ".join(str(value).split()))


def table(columns: list[str], rows: list[list[Any]], title: str | None = None) -> None:
    """Columns sized to their content; the last column is cut to the terminal's width on a terminal."""
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [max([len(c)] + [len(r[i]) for r in cells]) for i, c in enumerate(columns)]
    if sys.stdout.isatty():
        room = shutil.get_terminal_size().columns - sum(widths[:-1]) - 2 * (len(widths) - 1)
        widths[-1] = max(10, min(widths[-1], room))
    lines = [clean(title)] if title else []
    for row in [columns, *cells]:
        text = "  ".join(v.ljust(w) if i < len(row) - 1 else v[:w] for i, (v, w) in enumerate(zip(row, widths)))
        lines.append(text.rstrip())
    sys.stdout.write("\n".join(lines) + "\n")


def error_line(message: str) -> None:
    say(f"error: {message}", err=True)

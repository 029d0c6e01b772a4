"""The venue registry (venues.toml) and detection of venue, year and detail from arXiv's free text."""

from __future__ import annotations

import difflib
import re
import tomllib
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from paperlab.errors import BadInput, shown

_YEAR = r"(?P<year>(?:19|20)\d{2}|['’]\d{2})?"
_DETAILS = ("workshop", "oral", "spotlight")


@dataclass(frozen=True)
class Venue:
    short: str
    full: str
    area: str
    top_tier: bool
    kind: str
    aliases: tuple[str, ...]


@dataclass(frozen=True)
class Detected:
    venue: str
    year: int | None
    detail: str | None

    def label(self) -> str:
        return f"{self.venue} {self.year}" if self.year else self.venue


@cache
def registry() -> dict[str, Venue]:
    data = tomllib.loads((Path(__file__).parent / "venues.toml").read_text(encoding="utf-8"))
    return {
        short: Venue(short, v["full"], v["area"], v["top_tier"], v.get("kind", "conference"),
                     tuple(v.get("aliases", ())))
        for short, v in data.items()
    }


def _key(name: str) -> str:
    return re.sub(r"[\s\-]+", " ", name).strip().lower()


@cache
def _alias_index() -> dict[str, str]:
    index: dict[str, str] = {}
    for venue in registry().values():
        for alias in (venue.short, venue.full, *venue.aliases):
            index[_key(alias)] = venue.short
    return index


@cache
def _pattern() -> re.Pattern[str]:
    aliases = sorted(_alias_index(), key=len, reverse=True)
    names = "|".join(re.escape(a).replace(r"\ ", r"[\s\-]+") for a in aliases)
    return re.compile(rf"(?<![A-Za-z])(?P<name>{names})(?P<w>W(?=\b|\d))?[\s\-]*{_YEAR}(?![0-9])", re.I)


def _year(text: str | None) -> int | None:
    if not text:
        return None
    year = int(text.lstrip("'’"))
    return year + 2000 if year < 100 else year


def detect(*texts: str | None) -> Detected | None:
    """The first registry venue named in `texts` (comment first, then journal_ref), with year and detail."""
    for text in texts:
        if not text:
            continue
        found = _pattern().search(text)
        if not found:
            continue
        short = _alias_index()[_key(found.group("name"))]
        year = _year(found.group("year"))
        if year is None:
            other = re.search(r"(?<!\d)(?:19|20)\d{2}(?!\d)", text)
            year = int(other.group()) if other else None
        lowered = text.lower()
        detail = "workshop" if found.group("w") else None
        detail = detail or next((d for d in _DETAILS if d in lowered), None)
        return Detected(short, year, detail)
    return None


MAX_LABEL = 100


def parse_label(label: str) -> Detected:
    """A venue written by hand ("ICCV 2023", "nips2014", "CVPR") -> Detected; unknown names are refused.

    Read from the end, word by word, in linear time (a regular expression with a lazy name and optional
    separators backtracked for minutes on a long run of spaces)."""
    text = " ".join(label.split())
    if len(text) > MAX_LABEL:
        raise BadInput(f"venue name too long: {shown(label)} (at most {MAX_LABEL} characters)")
    detail = None
    last = text.rsplit(" ", 1)
    if len(last) == 2 and last[1].lower() in _DETAILS:
        text, detail = last[0], last[1].lower()
    year = re.search(r"(?:19|20)\d{2}$", text, re.ASCII)
    name = text[:year.start()] if year else text
    name = name.rstrip(" -'")
    short = _alias_index().get(_key(name))
    if short is None:
        choices = list(registry())
        close = difflib.get_close_matches(name, choices, n=3, cutoff=0.4)
        close = close or difflib.get_close_matches(name.upper(), [c.upper() for c in choices], n=3, cutoff=0.4)
        hint = f"; closest: {', '.join(close)}" if close else ""
        raise BadInput(f"unknown venue {shown(label)}{hint} (see `paperlab venues`)")
    return Detected(short, int(year.group()) if year else None, detail)

"""arXiv identifiers in every form people paste, reduced to (id without version, version or None)."""

from __future__ import annotations

import re

from paperlab.errors import BadInput, shown

# re.ASCII: arXiv IDs are ASCII digits only (\d would also take Arabic-Indic or full-width digits)
_NEW = re.compile(r"^(?P<id>\d{2}(?:0[1-9]|1[0-2])\.\d{4,5})(?:v(?P<v>[1-9]\d{0,2}))?$", re.ASCII)
_OLD = re.compile(r"^(?P<id>[a-z][a-z\-]*(?:\.[A-Z]{2})?/\d{2}(?:0[1-9]|1[0-2])\d{3})(?:v(?P<v>[1-9]\d{0,2}))?$",
                  re.ASCII)
_URL = re.compile(r"^(?:https?://)?(?:www\.|export\.)?arxiv\.org/(?:abs|pdf)/(?P<rest>.+?)(?:\.pdf)?/?$", re.I)


def parse(raw: str) -> tuple[str, int | None]:
    """Return (arxiv_id, version); raise BadInput naming the accepted forms when `raw` is none of them."""
    text = raw.strip()
    url = _URL.match(text)
    if url:
        text = url.group("rest")
    elif text[:6].lower() == "arxiv:":
        text = text[6:].strip()
    for pattern in (_NEW, _OLD):
        found = pattern.match(text)
        if found and pattern is _NEW and len(found.group("id")) != (10 if found.group("id") >= "1501" else 9):
            found = None  # four digits after the dot until 1412, five from 1501 on
        if found:
            version = found.group("v")
            return found.group("id"), int(version) if version else None
    raise BadInput(
        f"malformed arXiv ID {shown(raw)}: expected e.g. 1503.02531, 1503.02531v2 (versions 1 to 999), "
        "arXiv:1503.02531, https://arxiv.org/abs/1503.02531 or cs/0112017"
    )


def normalise(raw: str) -> str:
    """The ID without version, for looking a paper up."""
    return parse(raw)[0]


def split_short_id(short_id: str) -> tuple[str, int]:
    """'1503.02531v1' -> ('1503.02531', 1), as the arxiv client reports IDs."""
    arxiv_id, version = parse(short_id)
    return arxiv_id, version or 1

"""Fetching metadata through the `arxiv` package, politely: one batched query, a timeout on each
request, backoff on 429/5xx and dropped connections (urllib3's Retry), and a user agent that names us."""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from datetime import date

from paperlab import __version__
from paperlab.errors import BadInput, NotFound, PaperlabError
from paperlab.settings import Settings

USER_AGENT = f"paperlab/{__version__} (paper library for study groups; arxiv.py client)"
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER_S = 30.0


class _DeadlinePassed(Exception):
    """Raised from inside urllib3's retry loop when waiting longer would pass the fetch's deadline."""


@dataclass
class Fetched:
    arxiv_id: str
    version: int
    title: str
    authors: list[str]
    abstract: str
    published: date | None
    updated: date | None
    primary_category: str | None
    categories: list[str] = field(default_factory=list)
    comment: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    pdf_url: str | None = None


def _session(settings: Settings):
    """A requests.Session with retries (urllib3), a timeout per try and one deadline over all tries and waits."""
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    deadline = time.monotonic() + settings.arxiv_deadline

    class DeadlineRetry(Retry):
        def get_retry_after(self, response):  # a server asking for an hour should not hang the CLI
            seconds = super().get_retry_after(response)
            return None if seconds is None else min(seconds, MAX_RETRY_AFTER_S)

        def sleep(self, response=None):
            asked = Retry.get_retry_after(self, response) if response is not None else None
            wait = min(asked, MAX_RETRY_AFTER_S) if asked is not None else self.get_backoff_time()
            if time.monotonic() + wait > deadline or (asked or 0) > MAX_RETRY_AFTER_S:
                tries = len(self.history)
                if asked is not None:
                    raise _DeadlinePassed(f"arXiv is rate-limiting (HTTP {response.status}) and asks to wait "
                                          f"{asked:.0f} s; try again after that")
                last = self.history[-1] if self.history else None
                what = f"HTTP {last.status}" if last and last.status else "no answer"
                raise _DeadlinePassed(f"arXiv gave {what} on {tries} tries within {settings.arxiv_deadline:g} s "
                                      "(PAPERLAB_ARXIV_DEADLINE); try again later")
            super().sleep(response)

    class PoliteSession(requests.Session):
        rejection: str | None = None
        unreadable: bytes | None = None
        timeout_s = settings.arxiv_timeout

        def request(self, method, url, **kwargs):
            left = deadline - time.monotonic()
            if left <= 0:
                raise _DeadlinePassed(f"no complete answer from arXiv within {settings.arxiv_deadline:g} s "
                                      "(PAPERLAB_ARXIV_DEADLINE); try again later")
            kwargs["timeout"] = min(settings.arxiv_timeout, left)
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "user-agent": USER_AGENT}
            response = super().request(method, url, **kwargs)
            if response.status_code == 400:
                self.rejection = _error_entry(response.content)
            if response.status_code == 200 and not _is_atom_feed(response.content):
                self.unreadable = response.content[:40]
            return response

    retry = DeadlineRetry(
        total=settings.arxiv_retries,
        backoff_factor=settings.arxiv_backoff,
        status_forcelist=RETRY_STATUSES,
        allowed_methods=["GET"],
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = PoliteSession()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


def _is_atom_feed(content: bytes) -> bool:
    """Looks like a feed: feedparser reads real arXiv replies leniently, so only a reply without a <feed> at
    its start (binary junk, an HTML error page) counts as unreadable."""
    return re.search(rb"<feed[\s>]", content[:4096]) is not None


def _error_entry(content: bytes) -> str | None:
    """arXiv's HTTP 400 body is an Atom feed whose single entry's summary says what was wrong."""
    found = re.search(rb"<summary[^>]*>(.*?)</summary>", content, re.S)
    return found.group(1).decode("utf-8", "replace").strip() if found else None


def _to_fetched(result) -> Fetched:
    from paperlab.library.ids import split_short_id

    arxiv_id, version = split_short_id(result.get_short_id())
    return Fetched(
        arxiv_id=arxiv_id,
        version=version,
        title=" ".join(result.title.split()),
        authors=[a.name for a in result.authors],
        abstract=" ".join(result.summary.split()),
        published=result.published.date() if result.published else None,
        updated=result.updated.date() if result.updated else None,
        primary_category=result.primary_category or None,
        categories=list(result.categories),
        comment=result.comment,
        journal_ref=result.journal_ref,
        doi=result.doi,
        pdf_url=result.pdf_url,
    )


def _query(client, session, ids: list[str]) -> list[Fetched]:
    import arxiv
    import requests

    host = client.query_url_format.split("?")[0]
    try:
        results = list(client.results(arxiv.Search(id_list=ids, max_results=len(ids))))
    except arxiv.HTTPError as exc:
        if exc.status == 400:
            raise BadInput(f"arXiv rejected {', '.join(ids)}: {session.rejection or 'HTTP 400'}") from exc
        if exc.status == 429:
            raise PaperlabError("arXiv is rate-limiting requests (HTTP 429) even after backing off; "
                                "try again in a minute") from exc
        raise PaperlabError(f"arXiv answered HTTP {exc.status} after retries ({host})") from exc
    except _DeadlinePassed as exc:
        raise PaperlabError(f"{exc} ({host})") from exc
    except requests.exceptions.Timeout as exc:
        raise PaperlabError(f"arXiv did not answer in time ({host})") from exc
    except requests.exceptions.RequestException as exc:
        if "Read timed out" in str(exc):
            raise PaperlabError(f"arXiv accepted the connection but did not answer within "
                                f"{session.timeout_s:g} s per try ({host})") from exc
        errno = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
        reason = errno.group() if errno else type(exc).__name__
        raise PaperlabError(f"cannot reach arXiv at {host}: {reason}") from exc
    if session.unreadable is not None:
        raise PaperlabError(f"arXiv's reply could not be read: HTTP 200 but not an Atom feed "
                            f"(it starts {session.unreadable!r}) ({host})")
    return [_to_fetched(r) for r in results]


def fetch(requested: list[tuple[str, int | None]], settings: Settings) -> dict[str, Fetched | PaperlabError]:
    """Metadata for each (arxiv_id, version) in one query; an entry per ID, a result or the error it met."""
    import arxiv

    client = arxiv.Client(page_size=100, delay_seconds=settings.arxiv_delay, num_retries=0)
    client.query_url_format = settings.arxiv_url
    session = _session(settings)
    client._session = session  # the arxiv package keeps its requests.Session here; ours adds retries
    wanted = [f"{aid}v{v}" if v else aid for aid, v in requested]
    outcome: dict[str, Fetched | PaperlabError] = {}
    try:
        found = {f.arxiv_id: f for f in _query(client, session, wanted)}
    except BadInput:
        if len(wanted) == 1:
            raise
        found = {}
        for (aid, _), one in zip(requested, wanted):  # find which ID arXiv refuses, keep the others
            try:
                found.update({f.arxiv_id: f for f in _query(client, session, [one])})
            except BadInput as exc:
                outcome[aid] = exc
    for aid, _ in requested:
        if aid not in outcome:
            outcome[aid] = found.get(aid) or NotFound(f"{aid}: not found on arXiv")
    return outcome

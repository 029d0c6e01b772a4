"""Fetching metadata through the `arxiv` package, politely: one batched query, a timeout on each
request, backoff on 429/5xx and dropped connections (urllib3's Retry), and a user agent that names us."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from datetime import date

from paperlab import __version__
from paperlab.errors import BadInput, NotFound, PaperlabError
from paperlab.settings import Settings

USER_AGENT = f"paperlab/{__version__} (paper library for study groups; arxiv.py client)"
RETRY_STATUSES = (429, 500, 502, 503, 504)
MAX_RETRY_AFTER_S = 30.0


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
    import requests
    from requests.adapters import HTTPAdapter
    from urllib3.util.retry import Retry

    class CappedRetry(Retry):
        def get_retry_after(self, response):  # a server asking for an hour should not hang the CLI
            seconds = super().get_retry_after(response)
            return None if seconds is None else min(seconds, MAX_RETRY_AFTER_S)

    timeout = float(os.environ.get("PAPERLAB_ARXIV_TIMEOUT", "30"))

    class PoliteSession(requests.Session):
        rejection: str | None = None

        def request(self, method, url, **kwargs):
            kwargs.setdefault("timeout", timeout)
            kwargs["headers"] = {**(kwargs.get("headers") or {}), "user-agent": USER_AGENT}
            response = super().request(method, url, **kwargs)
            if response.status_code == 400:
                self.rejection = _error_entry(response.content)
            return response

    retry = CappedRetry(
        total=int(os.environ.get("PAPERLAB_ARXIV_RETRIES", "4")),
        backoff_factor=float(os.environ.get("PAPERLAB_ARXIV_BACKOFF", "2")),
        status_forcelist=RETRY_STATUSES,
        allowed_methods=["GET"],
        respect_retry_after_header=True,
        raise_on_status=False,
    )
    session = PoliteSession()
    session.mount("http://", HTTPAdapter(max_retries=retry))
    session.mount("https://", HTTPAdapter(max_retries=retry))
    return session


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
    except requests.exceptions.Timeout as exc:
        raise PaperlabError(f"arXiv did not answer in time ({host})") from exc
    except requests.exceptions.RequestException as exc:
        errno = re.search(r"\[Errno -?\d+\] [^'\")]+", str(exc))
        reason = errno.group() if errno else type(exc).__name__
        raise PaperlabError(f"cannot reach arXiv at {host}: {reason}") from exc
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

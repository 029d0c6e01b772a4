"""A local stand-in for arXiv's query API: real HTTP on 127.0.0.1, arXiv's Atom response shape.

Serves the entries in tests/data/arxiv for `id_list` queries, answers HTTP 400 with arXiv's error entry
for a malformed ID, and can be told to fail the next requests with given statuses (503, 429, ...).
"""

from __future__ import annotations

import re
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

DATA = Path(__file__).parent / "data" / "arxiv"
_VALID = re.compile(r"^(\d{4}\.\d{4,5}|[a-z\-]+(\.[A-Z]{2})?/\d{7})(v\d+)?$")
_HEAD = """<?xml version="1.0" encoding="UTF-8"?>
<feed xmlns="http://www.w3.org/2005/Atom">
  <link href="http://arxiv.org/api/query?{query}" rel="self" type="application/atom+xml"/>
  <title type="html">ArXiv Query: {query}</title>
  <id>http://arxiv.org/api/recorded</id>
  <updated>2026-11-27T00:00:00-05:00</updated>
  <opensearch:totalResults xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{total}</opensearch:totalResults>
  <opensearch:startIndex xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{start}</opensearch:startIndex>
  <opensearch:itemsPerPage xmlns:opensearch="http://a9.com/-/spec/opensearch/1.1/">{per_page}</opensearch:itemsPerPage>
"""
_ERROR = """  <entry>
    <id>http://arxiv.org/api/errors#incorrect_id_format_for_{bad}</id>
    <title>Error</title>
    <summary>incorrect id format for {bad}</summary>
    <updated>2026-11-27T00:00:00-05:00</updated>
    <link href="http://arxiv.org/api/errors#incorrect_id_format_for_{bad}" rel="alternate" type="text/html"/>
    <author>
      <name>arXiv api core</name>
    </author>
  </entry>
"""


SYNTHETIC_PREFIX = "2412.9"  # IDs like 2412.90042 get a generated entry (for many-paper tests)
_SYNTHETIC = """<entry>
    <id>http://arxiv.org/abs/{aid}v1</id>
    <updated>2024-01-02T00:00:00Z</updated>
    <published>2024-01-01T00:00:00Z</published>
    <title>Synthetic paper {aid}</title>
    <summary>A generated entry about knowledge distillation number {aid}.</summary>
    <author>
      <name>Test Author</name>
    </author>
    <link href="http://arxiv.org/abs/{aid}v1" rel="alternate" type="text/html"/>
    <arxiv:primary_category xmlns:arxiv="http://arxiv.org/schemas/atom" term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
    <category term="cs.LG" scheme="http://arxiv.org/schemas/atom"/>
  </entry>"""


def entries() -> dict[str, str]:
    return {p.stem.replace("_", "/"): p.read_text(encoding="utf-8") for p in DATA.glob("*.xml")}


class ArxivStub:
    def __init__(self):
        self.entries = entries()
        self.fail_next: list[int] = []  # statuses to answer with before serving normally
        self.requests: list[dict] = []
        self.refuse: set[str] = set()  # IDs answered with arXiv's HTTP 400 error entry
        self.retry_after = "0"  # the Retry-After header of a 429
        self.silent_s = 0.0  # accept the connection, then say nothing this long
        self.junk = False  # answer HTTP 200 with bytes that are no feed
        stub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_GET(self):
                stub.requests.append({"path": self.path, "user_agent": self.headers.get("User-Agent")})
                if stub.silent_s:
                    time.sleep(stub.silent_s)
                    return
                if stub.junk:
                    return self._send(200, "\x00\x9f\x92\x96 PK\x03\x04 not a feed")
                if stub.fail_next:
                    status = stub.fail_next.pop(0)
                    self.send_response(status)
                    if status == 429:
                        self.send_header("Retry-After", stub.retry_after)
                    self.end_headers()
                    self.wfile.write(b"try later")
                    return
                self._feed()

            def _feed(self):
                parsed = urlparse(self.path)
                query = parse_qs(parsed.query)
                wanted = [i for i in ",".join(query.get("id_list", [""])).split(",") if i]
                bad = next((i for i in wanted if not _VALID.match(i) or i.split("v")[0] in stub.refuse), None)
                if bad:
                    body = _HEAD.format(query=parsed.query, total=1, start=0, per_page=1) + _ERROR.format(bad=bad)
                    return self._send(400, body + "</feed>\n")
                found = []
                for raw in wanted:
                    base = re.sub(r"v\d+$", "", raw)
                    entry = stub.entries.get(base)
                    if entry is None and base.startswith(SYNTHETIC_PREFIX):
                        entry = _SYNTHETIC.format(aid=base)
                    if entry is None:
                        continue
                    version_match = re.search(r"v(\d+)$", raw)
                    if version_match:
                        entry = re.sub(r"v\d+</id>", f"v{version_match.group(1)}</id>", entry, count=1)
                    found.append(entry)
                start = int(query.get("start", ["0"])[0])
                page = found[start:start + int(query.get("max_results", ["10"])[0])]
                body = _HEAD.format(query=parsed.query, total=len(found), start=start, per_page=len(page))
                self._send(200, body + "".join(f"  {e}\n" for e in page) + "</feed>\n")

            def _send(self, status, body):
                data = body.encode("utf-8")
                self.send_response(status)
                self.send_header("Content-Type", "application/atom+xml; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/api/query"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "ArxivStub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


if __name__ == "__main__":
    with ArxivStub() as stub:
        print(f"PAPERLAB_ARXIV_URL={stub.url}", flush=True)
        while True:
            time.sleep(3600)

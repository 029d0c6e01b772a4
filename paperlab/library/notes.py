"""Review notes: Markdown files with YAML front matter, one per paper, made from templates/notes/review.md."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
from pathlib import Path

from paperlab.errors import PaperlabError

SECTIONS = ("Summary", "Problem", "Key idea", "Method", "Experiments and numbers", "What I would try",
            "Questions for the mentor")


def note_path(notes_dir: Path, arxiv_id: str) -> Path:
    return notes_dir / f"{arxiv_id.replace('/', '_')}.md"


def render(arxiv_id: str, title: str, abstract: str, venue: str | None, tags: list[str]) -> str:
    import jinja2
    import yaml

    from paperlab.resources import templates_dir

    front = yaml.safe_dump({"arxiv_id": arxiv_id, "title": title, "venue": venue, "tags": tags},
                           sort_keys=False, allow_unicode=True, width=1000)
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(templates_dir() / "notes"), autoescape=False,
                             keep_trailing_newline=True)
    return env.get_template("review.md").render(front_matter=front, title=title, abstract=abstract)


def write_new(path: Path, text: str) -> bool:
    """Write a note only where none exists: a user's note is never overwritten. True if written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        with open(path, "x", encoding="utf-8") as handle:
            handle.write(text)
    except FileExistsError:
        return False
    return True


def body(path: str | os.PathLike | None) -> str:
    """The note's text without front matter, or '' when the file is gone."""
    if not path:
        return ""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError):
        return ""
    return re.sub(r"\A---\n.*?\n---\n", "", text, count=1, flags=re.S)


def sections(path: str | os.PathLike | None) -> dict[str, str]:
    """'## Heading' -> its text (HTML comments dropped, empty sections left out)."""
    found: dict[str, str] = {}
    for block in re.split(r"^## ", body(path), flags=re.M)[1:]:
        heading, _, text = block.partition("\n")
        text = re.sub(r"<!--.*?-->", "", text, flags=re.S).strip()
        if text:
            found[heading.strip()] = text
    return found


def open_in_editor(path: Path) -> bool:
    """Open `path` in $VISUAL/$EDITOR; False when neither is set (the caller prints the path)."""
    editor = os.environ.get("VISUAL") or os.environ.get("EDITOR")
    if not editor:
        return False
    try:
        subprocess.run([*shlex.split(editor), str(path)], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PaperlabError(f"the editor {editor!r} failed: {exc}") from exc
    return True

"""Review notes: Markdown files with YAML front matter, one per paper, made from templates/notes/review.md."""

from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
import tempfile
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
    """Write a note only where none exists: a user's note is never overwritten. True if written.

    Atomic: the text goes to a temporary file beside it, which is then linked into place, so a full disk or a
    kill leaves either the whole note or none (a 0-byte note left by an older paperlab counts as none)."""
    if path.exists() and path.stat().st_size > 0:
        return False

    def into_place(temporary: str) -> bool:
        if path.exists():  # only an empty note can be here: replace it
            os.replace(temporary, path)
            return True
        try:
            os.link(temporary, path)
        except FileExistsError:  # another process wrote it first: theirs stays
            return False
        return True

    return _through_temporary(path, text, into_place, "the note ")


def replace(path: Path, text: str) -> None:
    """Write a file whole or not at all (temporary beside it, fsynced, renamed over it)."""
    _through_temporary(path, text, lambda temporary: os.replace(temporary, path))


def _through_temporary(path: Path, text: str, move, what: str = ""):
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        return move(temporary)
    except OSError as exc:
        raise PaperlabError(f"cannot write {what}{path}: {exc.strerror or exc}") from exc
    finally:
        Path(temporary).unlink(missing_ok=True)


_odd_notes: set[str] = set()


def read(path: str | os.PathLike) -> str:
    """A note's text. One that is not UTF-8 (saved as Latin-1, say) is read with replacement characters and
    named once on stderr, instead of breaking every search and report."""
    data = Path(path).read_bytes()
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        if str(path) not in _odd_notes:
            _odd_notes.add(str(path))
            print(f"warning: the note {path} is not UTF-8 (byte {exc.start:,}); read with replacement characters "
                  "- save it as UTF-8 to fix", file=sys.stderr)
        return data.decode("utf-8", "replace")


def body(path: str | os.PathLike | None) -> str:
    """The note's text without front matter, or '' when the file is gone."""
    if not path:
        return ""
    try:
        text = read(path)
    except (FileNotFoundError, IsADirectoryError):
        return ""
    return without_front_matter(text)


def without_front_matter(text: str) -> str:
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
    name = "VISUAL" if os.environ.get("VISUAL") else "EDITOR"
    editor = os.environ.get(name)
    if not editor:
        return False
    try:
        command = shlex.split(editor)
    except ValueError as exc:
        raise PaperlabError(f"cannot read ${name}={editor!r}: {exc}") from exc
    if not command:
        raise PaperlabError(f"${name} is set but holds only spaces; set it to an editor, e.g. {name}=nano")
    try:
        subprocess.run([*command, str(path)], check=True)
    except (OSError, subprocess.CalledProcessError) as exc:
        raise PaperlabError(f"the editor {editor!r} failed: {exc}") from exc
    return True

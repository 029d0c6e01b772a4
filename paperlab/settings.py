"""Every path and URI paperlab uses, read from the environment (names are a contract, see README)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

ARXIV_API_URL = "https://export.arxiv.org/api/query?{}"


@dataclass(frozen=True)
class Settings:
    home: Path
    db_url: str
    mlflow_uri: str
    artifacts_dir: Path
    arxiv_url: str
    arxiv_delay: float
    data_dir: Path
    arxiv_timeout: float = 30.0  # seconds per try
    arxiv_retries: int = 4
    arxiv_backoff: float = 2.0
    arxiv_deadline: float = 60.0  # seconds for a whole fetch, tries and waits included

    @property
    def notes_dir(self) -> Path:
        return self.home / "notes"

    @property
    def cache_dir(self) -> Path:
        return self.home / "cache"

    @property
    def db_path(self) -> Path | None:
        """The SQLite file behind `db_url`, or None for another database."""
        prefix = "sqlite:///"
        if not self.db_url.startswith(prefix):
            return None
        return Path(self.db_url[len(prefix):].split("?", 1)[0])


def _default_home() -> Path:
    from platformdirs import user_data_dir

    return Path(user_data_dir("paperlab", appauthor=False))


def _number(env, key: str, default: str, minimum: float, kind=float, above: bool = False):
    """A numeric setting from the environment, or one line saying what is wrong with it."""
    raw = env.get(key) or default
    try:
        value = kind(raw)
        valid = value > minimum if above else value >= minimum
    except ValueError:
        valid = False
    if not valid or value != value or value in (float("inf"),):
        from paperlab.errors import BadInput, shown

        bound = f"above {minimum:g}" if above else f"at least {minimum:g}"
        raise BadInput(f"{key} must be {'a whole number' if kind is int else 'a number'} {bound}, got {shown(raw)}")
    return value


def normalise_db_url(url: str) -> str:
    """A PostgreSQL URL without a driver means psycopg 3, the one the `team` extra installs."""
    for plain in ("postgresql://", "postgres://"):
        if url.startswith(plain):
            return "postgresql+psycopg://" + url[len(plain):]
    return url


def load() -> Settings:
    env = os.environ
    home = Path(env["PAPERLAB_HOME"]).expanduser() if env.get("PAPERLAB_HOME") else _default_home()
    home = home.absolute()
    url = env.get("PAPERLAB_ARXIV_URL") or ARXIV_API_URL
    if "{}" not in url:
        url += ("&" if "?" in url else "?") + "{}"
    db_url = normalise_db_url(env.get("PAPERLAB_DB_URL") or f"sqlite:///{home / 'paperlab.db'}")
    return Settings(
        home=home,
        db_url=db_url,
        mlflow_uri=env.get("MLFLOW_TRACKING_URI") or f"sqlite:///{home / 'mlflow.db'}",
        artifacts_dir=home / "mlartifacts",
        arxiv_url=url,
        arxiv_delay=_number(env, "PAPERLAB_ARXIV_DELAY", "3", 0),
        data_dir=Path(env.get("PAPERLAB_DATA_DIR") or home / "data").expanduser().absolute(),
        arxiv_timeout=_number(env, "PAPERLAB_ARXIV_TIMEOUT", "30", 0, above=True),
        arxiv_retries=_number(env, "PAPERLAB_ARXIV_RETRIES", "4", 0, kind=int),
        arxiv_backoff=_number(env, "PAPERLAB_ARXIV_BACKOFF", "2", 0),
        arxiv_deadline=_number(env, "PAPERLAB_ARXIV_DEADLINE", "60", 0, above=True),
    )


def redact(text: str) -> str:
    """Text as it may be printed or stored where others read it: every URL's password as *** (also one with an
    unencoded '/' or '@' in it, and a `password=` query parameter)."""
    import re

    text = re.sub(r"([A-Za-z][\w+.-]*://[^\s:/@]*):[^\s]*@", r"\1:***@", text)
    return re.sub(r"([?&;]password=)[^&\s]*", r"\1***", text, flags=re.I)

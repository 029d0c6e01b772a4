"""Where the shipped `templates/` and `migrations/` live: inside the wheel, or at the repository root."""

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _find(name: str) -> Path:
    installed = _PACKAGE / "_data" / name
    if installed.is_dir():
        return installed
    return _PACKAGE.parent / name


def templates_dir() -> Path:
    return _find("templates")


def migrations_dir() -> Path:
    return _find("migrations")

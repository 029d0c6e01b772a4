"""The library's tables. Schema changes go through alembic (migrations/), never `create_all`."""

from __future__ import annotations

from datetime import date, datetime

from sqlmodel import Field, SQLModel


class Paper(SQLModel, table=True):
    __tablename__ = "papers"

    id: int | None = Field(default=None, primary_key=True)
    arxiv_id: str = Field(unique=True, index=True)
    version: int = 1
    title: str
    abstract: str = ""
    published: date | None = None
    updated: date | None = None
    primary_category: str | None = None
    categories: str = ""  # space separated
    comment: str | None = None
    journal_ref: str | None = None
    doi: str | None = None
    pdf_url: str | None = None
    venue: str | None = Field(default=None, index=True)
    venue_year: int | None = None
    venue_detail: str | None = None
    venue_manual: bool = False
    note_path: str | None = None
    note_mtime: float | None = None  # of the note text last indexed for search
    added_at: datetime
    refreshed_at: datetime


class Author(SQLModel, table=True):
    __tablename__ = "authors"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)


class PaperAuthor(SQLModel, table=True):
    __tablename__ = "paper_authors"

    paper_id: int = Field(foreign_key="papers.id", primary_key=True, ondelete="CASCADE")
    position: int = Field(primary_key=True)
    author_id: int = Field(foreign_key="authors.id", index=True)


class Tag(SQLModel, table=True):
    __tablename__ = "tags"

    id: int | None = Field(default=None, primary_key=True)
    name: str = Field(unique=True)


class PaperTag(SQLModel, table=True):
    __tablename__ = "paper_tags"

    paper_id: int = Field(foreign_key="papers.id", primary_key=True, ondelete="CASCADE")
    tag_id: int = Field(foreign_key="tags.id", primary_key=True, index=True)


class TemplateLink(SQLModel, table=True):
    __tablename__ = "template_links"

    paper_id: int = Field(foreign_key="papers.id", primary_key=True, ondelete="CASCADE")
    template: str = Field(primary_key=True)

"""papers, authors, tags and the full-text index

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "papers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("arxiv_id", sa.String, nullable=False),
        sa.Column("version", sa.Integer, nullable=False),
        sa.Column("title", sa.String, nullable=False),
        sa.Column("abstract", sa.String, nullable=False),
        sa.Column("published", sa.Date),
        sa.Column("updated", sa.Date),
        sa.Column("primary_category", sa.String),
        sa.Column("categories", sa.String, nullable=False),
        sa.Column("comment", sa.String),
        sa.Column("journal_ref", sa.String),
        sa.Column("doi", sa.String),
        sa.Column("pdf_url", sa.String),
        sa.Column("venue", sa.String),
        sa.Column("venue_year", sa.Integer),
        sa.Column("venue_detail", sa.String),
        sa.Column("venue_manual", sa.Boolean, nullable=False),
        sa.Column("note_path", sa.String),
        sa.Column("note_mtime", sa.Float),
        sa.Column("added_at", sa.DateTime, nullable=False),
        sa.Column("refreshed_at", sa.DateTime, nullable=False),
    )
    op.create_index("ix_papers_arxiv_id", "papers", ["arxiv_id"], unique=True)
    op.create_index("ix_papers_venue", "papers", ["venue"])
    op.create_table(
        "authors",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False, unique=True),
    )
    op.create_table(
        "paper_authors",
        sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("position", sa.Integer, primary_key=True),
        sa.Column("author_id", sa.Integer, sa.ForeignKey("authors.id"), nullable=False),
    )
    op.create_index("ix_paper_authors_author_id", "paper_authors", ["author_id"])
    op.create_table(
        "tags",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String, nullable=False, unique=True),
    )
    op.create_table(
        "paper_tags",
        sa.Column("paper_id", sa.Integer, sa.ForeignKey("papers.id", ondelete="CASCADE"), primary_key=True),
        sa.Column("tag_id", sa.Integer, sa.ForeignKey("tags.id"), primary_key=True),
    )
    op.create_index("ix_paper_tags_tag_id", "paper_tags", ["tag_id"])
    if op.get_bind().dialect.name == "sqlite":
        op.execute(
            "CREATE VIRTUAL TABLE paper_fts USING fts5(arxiv_id UNINDEXED, title, authors, abstract, note, "
            "tokenize='porter unicode61 remove_diacritics 2')"
        )
        # rank = bm25 weighted by column: arxiv_id, title, authors, abstract, note
        op.execute("INSERT INTO paper_fts (paper_fts, rank) VALUES ('rank', 'bm25(0.0, 10.0, 5.0, 2.0, 1.0)')")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        op.execute("DROP TABLE paper_fts")
    for table in ("paper_tags", "tags", "paper_authors", "authors", "papers"):
        op.drop_table(table)

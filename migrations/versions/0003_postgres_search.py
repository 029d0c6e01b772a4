"""PostgreSQL's full-text search: a weighted tsvector over title, authors, abstract and note, GIN-indexed

On SQLite the library keeps FTS5 (0001); this revision adds nothing there.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-28
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

# weights as FTS5's bm25 columns rank them (0001): title A, authors B, abstract C, note D
DOCUMENT = ("setweight(to_tsvector('english', title), 'A') || setweight(to_tsvector('english', authors), 'B') || "
            "setweight(to_tsvector('english', abstract), 'C') || setweight(to_tsvector('english', note), 'D')")


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(
        "CREATE TABLE paper_text ("
        " paper_id integer PRIMARY KEY REFERENCES papers (id) ON DELETE CASCADE,"
        " arxiv_id text NOT NULL, title text NOT NULL DEFAULT '', authors text NOT NULL DEFAULT '',"
        " abstract text NOT NULL DEFAULT '', note text NOT NULL DEFAULT '',"
        f" document tsvector GENERATED ALWAYS AS ({DOCUMENT}) STORED)"
    )
    op.execute("CREATE INDEX ix_paper_text_document ON paper_text USING gin (document)")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TABLE paper_text")

"""search: one index of documents, their filter values, the term vocabulary and the full-text index.

SQLite gets an external-content FTS5 table over ``search_documents`` kept in step by triggers;
PostgreSQL gets a generated, weighted ``tsvector`` column with a GIN index.

Revision ID: search_0001
Revises:
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "search_0001"
down_revision = None
branch_labels = ("search",)
depends_on = None


def upgrade() -> None:
    op.create_table(
        "search_documents",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("type", sa.String(100), nullable=False),
        sa.Column("key", sa.String(1000), nullable=False),
        sa.Column("location", sa.Text(), nullable=False),
        sa.Column("name_norm", sa.String(500), nullable=True),
        sa.Column("title_norm", sa.String(500), nullable=False),
        sa.Column("document", sa.Text(), nullable=False),
        sa.Column("auth_ref", sa.String(1000), nullable=True),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.Column("generation", sa.String(64), nullable=True),
        sa.Column("f_name", sa.Text(), nullable=False),
        sa.Column("f_title", sa.Text(), nullable=False),
        sa.Column("f_keywords", sa.Text(), nullable=False),
        sa.Column("f_text", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_search_documents"),
        sa.UniqueConstraint("type", "key", name="uq_search_documents_type_key"),
    )
    op.create_table(
        "search_filters",
        sa.Column("doc_id", sa.Integer(), nullable=False),
        sa.Column("key", sa.String(200), nullable=False),
        sa.Column("value", sa.String(500), nullable=False),
        sa.ForeignKeyConstraint(["doc_id"], ["search_documents.id"], ondelete="CASCADE",
                                name="fk_search_filters_doc_id_search_documents"),
        sa.PrimaryKeyConstraint("key", "value", "doc_id", name="pk_search_filters"),
    )
    op.create_index("ix_search_filters_doc_id", "search_filters", ["doc_id"])
    op.create_table(
        "search_terms",
        sa.Column("term", sa.String(64), nullable=False),
        sa.PrimaryKeyConstraint("term", name="pk_search_terms"),
    )
    bind = op.get_bind()
    if bind.dialect.name == "postgresql":
        # text_pattern_ops so that `LIKE 'prefix%'` uses the index under any collation.
        op.execute("CREATE INDEX ix_search_documents_name_norm ON search_documents "
                   "(name_norm text_pattern_ops)")
        op.execute("CREATE INDEX ix_search_documents_title_norm ON search_documents "
                   "(title_norm text_pattern_ops)")
        op.execute(
            "ALTER TABLE search_documents ADD COLUMN tsv tsvector GENERATED ALWAYS AS ("
            "setweight(to_tsvector('english', f_name), 'A') || "
            "setweight(to_tsvector('english', f_title), 'B') || "
            "setweight(to_tsvector('english', f_keywords), 'C') || "
            "setweight(to_tsvector('english', f_text), 'D')) STORED"
        )
        op.execute("CREATE INDEX ix_search_documents_tsv ON search_documents USING GIN (tsv)")
    else:
        op.create_index("ix_search_documents_name_norm", "search_documents", ["name_norm"])
        op.create_index("ix_search_documents_title_norm", "search_documents", ["title_norm"])
        op.execute(
            "CREATE VIRTUAL TABLE search_fts USING fts5("
            "f_name, f_title, f_keywords, f_text, "
            "content='search_documents', content_rowid='id', tokenize='porter unicode61')"
        )
        # External content: the FTS index is told about every row change by these triggers.
        op.execute(
            "CREATE TRIGGER search_documents_ai AFTER INSERT ON search_documents BEGIN "
            "INSERT INTO search_fts(rowid, f_name, f_title, f_keywords, f_text) "
            "VALUES (new.id, new.f_name, new.f_title, new.f_keywords, new.f_text); END"
        )
        op.execute(
            "CREATE TRIGGER search_documents_ad AFTER DELETE ON search_documents BEGIN "
            "INSERT INTO search_fts(search_fts, rowid, f_name, f_title, f_keywords, f_text) "
            "VALUES ('delete', old.id, old.f_name, old.f_title, old.f_keywords, old.f_text); END"
        )
        op.execute(
            "CREATE TRIGGER search_documents_au AFTER UPDATE OF f_name, f_title, f_keywords, f_text "
            "ON search_documents BEGIN "
            "INSERT INTO search_fts(search_fts, rowid, f_name, f_title, f_keywords, f_text) "
            "VALUES ('delete', old.id, old.f_name, old.f_title, old.f_keywords, old.f_text); "
            "INSERT INTO search_fts(rowid, f_name, f_title, f_keywords, f_text) "
            "VALUES (new.id, new.f_name, new.f_title, new.f_keywords, new.f_text); END"
        )


def downgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name != "postgresql":
        for trigger in ("search_documents_ai", "search_documents_ad", "search_documents_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trigger}")
        op.execute("DROP TABLE IF EXISTS search_fts")
    op.drop_table("search_terms")
    op.drop_table("search_filters")
    op.drop_table("search_documents")

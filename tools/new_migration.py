"""Autogenerate an Alembic revision for one context's tables (developer tool).

    python tools/new_migration.py catalog "initial" [--down <revision>]

Imports only that context's store, compares against a scratch SQLite database migrated to the
current heads, and writes the revision into core/migrations/versions as that context's branch.
Read the result before committing.
"""

from __future__ import annotations

import argparse
import importlib
import tempfile

from alembic import command
from alembic.config import Config

from greenroom.core import db


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("context")
    ap.add_argument("message")
    ap.add_argument("--down", default=None, help="revision this one follows (omit for a new branch)")
    ap.add_argument("--rev-id", default=None)
    a = ap.parse_args()
    importlib.import_module(f"greenroom.{a.context}.store")
    with tempfile.TemporaryDirectory() as tmp:
        engine = db.make_engine(f"sqlite:///{tmp}/scratch.db")
        db.upgrade(engine)
        with engine.begin() as conn:
            cfg = Config()
            cfg.set_main_option("script_location", str(db.MIGRATIONS))
            cfg.set_main_option("file_template", "%%(year)d%%(month).2d%%(day).2d_%%(rev)s_%%(slug)s")
            cfg.attributes["connection"] = conn
            command.revision(
                cfg, message=a.message, autogenerate=True,
                head=f"{a.context}@head" if a.down else "base",
                branch_label=None if a.down else a.context,
                rev_id=a.rev_id, version_path=str(db.MIGRATIONS / "versions"),
            )


if __name__ == "__main__":
    main()

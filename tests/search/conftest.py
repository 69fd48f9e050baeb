"""Search fixtures: a migrated SQLite file and a migrated private PostgreSQL schema."""

from __future__ import annotations

import pytest
from sqlalchemy import Engine

from greenroom.search.service import SearchService
from tests.conftest import migrated_engine

__all__ = ["migrated_engine"]  # the root conftest's, used by test_scale


@pytest.fixture
def service(engine: Engine) -> SearchService:
    return SearchService(engine)

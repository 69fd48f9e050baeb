"""Fixtures for the scaffolder task tests: a migrated database of each kind, the real catalog and
forge services behind the scaffolder's ports, and a template on disk registered in the catalog."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Engine, text

from greenroom.catalog.service import CatalogService
from greenroom.core.config import Settings
from greenroom.core.db import make_engine, upgrade
from greenroom.forge.service import ForgeService
from greenroom.scaffolder.service import ScaffolderService
from greenroom.scaffolder.service.adapters import CatalogAdapter, ForgePublisher
from tests.conftest import make_settings

TEMPLATE = """\
apiVersion: scaffolder.backstage.io/v1beta3
kind: Template
metadata:
  name: svc
  title: Service
  description: A service with a README
spec:
  owner: group:default/platform
  type: service
  parameters:
    - title: Basics
      required: [name, owner]
      properties:
        name: {title: Name, type: string, pattern: '^[a-z][a-z0-9-]*$'}
        owner: {title: Owner, type: string}
        dbPassword: {title: Database password, type: string, ui:widget: password}
    - title: Behaviour
      properties:
        wait: {type: number, default: 0}
        fail: {type: boolean, default: false}
  steps:
    - id: fetch
      name: Fetch skeleton
      action: fetch:template
      input:
        url: ./skeleton
        values:
          name: ${{ parameters.name }}
          owner: ${{ parameters.owner }}
    - id: wait
      action: debug:wait
      input:
        seconds: ${{ parameters.wait }}
    - id: log
      action: debug:log
      input:
        message: connecting with ${{ secrets.apiToken }} and ${{ parameters.dbPassword }}
    - id: boom
      if: ${{ parameters.fail }}
      action: fs:rename
      input:
        files: [{from: missing.txt, to: found.txt}]
    - id: publish
      name: Publish
      action: publish:greenroom
      input:
        repoUrl: greenroom?owner=acme&repo=${{ parameters.name }}
        defaultBranch: main
  output:
    links:
      - title: Repository
        url: ${{ steps.publish.output.remoteUrl }}
"""

SECRET_TOKEN = "tok-SECRET-7f3a9c"
SECRET_PASSWORD = "pw-SECRET-41b2d8"


@dataclass
class Stack:
    settings: Settings
    engine: Engine
    catalog: CatalogService
    forge: ForgeService
    service: ScaffolderService

    def replica(self, **kwargs: Any) -> ScaffolderService:
        """Another replica on the same database (own engine, own memory, own replica id)."""
        engine = make_engine(self.settings.database_url)
        return ScaffolderService(engine, self.settings, CatalogAdapter(self.catalog), ForgePublisher(self.forge),
                                 **{"lease_seconds": self.service.lease_seconds, **kwargs})

    def dump(self) -> str:
        """Every row of both scaffolder tables as text (for "no secret stored" checks)."""
        with self.engine.connect() as conn:
            rows = [*conn.execute(text("SELECT * FROM scaffolder_tasks")).all(),
                    *conn.execute(text("SELECT * FROM scaffolder_task_events")).all()]
        return "\n".join(repr(tuple(r)) for r in rows)


def write_template(root: Path) -> Path:
    folder = root / "templates" / "svc"
    (folder / "skeleton").mkdir(parents=True)
    (folder / "template.yaml").write_text(TEMPLATE)
    (folder / "skeleton" / "README.md").write_text("# ${{ values.name }}\n\nOwned by ${{ values.owner }}.\n")
    (folder / "skeleton" / "catalog-info.yaml").write_text(
        "apiVersion: backstage.io/v1alpha1\nkind: Component\nmetadata:\n  name: ${{ values.name }}\n"
        "spec:\n  type: service\n  lifecycle: experimental\n  owner: ${{ values.owner }}\n")
    return folder / "template.yaml"


@pytest.fixture
def stack(tmp_path: Path, db_config: dict[str, Any]) -> Iterator[Stack]:
    settings = make_settings(tmp_path, db_config)
    engine = make_engine(settings.database_url)
    upgrade(engine)
    catalog = CatalogService(engine, settings)
    catalog.register_location("file", str(write_template(tmp_path)))
    forge = ForgeService(tmp_path / "forge", base_url="http://portal.test")
    service = ScaffolderService(engine, settings, CatalogAdapter(catalog), ForgePublisher(forge),
                                lease_seconds=1.5, poll_seconds=0.05)
    yield Stack(settings, engine, catalog, forge, service)
    engine.dispose()


def values(**extra: Any) -> dict[str, Any]:
    return {"name": "billing", "owner": "group:default/platform", "dbPassword": SECRET_PASSWORD, **extra}


async def wait_for(predicate: Any, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)

"""Adapters from other contexts' services to the scaffolder's ports.

``CatalogAdapter`` gives ``catalog:*`` actions and template lookup the catalog service;
``ForgePublisher`` gives ``publish:greenroom`` the built-in git host. Both run the (synchronous,
database- or git-bound) service calls in a worker thread so the event loop keeps serving.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from greenroom.catalog import service as catalog_service
from greenroom.forge import model as forge_model
from greenroom.forge import service as forge_service
from greenroom.scaffolder.model import JsonObject


class CatalogAdapter:
    """``CatalogPort`` + ``list_entities`` over ``greenroom.catalog.service.CatalogService``."""

    def __init__(self, catalog: catalog_service.CatalogService) -> None:
        self.catalog = catalog

    async def get_entity(self, ref: str) -> JsonObject | None:
        return await asyncio.to_thread(self.catalog.get_entity, ref)

    async def register_location(self, url: str, *, dry_run: bool = False) -> JsonObject:
        return await asyncio.to_thread(self.catalog.register_location, "url", url, dry_run=dry_run)

    async def list_entities(self, kind: str) -> list[JsonObject]:
        query = catalog_service.EntityQuery(filters=[{"kind": [kind]}], order=[("metadata.name", "asc")])
        page = await asyncio.to_thread(self.catalog.query, query)
        return list(page.items)


class ForgePublisher:
    """``PublisherPort`` over ``greenroom.forge.service.ForgeService``."""

    def __init__(self, forge: forge_service.ForgeService) -> None:
        self.forge = forge

    async def create_repository(self, owner: str, name: str, description: str) -> JsonObject:
        repo = await asyncio.to_thread(self.forge.create_repository, owner, name, description)
        return {"remoteUrl": repo.web_url, "cloneUrl": repo.clone_url, "defaultBranch": repo.default_branch}

    async def push_directory(self, owner: str, name: str, directory: Path, *, branch: str, message: str,
                             author: str) -> JsonObject:
        who: Any = forge_model.Author(name=author) if author else None
        update = await asyncio.to_thread(self.forge.push_directory, owner, name, directory, message, who, branch)
        return {"commitHash": update.new}

    def contents_url(self, owner: str, name: str, branch: str) -> str:
        # catalog:register appends "/catalog-info.yaml" to this; raw URLs are what the catalog reads
        return self.forge.raw_url(owner, name, branch, "").rstrip("/")

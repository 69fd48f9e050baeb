"""Walking a location tree in memory: a root location and every child location it leads to.

For the CLI (``greenroom catalog validate``), tests and benchmarks; the service walks trees
through the database instead (one claimed location at a time). Breadth-first, each location
processed once, so cycles between files end. Deterministic order.
"""

from __future__ import annotations

import httpx

from greenroom.catalog.model import LocationSpec, ProcessingResult, ReadPolicy

from .processing import default_root, process_location

MAX_LOCATIONS = 10_000


def process_tree(
    location: LocationSpec,
    *,
    policy: ReadPolicy,
    root: str | None = None,
    allowed_kinds: set[str] | None = None,
    http: httpx.Client | None = None,
    max_locations: int = MAX_LOCATIONS,
) -> list[tuple[LocationSpec, ProcessingResult]]:
    """Process ``location`` (the origin) and all locations reachable from it, at most ``max_locations``."""
    root = root if root is not None else default_root(location, location)
    queue = [location]
    seen = {location}
    out: list[tuple[LocationSpec, ProcessingResult]] = []
    while queue and len(out) < max_locations:
        current = queue.pop(0)
        result = process_location(current, origin=location, policy=policy, root=root,
                                  allowed_kinds=allowed_kinds, http=http)
        out.append((current, result))
        for child in result.locations:
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return out

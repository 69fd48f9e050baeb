"""The action registry.

``default_actions()`` gives the built-in actions (and Greenroom's stand-ins for well-known
third-party ids); ``load_actions()`` adds objects named by the entry-point group
``greenroom.scaffolder.actions`` (each entry point names an ``Action`` instance, an ``Action``
class with a no-argument constructor, or a callable returning a list of actions). Later ids
replace earlier ones, so a plugin may override a stand-in with a real implementation.
"""

from __future__ import annotations

import inspect
from importlib.metadata import entry_points
from typing import Any

from greenroom.core.errors import InputError
from greenroom.scaffolder.engine.actions.catalog import (
    CatalogFetchAction,
    CatalogRegisterAction,
    CatalogWriteAction,
)
from greenroom.scaffolder.engine.actions.fetch import (
    FetchPlainAction,
    FetchPlainFileAction,
    FetchTemplateAction,
    FetchTemplateFileAction,
)
from greenroom.scaffolder.engine.actions.foreign import foreign_actions
from greenroom.scaffolder.engine.actions.fs import (
    DebugLogAction,
    DebugWaitAction,
    FsDeleteAction,
    FsRenameAction,
)
from greenroom.scaffolder.engine.actions.github import GithubActionsDispatchAction, PublishGithubAction
from greenroom.scaffolder.engine.actions.gitlab import PublishGitlabAction
from greenroom.scaffolder.engine.actions.publish import PublishGreenroomAction
from greenroom.scaffolder.model import Action

ENTRY_POINT_GROUP = "greenroom.scaffolder.actions"


def default_actions(*, include_foreign: bool = True) -> dict[str, Action]:
    builtins: list[Any] = [
        FetchPlainAction(), FetchPlainFileAction(), FetchTemplateAction(), FetchTemplateFileAction(),
        FsDeleteAction(), FsRenameAction(), DebugLogAction(), DebugWaitAction(),
        CatalogWriteAction(), CatalogRegisterAction(), CatalogFetchAction(), PublishGreenroomAction(),
        PublishGithubAction(), PublishGitlabAction(), GithubActionsDispatchAction(),
    ]
    if include_foreign:
        builtins = foreign_actions() + builtins
    return {a.id: a for a in builtins}


def _as_actions(obj: Any, name: str) -> list[Action]:
    if inspect.isclass(obj) or callable(obj) and not isinstance(obj, Action):
        obj = obj()
    items = obj if isinstance(obj, (list, tuple)) else [obj]
    for item in items:
        if not isinstance(item, Action):
            raise InputError(f"entry point {name} in {ENTRY_POINT_GROUP} does not provide an Action: {item!r}")
    return list(items)


def load_actions(extra: list[Action] | None = None) -> dict[str, Action]:
    """Built-ins, then entry-point plugins, then ``extra`` (tests, app wiring)."""
    registry = default_actions()
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        for action in _as_actions(ep.load(), ep.name):
            registry[action.id] = action
    for action in extra or []:
        registry[action.id] = action
    return registry


def describe(action: Action) -> dict[str, Any]:
    """The ``GET /v2/actions`` item for an action."""
    return {"id": action.id, "description": action.description,
            "schema": {"input": action.input_schema, "output": action.output_schema}}

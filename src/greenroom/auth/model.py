"""Who is asking: the identity every route and service call carries."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal


@dataclass(frozen=True)
class Principal:
    """An authenticated caller.

    ``subject`` is what the audit trail records: a static token's configured subject, or a user
    entity ref (``user:default/guest`` for the demo's guest sign-in). ``groups`` are the entity refs
    of the groups the user belongs to, used for "owned by my teams".
    """

    subject: str
    kind: Literal["service", "user"] = "service"
    groups: tuple[str, ...] = field(default_factory=tuple)

    @property
    def is_user(self) -> bool:
        return self.kind == "user"

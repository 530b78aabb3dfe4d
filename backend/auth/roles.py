"""Roles, and who the caller is: ``Identity``."""

from __future__ import annotations

import enum
from dataclasses import dataclass


class Role(enum.StrEnum):
    """What a user may do: a ``viewer`` reads, a ``member`` also creates and manages their own
    experiments, an ``admin`` does everything (deletes anything, manages users and projects)."""

    viewer = "viewer"
    member = "member"
    admin = "admin"

    @property
    def rank(self) -> int:
        return ROLE_ORDER.index(self)

    def at_least(self, other: Role) -> bool:
        """Whether this role includes everything ``other`` may do."""
        return self.rank >= other.rank


ROLE_ORDER = (Role.viewer, Role.member, Role.admin)


@dataclass(frozen=True)
class Identity:
    """The caller of one request.

    Attributes:
        user_id: the user's id (None for the local admin when authentication is off).
        name: the user's name (the ``owner`` of what they create).
        role: the user's role.
        projects: project id → the user's role there; None: every project (admins).
        via: how the request proved it: ``token``, ``session`` or ``local``.
    """

    user_id: int | None
    name: str
    role: Role
    projects: dict[int, Role] | None
    via: str = "token"

    @property
    def is_admin(self) -> bool:
        return self.role is Role.admin

    def sees(self, project_id: int) -> bool:
        """Whether the caller may read the project's experiments."""
        return self.projects is None or project_id in self.projects

    def role_in(self, project_id: int) -> Role | None:
        """The caller's effective role in a project (None: not a member): the lower of their role and
        their role there."""
        if self.projects is None:
            return self.role
        there = self.projects.get(project_id)
        if there is None:
            return None
        return there if self.role.at_least(there) else self.role

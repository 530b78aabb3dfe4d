"""Projects and memberships: which projects a user sees, with which role; create and add members."""

from __future__ import annotations

from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from backend.auth.roles import Identity, Role
from backend.models import DEFAULT_PROJECT_ID, Membership, Project, User
from backend.service.errors import Conflict, InvalidInput, NotFound


class ProjectOut(BaseModel):
    """A project and the caller's role in it."""

    id: int
    name: str
    role: Role


def memberships(session: Session, user_id: int) -> dict[int, Role]:
    """Project id → the user's role there."""
    rows = session.execute(
        select(Membership.project_id, Membership.role).where(Membership.user_id == user_id)
    )
    return {project_id: Role(role) for project_id, role in rows}


def visible_projects(session: Session, identity: Identity) -> list[ProjectOut]:
    """The projects the caller sees, by name."""
    query = select(Project).order_by(Project.name)
    if identity.projects is not None:
        query = query.where(Project.id.in_(identity.projects))
    return [
        ProjectOut(id=row.id, name=row.name, role=identity.role_in(row.id) or Role.viewer)
        for row in session.scalars(query)
    ]


def resolve_project(session: Session, identity: Identity, reference: str | int | None) -> int:
    """The id of the project a new experiment goes to: ``reference`` (a name or an id) or the caller's
    default (the default project when they are in it, else their first project).

    Raises:
        NotFound: no such project, or the caller does not see it (same answer, so names don't leak).
        InvalidInput: the caller is in no project.
    """
    if reference is None:
        if identity.sees(DEFAULT_PROJECT_ID):
            return DEFAULT_PROJECT_ID
        if identity.projects:
            return min(identity.projects)
        raise InvalidInput(("body", "project"), "you are a member of no project; ask an admin to add you")
    column = Project.id if isinstance(reference, int) else Project.name
    project_id = session.scalar(select(Project.id).where(column == reference))
    if project_id is None or not identity.sees(project_id):
        raise NotFound("project", reference)
    return project_id


def create_project(session: Session, name: str) -> ProjectOut:
    """A new project.

    Raises:
        Conflict: a project of that name exists.
    """
    if session.scalar(select(Project.id).where(Project.name == name)) is not None:
        raise Conflict(f"project {name} exists")
    row = Project(name=name)
    session.add(row)
    session.flush()
    return ProjectOut(id=row.id, name=row.name, role=Role.admin)


def add_member(session: Session, project_id: int, user_name: str, role: Role) -> None:
    """Make a user a member of a project with ``role`` (or change their role there).

    Raises:
        NotFound: no such project or user.
    """
    if session.get(Project, project_id) is None:
        raise NotFound("project", project_id)
    user_id = session.scalar(select(User.id).where(User.name == user_name))
    if user_id is None:
        raise NotFound("user", user_name)
    row = session.scalar(
        select(Membership).where(Membership.project_id == project_id, Membership.user_id == user_id)
    )
    if row is None:
        session.add(Membership(project_id=project_id, user_id=user_id, role=role.value))
    else:
        row.role = role.value

"""The team: who am I, projects and their members, and the audit trail (admins)."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Depends, Path, Query, status
from pydantic import BaseModel

from backend.api.deps import DECIMAL_ID, SessionDep
from backend.auth import audit, projects
from backend.auth.deps import AdminUser, AuditDep, CurrentUser, current_user
from backend.auth.projects import ProjectOut
from backend.auth.roles import Role
from backend.schemas import MAX_ID, ErrorBody, Owner, RequestBody

router = APIRouter(tags=["team"], dependencies=[Depends(current_user)])
ProjectId = Annotated[int, Path(ge=1, le=MAX_ID, description="the project's id"), DECIMAL_ID]
ADMIN_ONLY: dict[int | str, dict[str, Any]] = {403: {"model": ErrorBody, "description": "admins only"}}


class Me(BaseModel):
    """The signed-in caller."""

    name: str
    role: Role
    via: str


class ProjectCreate(RequestBody):
    """A new project's name."""

    name: Owner


class MemberAdd(RequestBody):
    """A user to add to a project, with their role there."""

    user: Owner
    role: Role = Role.member


@router.get("/me", summary="Who am I")
def me(user: CurrentUser) -> Me:
    """The caller's name, role and how they signed in (``token``, ``session`` or ``local``)."""
    return Me(name=user.name, role=user.role, via=user.via)


@router.get("/projects", summary="My projects")
def list_projects(user: CurrentUser, session: SessionDep) -> list[ProjectOut]:
    """The projects the caller sees (admins: all), with their role in each."""
    return projects.visible_projects(session, user)


@router.post(
    "/projects", status_code=status.HTTP_201_CREATED, responses=ADMIN_ONLY, summary="Create a project"
)
def create_project(
    body: Annotated[ProjectCreate, Body()], _admin: AdminUser, session: SessionDep, log: AuditDep
) -> ProjectOut:
    """A new, empty project (admins)."""
    created = projects.create_project(session, body.name)
    log("project.create", f"project {created.id}", name=body.name)
    return created


@router.post(
    "/projects/{project_id}/members",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={**ADMIN_ONLY, 404: {"model": ErrorBody, "description": "no such project or user"}},
    summary="Add a member to a project",
)
def add_member(
    project_id: ProjectId,
    body: Annotated[MemberAdd, Body()],
    _admin: AdminUser,
    session: SessionDep,
    log: AuditDep,
) -> None:
    """Make a user a member of the project with a role there (or change it) (admins)."""
    projects.add_member(session, project_id, body.user, body.role)
    log("project.member", f"project {project_id}", user=body.user, role=body.role.value)


@router.get("/audit", responses=ADMIN_ONLY, summary="The audit trail")
def audit_trail(
    _admin: AdminUser,
    session: SessionDep,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
    offset: Annotated[int, Query(ge=0, le=10_000_000)] = 0,
) -> audit.AuditPage:
    """Who did what, when and from where, newest first (admins)."""
    return audit.audit_page(session, offset, limit)

"""The browser dashboard: its HTML pages, static files, plotly.js from the installed plotly package,
and the one thing the pages need that a browser cannot do offline: parse a YAML spec.

A page is ``frontend/layout.html`` (head, navigation) around its fragment ``frontend/pages/<page>.html``,
composed once from fixed files: no user data is ever templated in. User data reaches a page only as
JSON, which the scripts put into the document as text. Every page is sent with a
Content-Security-Policy that allows scripts from this server only.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cache
from importlib.resources import files
from pathlib import Path
from typing import Annotated

import pydantic
import yaml
from fastapi import APIRouter, Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse
from fastapi.staticfiles import StaticFiles
from pydantic import Field

from backend.api.deps import ContextDep, ExperimentId
from backend.auth.deps import current_user, require
from backend.auth.roles import Role
from backend.limits import CostLimits, limit_checks
from backend.schemas import RequestBody, SpecPreview, ValidationErrorBody
from backend.service import catalog
from backend.service.errors import InvalidInput
from backend.spec import ExperimentSpec
from backend.spec_yaml import SpecTooComplex, load_yaml

#: The dashboard's files (read from the source tree: the package is installed editable).
FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
#: The folders of ``frontend/`` served as they are, at ``/static/<folder>/``.
STATIC_FOLDERS = ("css", "js")
#: plotly.js as bundled with the installed plotly package (no CDN: the dashboard works offline).
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))

#: Sent with every page: scripts and connections to this server only; Plotly needs inline styles.
CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'self'",
        "script-src 'self'",
        "style-src 'self' 'unsafe-inline'",
        "img-src 'self' data: blob:",
        "font-src 'self' data:",
        "connect-src 'self'",
        "object-src 'none'",
        "base-uri 'none'",
        "form-action 'self'",
        "frame-ancestors 'none'",
    )
)
PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-cache",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
}

#: Longest spec text accepted for parsing, in characters.
MAX_SPEC_TEXT = 200_000
YAML_MEDIA_TYPES = ("text/yaml", "application/yaml", "application/x-yaml", "text/x-yaml", "text/plain")

router = APIRouter(include_in_schema=False, dependencies=[Depends(current_user)])
spec_router = APIRouter(tags=["catalog"], dependencies=[Depends(current_user)])


# --------------------------------------------------------------------------------------------- pages


@dataclass(frozen=True)
class Page:
    """One dashboard page: its fragment ``frontend/pages/<name>.html`` and what its head loads."""

    name: str  # the fragment's name and the body's ``data-page`` (the navigation marks it)
    title: str
    script: str  # its module under /static/js/pages/
    modules: tuple[str, ...] = ()  # further modules it imports, preloaded
    plots: bool = False  # whether it draws Plotly charts (plotly.js is preloaded)


PAGES = {
    "experiments": Page("experiments", "Experiments", "list.js"),
    "experiment": Page("experiment", "Experiment", "experiment.js", ("plots.js", "spec-view.js"), True),
    "compare": Page("compare", "Compare", "compare.js", ("plots.js",), True),
    "new": Page("new", "New experiment", "new.js", ("spec-view.js",)),
    "signin": Page("signin", "Sign in", "signin.js"),
    "audit": Page("audit", "Audit trail", "audit.js"),
}


@cache
def page_html(name: str) -> str:
    """The page's HTML: the layout with the page's title, head links and fragment put in."""
    page = PAGES[name]
    head = ['  <link rel="preload" href="/vendor/plotly.min.js" as="script">'] if page.plots else []
    head += [f'  <link rel="modulepreload" href="/static/js/{module}">' for module in page.modules]
    head.append(f'  <script type="module" src="/static/js/pages/{page.script}"></script>')
    fragment = (FRONTEND_DIR / "pages" / f"{page.name}.html").read_text(encoding="utf-8")
    layout = (FRONTEND_DIR / "layout.html").read_text(encoding="utf-8")
    main = "".join(f"    {line}" if line.strip() else line for line in fragment.splitlines(keepends=True))
    parts = {"title": page.title, "head": "\n".join(head), "page": page.name, "main": main.rstrip("\n")}
    for key, value in parts.items():
        layout = layout.replace("{{" + key + "}}", value)
    return layout


def _page(name: str) -> HTMLResponse:
    return HTMLResponse(page_html(name), headers=PAGE_HEADERS)


@router.get("/")
def experiments_page() -> HTMLResponse:
    """The experiment list."""
    return _page("experiments")


@router.get("/experiments/{experiment_id}")
def experiment_page(experiment_id: ExperimentId) -> HTMLResponse:
    """One experiment (the script reads the id from the address)."""
    return _page("experiment")


@router.get("/compare")
def compare_page() -> HTMLResponse:
    """Experiments side by side (``?ids=1,2,3``)."""
    return _page("compare")


@router.get("/new")
def new_experiment_page() -> HTMLResponse:
    """The new-experiment form."""
    return _page("new")


@router.get("/audit", dependencies=[Depends(require(Role.admin))])
def audit_page() -> HTMLResponse:
    """The audit trail (admins)."""
    return _page("audit")


@router.get("/vendor/plotly.min.js")
def plotly_js() -> FileResponse:
    """plotly.js from the installed plotly package, cacheable for a day."""
    return FileResponse(
        PLOTLY_JS,
        media_type="text/javascript; charset=utf-8",
        headers={"Cache-Control": "public, max-age=86400"},
    )


def mount_frontend(app: FastAPI) -> None:
    """Serve the pages at ``/``, ``/experiments/{id}``, ``/compare``, ``/new`` and files at ``/static``."""
    app.include_router(router)
    for folder in STATIC_FOLDERS:  # pages only through their routes, which send the policy
        app.mount(f"/static/{folder}", StaticFiles(directory=FRONTEND_DIR / folder), name=f"static-{folder}")


# --------------------------------------------------------------------------------------------- YAML


class SpecText(RequestBody):
    """A spec as YAML or JSON text (JSON is YAML)."""

    text: str = Field(max_length=MAX_SPEC_TEXT)


async def spec_text(request: Request) -> str:
    """The request's spec text: the raw body (``text/yaml``, ``text/plain``) or JSON ``{"text": ...}``.

    Raises:
        RequestValidationError: a JSON body that is not ``{"text": "..."}``.
        InvalidInput: another media type, a body that is too long or not UTF-8.
    """
    media_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = await request.body()
    if len(body) > 4 * MAX_SPEC_TEXT:
        raise InvalidInput(("body",), f"a spec is at most {MAX_SPEC_TEXT:,} characters")
    if media_type == "application/json":
        try:
            return SpecText.model_validate_json(body).text
        except pydantic.ValidationError as exc:
            errors = [{**error, "loc": ("body", *error["loc"])} for error in exc.errors()]
            raise RequestValidationError(errors, body=None) from None
    if media_type and media_type not in YAML_MEDIA_TYPES:
        raise InvalidInput(
            ("header", "content-type"),
            f'send the spec as text/yaml or as JSON {{"text": ...}}, not {media_type}',
        )
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidInput(("body",), "the spec is not UTF-8 text") from None
    if len(text) > MAX_SPEC_TEXT:
        raise InvalidInput(("body",), f"a spec is at most {MAX_SPEC_TEXT:,} characters")
    return text


def parse_spec_text(text: str) -> ExperimentSpec:
    """A validated spec from YAML or JSON text.

    Args:
        text: the spec, as in a spec file.

    Raises:
        InvalidInput: the text is not YAML, not a mapping, nested too deep or too large once aliases are
            expanded (the message gives the line and column of a syntax error).
        RequestValidationError: the spec is invalid; each error's ``loc`` is
            ``["body", "spec", <field as written>...]``.
    """
    try:
        data = load_yaml(text)
    except SpecTooComplex as exc:
        raise InvalidInput(("body", "text"), str(exc)) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
        raise InvalidInput(("body", "text"), f"not valid YAML: {where}{exc.problem or exc}") from None
    except yaml.YAMLError as exc:
        raise InvalidInput(("body", "text"), f"not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise InvalidInput(("body", "text"), f"a spec is a mapping of fields, not {type(data).__name__}")
    try:
        return ExperimentSpec.model_validate(data)
    except pydantic.ValidationError as exc:
        errors = [{**error, "loc": ("body", "spec", *error["loc"])} for error in exc.errors()]
        raise RequestValidationError(errors, body={"spec": data}) from None


@spec_router.post(
    "/specs/parse",
    responses={422: {"model": ValidationErrorBody, "description": "not YAML, or an invalid spec"}},
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {
                "text/yaml": {"schema": {"type": "string"}},
                "application/json": {"schema": SpecText.model_json_schema()},
            },
        }
    },
    summary="Parse and cost a YAML spec",
)
def parse_spec(text: Annotated[str, Depends(spec_text)], context: ContextDep) -> SpecPreview:
    """Parse a spec sent as YAML (``text/yaml``, or JSON ``{"text": "..."}``), validate it and return it
    as it would be stored, with its model's cost and its estimates against this server's limits (as
    ``POST /specs/preview``). Nothing is created. A YAML error names its line and column; a spec
    error's ``loc`` names the field; a spec over a limit is returned with that limit's ``within`` false."""
    spec = parse_spec_text(text)
    limits = limit_checks(spec, CostLimits.from_settings(context.settings))
    return catalog.preview(spec).model_copy(update={"limits": limits})

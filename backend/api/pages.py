"""The browser dashboard: its HTML pages, static files, plotly.js from the installed plotly package,
a 404 page, and the one thing the pages need that a browser cannot do offline: parse a YAML spec.

A page is ``frontend/layout.html`` (head, navigation) around its fragment ``frontend/pages/<page>.html``,
composed once from fixed files: no user data is ever templated in. User data reaches a page only as
JSON, which the scripts put into the document as text. Every page is sent with a
Content-Security-Policy that allows scripts from this server only.

Pages and files are sent gzip-encoded with ETags (``backend.api.static_cache``): a page is revalidated
on every visit (a 304 when unchanged), plotly.js is asked for at a versioned URL cached for a year.
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
from fastapi.responses import JSONResponse, Response
from pydantic import Field
from starlette.datastructures import Headers

from backend.api.deps import ContextDep, ExperimentId
from backend.api.module_graph import imported_modules
from backend.api.static_cache import (
    REVALIDATE,
    Asset,
    CachedFiles,
    asset_response,
    cache_control_for,
    load_asset,
)
from backend.auth.deps import current_user, require
from backend.auth.roles import Role
from backend.limits import CostLimits, limit_checks
from backend.schemas import API_PREFIX, ErrorBody, RequestBody, SpecPreview, ValidationErrorBody
from backend.service import catalog
from backend.service.errors import InvalidInput
from prunespec.spec import ExperimentSpec
from prunespec.spec_yaml import SpecTooComplex, load_yaml

#: The dashboard's files (read from the source tree: the package is installed editable).
FRONTEND_DIR = Path(__file__).resolve().parents[2] / "frontend"
#: The folders of ``frontend/`` served as they are, at ``/static/<folder>/``.
STATIC_FOLDERS = ("css", "js")
#: plotly.js as bundled with the installed plotly package (no CDN: the dashboard works offline).
PLOTLY_JS = Path(str(files("plotly") / "package_data" / "plotly.min.js"))
PLOTLY_URL = "/vendor/plotly.min.js"
#: ``Cache-Control`` of plotly.js at its plain URL (pages ask for it at a versioned one: a year).
PLOTLY_CACHE = "public, max-age=86400"
#: Paths of files and of the API: a missing one is a JSON 404, never the HTML page.
NOT_PAGES = (f"{API_PREFIX}/", "/static/", "/vendor/")

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
    script: str  # its module under /static/js/pages/ (the modules it imports are preloaded)
    plots: bool = False  # whether it draws Plotly charts (its HTML loads plotly.js)
    #: the API request its script makes first when the page's address has no query (its defaults);
    #: the head asks for it while the HTML is parsed, and the script's fetch takes that response
    first_request: str | None = None


#: list.js's first request with its default state (DEFAULTS there: newest first, 50 a page).
LIST_FIRST_REQUEST = "/api/experiments?sort=created&order=desc&limit=50&offset=0"

PAGES = {
    "experiments": Page("experiments", "Experiments", "list.js", first_request=LIST_FIRST_REQUEST),
    "experiment": Page("experiment", "Experiment", "experiment.js", plots=True),
    "compare": Page("compare", "Compare", "compare.js", plots=True),
    "new": Page("new", "New experiment", "new.js"),
    "not-found": Page("not-found", "Not found", "not-found.js"),
    "signin": Page("signin", "Sign in", "signin.js"),
    "audit": Page("audit", "Audit trail", "audit.js"),
}


@cache
def page_html(name: str, first_request: bool = False) -> str:
    """The page's HTML: the layout with the page's title, head links and fragment put in. The head
    preloads every module the page's script imports (directly or not) so that they download while the
    HTML is parsed, and with ``first_request`` the page's first API request (``Page.first_request``),
    so that its data is on its way before the modules have run; a page with charts loads plotly.js as
    a deferred script after its module (compiled while it downloads, run after the module has asked for
    the page's data)."""
    page = PAGES[name]
    plotly = f"{PLOTLY_URL}?v={load_asset(PLOTLY_JS).version}"  # plots.js loads the same URL
    modules = imported_modules(FRONTEND_DIR / "js", f"pages/{page.script}")
    head = []
    if first_request and page.first_request:
        # as="fetch" with crossorigin="anonymous": a same-origin fetch() with the session's cookie,
        # which the script's own fetch of the same address then takes instead of asking again
        head.append(f'  <link rel="preload" as="fetch" crossorigin="anonymous" href="{page.first_request}">')
    head += [f'  <link rel="modulepreload" href="/static/js/{module}">' for module in modules]
    head.append(f'  <script type="module" src="/static/js/pages/{page.script}"></script>')
    if page.plots:  # deferred, after the module: it runs once the module has asked for its data;
        # high priority, as a preload would be (a deferred script is otherwise fetched after the rest)
        head.append(f'  <script defer fetchpriority="high" src="{plotly}" id="plotly-js"></script>')
    fragment = (FRONTEND_DIR / "pages" / f"{page.name}.html").read_text(encoding="utf-8")
    layout = (FRONTEND_DIR / "layout.html").read_text(encoding="utf-8")
    main = "".join(f"    {line}" if line.strip() else line for line in fragment.splitlines(keepends=True))
    parts = {"title": page.title, "head": "\n".join(head), "page": page.name, "main": main.rstrip("\n")}
    for key, value in parts.items():
        layout = layout.replace("{{" + key + "}}", value)
    return layout


@cache
def page_asset(name: str, first_request: bool = False) -> Asset:
    """A page's HTML, gzip-encoded and with its ETag."""
    return Asset.of(page_html(name, first_request).encode("utf-8"), "text/html; charset=utf-8")


def _page(request: Request, name: str, status_code: int = 200) -> Response:
    headers = request.headers
    if status_code != 200:  # an error page is always sent whole, with its status
        headers = Headers(raw=[(key, value) for key, value in headers.raw if key != b"if-none-match"])
    # the first request is known only for the page's default state: an address without a query
    asset = page_asset(name, first_request=status_code == 200 and not request.url.query)
    response = asset_response(headers, asset, REVALIDATE, PAGE_HEADERS)
    if response.status_code == 200:  # not a 304
        response.status_code = status_code
    return response


@router.get("/")
def experiments_page(request: Request) -> Response:
    """The experiment list."""
    return _page(request, "experiments")


@router.get("/experiments/{experiment_id}")
def experiment_page(request: Request, experiment_id: ExperimentId) -> Response:
    """One experiment (the script reads the id from the address)."""
    return _page(request, "experiment")


@router.get("/compare")
def compare_page(request: Request) -> Response:
    """Experiments side by side (``?ids=1,2,3``)."""
    return _page(request, "compare")


@router.get("/new")
def new_experiment_page(request: Request) -> Response:
    """The new-experiment form."""
    return _page(request, "new")


@router.get("/audit", dependencies=[Depends(require(Role.admin))])
def audit_page(request: Request) -> Response:
    """The audit trail (admins)."""
    return _page(request, "audit")


@router.get(PLOTLY_URL)
def plotly_js(request: Request) -> Response:
    """plotly.js from the installed plotly package: cacheable for a day, or for a year at the versioned
    URL the pages use (``?v=<version>``); gzip-encoded where the browser accepts it."""
    asset = load_asset(PLOTLY_JS)
    return asset_response(
        request.headers, asset, cache_control_for(request.query_params, asset, PLOTLY_CACHE)
    )


def wants_page(request: Request) -> bool:
    """Whether a request is a browser asking for a page: a GET or HEAD that accepts HTML, outside the
    API and the file folders."""
    path = request.url.path
    return (
        request.method in ("GET", "HEAD")
        and "text/html" in request.headers.get("accept", "")
        and not path.startswith(NOT_PAGES)
    )


async def not_found(request: Request, exc: Exception) -> Response:
    """A 404 for an address no route answers: the dashboard's "not found" page for a browser, else
    the API's ``ErrorBody`` (code ``not_found``), keeping the exception's headers."""
    headers = dict(getattr(exc, "headers", None) or {})
    if wants_page(request):
        return _page(request, "not-found", status_code=404)
    body = ErrorBody(detail="nothing is at this address: check the path", code="not_found")
    return JSONResponse(body.model_dump(mode="json"), status_code=404, headers=headers)


def mount_frontend(app: FastAPI) -> None:
    """Serve the pages at ``/``, ``/experiments/{id}``, ``/compare``, ``/new``, files at ``/static``,
    and a 404 page (or JSON, for the API and files) for every address nothing answers."""
    app.include_router(router)
    for folder in STATIC_FOLDERS:  # pages only through their routes, which send the policy
        app.mount(f"/static/{folder}", CachedFiles(FRONTEND_DIR / folder), name=f"static-{folder}")
    app.add_exception_handler(404, not_found)


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

"""The API explorers, ``/docs`` (Swagger UI) and ``/redoc`` (ReDoc), working without internet.

FastAPI's own pages load their scripts from a CDN, so without a network ``/docs`` is blank. These are
the same pages (FastAPI's ``get_swagger_ui_html`` and ``get_redoc_html``) pointed at the files the
installed ``fastapi-offline`` package ships (Swagger UI 5 and ReDoc 2 bundles), served from
``/vendor/docs/`` with versioned, cacheable URLs. Swagger UI's online validator badge, which would
send the OpenAPI URL to a third party, is off.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from fastapi import FastAPI
from fastapi.openapi.docs import get_redoc_html, get_swagger_ui_html
from fastapi.responses import HTMLResponse

from backend.api.static_cache import CachedFiles, versioned_url

#: Swagger UI and ReDoc as shipped by the fastapi-offline package.
DOCS_ASSETS = Path(str(files("fastapi_offline") / "static"))
#: Where those files are served.
DOCS_ASSETS_URL = "/vendor/docs"
DOCS_URL = "/docs"
REDOC_URL = "/redoc"


def _asset(name: str) -> str:
    return versioned_url(f"{DOCS_ASSETS_URL}/{name}", DOCS_ASSETS / name)


def swagger_html(app: FastAPI) -> HTMLResponse:
    """The Swagger UI page of an app (its title, OpenAPI URL and UI parameters), with local files.

    Args:
        app: the app whose API the page explores (created with ``docs_url=None``).
    """
    return get_swagger_ui_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - Swagger UI",
        swagger_js_url=_asset("swagger-ui-bundle.js"),
        swagger_css_url=_asset("swagger-ui.css"),
        swagger_favicon_url=_asset("favicon.png"),
        oauth2_redirect_url=None,
        init_oauth=app.swagger_ui_init_oauth,
        swagger_ui_parameters={**(app.swagger_ui_parameters or {}), "validatorUrl": None},
    )


def redoc_html(app: FastAPI) -> HTMLResponse:
    """The ReDoc page of an app, with local files and no web fonts.

    Args:
        app: the app whose API the page documents (created with ``redoc_url=None``).
    """
    return get_redoc_html(
        openapi_url=app.openapi_url or "/openapi.json",
        title=f"{app.title} - ReDoc",
        redoc_js_url=_asset("redoc.standalone.js"),
        redoc_favicon_url=_asset("favicon.png"),
        with_google_fonts=False,
    )


def install_docs(app: FastAPI) -> None:
    """Serve ``/docs``, ``/redoc`` and their files (``/vendor/docs/...``, cacheable for a day, or a
    year at a versioned URL).

    Args:
        app: an app created with ``docs_url=None`` and ``redoc_url=None``.
    """

    @app.get(DOCS_URL, include_in_schema=False)
    def swagger_ui() -> HTMLResponse:
        return swagger_html(app)

    @app.get(REDOC_URL, include_in_schema=False)
    def redoc() -> HTMLResponse:
        return redoc_html(app)

    app.mount(DOCS_ASSETS_URL, CachedFiles(DOCS_ASSETS, "public, max-age=86400"), name="vendor-docs")

"""The dashboard: HTML page shells, their script and style, and plotly.js from the installed
``plotly`` package (no CDN: the dashboard works offline).

Pages hold no data; their script fetches it from ``/api/v1`` (with the token the viewer typed,
kept in the browser's session storage, when reads are closed) and refreshes by polling.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from importlib import resources
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

__all__ = ["REFRESH_SECONDS", "plotly_js_path", "router"]

REFRESH_SECONDS = 5  # how often pages poll; Grafana's shortest default refresh choice is 5s
_STATIC = resources.files("scaleguard.service") / "static"
_ASSETS = {"dashboard.js": "text/javascript", "dashboard.css": "text/css",
           "favicon.svg": "image/svg+xml"}
# Plotly draws SVG and sets inline styles; nothing is loaded from or sent to another origin.
_CSP = ("default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data: blob:; connect-src 'self'; frame-ancestors 'none'; "
        "base-uri 'none'; form-action 'self'")

router = APIRouter(include_in_schema=False)


def plotly_js_path() -> Path:
    """The ``plotly.min.js`` bundled with the installed ``plotly`` package."""
    import plotly

    return Path(plotly.__file__).parent / "package_data" / "plotly.min.js"


_SHELL = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{title} · scaleguard</title>
<link rel="icon" href="/static/favicon.svg" type="image/svg+xml">
<link rel="stylesheet" href="/static/dashboard.css">
<script src="/static/plotly.min.js"></script>
<script src="/static/dashboard.js" defer></script>
</head>
<body data-page="{page}" data-key="{key}" data-refresh="{refresh}">
<header>
  <a class="brand" href="/">scaleguard</a>
  <nav><a href="/">Runs</a><a href="/alerts">Alerts</a><a href="/rollouts">Rollouts</a></nav>
  <span id="status" class="status">loading…</span>
</header>
<div id="login" class="login" hidden>
  <form id="login-form">
    <label>Reads need a token: <input id="token" type="password" autocomplete="off"></label>
    <button type="submit">Use token</button>
  </form>
</div>
<main id="main"><h1>{title}</h1></main>
</body>
</html>
"""


def _page(title: str, page: str, key: str = "") -> HTMLResponse:
    body = _SHELL.format(title=html.escape(title), page=page, key=html.escape(key, quote=True),
                         refresh=REFRESH_SECONDS)
    return HTMLResponse(body, headers={"Content-Security-Policy": _CSP,
                                       "Cache-Control": "no-store"})


# Pages without a key: path -> (title, page name the script draws).
_PAGES = {"/": ("Runs", "runs"), "/alerts": ("Alerts", "alerts"),
          "/rollouts": ("Rollouts", "rollouts")}


def _fixed_page(title: str, page: str) -> Callable[[], HTMLResponse]:
    def show() -> HTMLResponse:  # no parameters: nothing from the request reaches the page
        return _page(title, page)
    return show


for _path, (_title, _name) in _PAGES.items():
    router.add_api_route(_path, _fixed_page(_title, _name), methods=["GET"],
                         response_class=HTMLResponse, name=f"{_name}_page")


@router.get("/runs/{run}", response_class=HTMLResponse)
def run_page(run: str) -> HTMLResponse:
    return _page(f"Run {run}", "run", run)


@router.get("/rollouts/{rollout}", response_class=HTMLResponse)
def rollout_page(rollout: str) -> HTMLResponse:
    return _page(f"Rollout {rollout}", "rollout", rollout)


@router.get("/static/plotly.min.js")
def plotly_js() -> FileResponse:
    return FileResponse(plotly_js_path(), media_type="text/javascript",
                        headers={"Cache-Control": "public, max-age=86400"})


@router.get("/static/{name}")
def asset(name: str, request: Request) -> Response:
    if name not in _ASSETS:  # a fixed list: no path from the request reaches the file system
        return Response(status_code=404)
    return Response((_STATIC / name).read_bytes(), media_type=_ASSETS[name],
                    headers={"Cache-Control": "no-cache"})


@router.get("/favicon.ico")
def favicon() -> Response:
    return Response((_STATIC / "favicon.svg").read_bytes(), media_type="image/svg+xml")

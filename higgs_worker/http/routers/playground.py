"""The playground (``PLAYGROUND=true``, the default): ``GET /`` is the page, ``GET
/playground/{file}`` its script and style sheet. Plain files shipped in the package
(``http/playground/``); the page talks to the API routes by relative paths, so it works
behind RunPod's load-balancing URL. docs/playground.md."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import Response

from ..errors import ApiError

router = APIRouter()

# name -> media type: the only files served (no path from the request reaches the disk)
ASSETS = {
    "index.html": "text/html; charset=utf-8",
    "playground.js": "text/javascript; charset=utf-8",
    "playground.css": "text/css; charset=utf-8",
}
HEADERS = {
    "Cache-Control": "no-cache",
    # everything from this worker: no third-party host, no inline script
    "Content-Security-Policy": "default-src 'self'; media-src 'self' blob:; img-src 'self' data:; "
    "connect-src 'self' blob:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
}


def _asset(name: str) -> Response:
    if name not in ASSETS:
        raise ApiError(404, f"no playground file {name[:64]!r}", "not_found")
    body = files(__package__.rsplit(".", 1)[0]).joinpath("playground", name).read_bytes()
    return Response(body, media_type=ASSETS[name], headers=HEADERS)


@router.get("/", include_in_schema=False)
async def page() -> Response:
    return _asset("index.html")


@router.get("/playground/{name}", include_in_schema=False)
async def asset(name: str) -> Response:
    return _asset(name)

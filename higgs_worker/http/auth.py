"""``API_KEY``: every path but ``/ping`` and the playground's own files needs
``Authorization: Bearer <API_KEY>``."""

from __future__ import annotations

import hmac

from .errors import ApiError, error_response

# The playground's shell (``routers.playground``) holds no data: it loads without the key,
# then asks for it before it lists voices or speaks (every API route still needs the key).
PLAYGROUND_PATHS = ("/", "/playground/")


def is_open_path(path: str, playground: bool) -> bool:
    if path == "/ping":
        return True
    return playground and (path == PLAYGROUND_PATHS[0] or path.startswith(PLAYGROUND_PATHS[1]))


class BearerAuth:
    """Pure ASGI middleware; the key is compared in constant time. RunPod's gateway checks
    its own key before this (API_KEY is for running outside RunPod)."""

    def __init__(self, app, key: str, playground: bool = False):
        self.app, self.expected, self.playground = app, f"Bearer {key}".encode(), playground

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and not is_open_path(scope.get("path", ""), self.playground):
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                error = ApiError(401, "a valid 'Authorization: Bearer <API_KEY>' header is required", "invalid_api_key")
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)

"""``API_KEY``: every path but ``/ping`` needs ``Authorization: Bearer <API_KEY>``."""

from __future__ import annotations

import hmac

from .errors import ApiError, error_response


class BearerAuth:
    """Pure ASGI middleware; the key is compared in constant time. RunPod's gateway checks
    its own key before this (API_KEY is for running outside RunPod)."""

    def __init__(self, app, key: str):
        self.app, self.expected = app, f"Bearer {key}".encode()

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and scope.get("path") != "/ping":
            given = dict(scope.get("headers") or []).get(b"authorization", b"")
            if not hmac.compare_digest(given, self.expected):
                error = ApiError(401, "a valid 'Authorization: Bearer <API_KEY>' header is required", "invalid_api_key")
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)

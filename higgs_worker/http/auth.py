"""``API_KEY``: every path but ``/ping`` and the playground's own files needs
``Authorization: Bearer <API_KEY>``.

Voice administration (``POST /v1/audio/voices``, ``POST /v1/audio/voices/design``,
``DELETE /v1/audio/voices/{name}``) is ``VOICE_ADMIN=off`` (403 ``voice_admin_disabled``) or,
with ``VOICE_ADMIN_KEY``, needs that key instead of API_KEY, so the key that synthesizes cannot
replace shared voices (docs/security.md)."""

from __future__ import annotations

import hmac

from .errors import ApiError, error_response

VOICES_PATH = "/v1/audio/voices"
# The playground's shell (``routers.playground``) holds no data: it loads without the key,
# then asks for it before it lists voices or speaks (every API route still needs the key).
PLAYGROUND_PATHS = ("/", "/playground/")


def is_voice_admin(scope) -> bool:
    """An upload, a design or a delete of a voice: each writes the shared library (listing is
    not administration)."""
    method, path = scope.get("method"), scope.get("path", "")
    return (method == "POST" and path.rstrip("/") in (VOICES_PATH, VOICES_PATH + "/design")) or (
        method == "DELETE" and path.startswith(VOICES_PATH + "/")
    )


def is_open_path(path: str, playground: bool) -> bool:
    if path == "/ping":
        return True
    return playground and (path == PLAYGROUND_PATHS[0] or path.startswith(PLAYGROUND_PATHS[1]))


def _bearer(scope) -> bytes:
    return dict(scope.get("headers") or []).get(b"authorization", b"")


class BearerAuth:
    """Pure ASGI middleware; the key is compared in constant time. RunPod's gateway checks
    its own key before this (API_KEY is for running outside RunPod). ``skip``: requests another
    check owns (voice administration with its own key)."""

    def __init__(self, app, key: str, skip=lambda scope: False, playground: bool = False):
        self.app, self.expected, self.skip, self.playground = app, f"Bearer {key}".encode(), skip, playground

    async def __call__(self, scope, receive, send) -> None:
        if (
            scope["type"] == "http"
            and not is_open_path(scope.get("path", ""), self.playground)
            and not self.skip(scope)
        ):
            if not hmac.compare_digest(_bearer(scope), self.expected):
                error = ApiError(401, "a valid 'Authorization: Bearer <API_KEY>' header is required", "invalid_api_key")
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)


class VoiceAdminGate:
    """VOICE_ADMIN=off: voice upload and delete refused (403); ``key``: they need it, as a bearer
    token or in ``X-Voice-Admin-Key``."""

    def __init__(self, app, enabled: bool, key: str | None):
        self.app, self.enabled = app, enabled
        self.expected = f"Bearer {key}".encode() if key else None

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] == "http" and is_voice_admin(scope):
            error = None
            if not self.enabled:
                error = ApiError(
                    403, "voice administration is turned off on this worker (VOICE_ADMIN=off)", "voice_admin_disabled"
                )
            elif self.expected is not None and not self._admin(scope):
                error = ApiError(
                    401,
                    "voice administration needs 'Authorization: Bearer <VOICE_ADMIN_KEY>' "
                    "(or 'X-Voice-Admin-Key: <VOICE_ADMIN_KEY>')",
                    "invalid_api_key",
                )
            if error is not None:
                await error_response(error)(scope, receive, send)
                return
        await self.app(scope, receive, send)

    def _admin(self, scope) -> bool:
        """The key as a bearer token, or in ``X-Voice-Admin-Key`` (behind a gateway that takes
        ``Authorization`` for its own key, as RunPod's does)."""
        assert self.expected is not None
        header = dict(scope.get("headers") or []).get(b"x-voice-admin-key", b"")
        given = b"Bearer " + header if header else _bearer(scope)
        return hmac.compare_digest(given, self.expected)

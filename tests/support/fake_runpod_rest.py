"""A fake RunPod REST API v2 (the management API behind ``https://api.runpod.io/v2``), on
127.0.0.1, for checking what deploy-runpod.sh sends.

RunPod's management API is a remote service that cannot run here. This stand-in is
written from RunPod's published v2 documents (read 2026-11: the OpenAPI schema
``https://api.runpod.io/v2/openapi.json`` as kept in github.com/runpod/docs
``api-reference-v2/openapi.json``, and the guide ``docs.runpod.io/api-reference-v2/
migrate-from-v1``). It knows only the operations the deploy script uses::

    GET   /v2/templates             -> 200 {"templates": [Template]}
    POST  /v2/templates             -> 201 Template            (CreateTemplateRequest)
    PATCH /v2/templates/{id}        -> 200 Template            (UpdateTemplateRequest)
    GET   /v2/serverless            -> 200 {"endpoints": [Endpoint]}
    POST  /v2/serverless            -> 201 Endpoint            (CreateEndpointRequest)
    PATCH /v2/serverless/{id}       -> 200 Endpoint            (UpdateEndpointRequest)
    GET   /v2/network-volumes/{id}  -> 200 NetworkVolume
    GET   /v2/registries            -> 200 {"registries": [Registry]}
    POST  /v2/registries            -> 201 Registry            (CreateRegistryRequest)

Request bodies are validated against JSON Schemas transcribed here (field names,
types, enums, required fields, ``unevaluatedProperties: false``: v2 rejects unknown
fields by name). Errors are RFC 9457 problem objects (``application/problem+json``,
``{"title", "status", "detail", "errors"?}``): 400 for an invalid body, 401 without
the bearer key, 404 for an unknown id or path. Every request is recorded.
"""

from __future__ import annotations

import itertools
import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from jsonschema import Draft202012Validator

_CONTAINER = {
    "args": {"type": "string"},
    "disk": {"type": "integer", "minimum": 1},
    "env": {"type": "object", "additionalProperties": {"type": "string"}},
    "image": {"type": "string"},
    "ports": {"type": "array", "items": {"type": "string"}},
    "registry": {"type": ["string", "null"]},
}
_CUDA = {"type": "array", "items": {"type": "string", "pattern": r"^\d+\.\d+$"}}
_TEMPLATE_FIELDS = {
    **_CONTAINER,
    "name": {"type": "string", "minLength": 1},
    "allowedCudaVersions": _CUDA,
    "category": {"enum": ["CPU", "NVIDIA", "AMD"]},
    "mounts": {"type": "object"},
    "public": {"type": "boolean"},
    "serverless": {"type": "boolean"},
    "startJupyter": {"type": "boolean"},
    "startSsh": {"type": "boolean"},
}
_GPU_FIELDS = {
    "pools": {"type": "array", "minItems": 1, "items": {"type": "string"}},
    "excludedTypes": {"type": "array", "uniqueItems": True, "items": {"type": "string"}},
    "count": {"type": "integer", "minimum": 1},
    "allowedCudaVersions": _CUDA,  # an exact set ("Matching is exact"); [] = no constraint
    "minCudaVersion": {"type": "string", "pattern": r"^\d+\.\d+$"},  # an open floor
}
# "A non-empty set is mutually exclusive with minCudaVersion (400 if both are sent). An
# explicit [] states no constraint, so it may accompany a floor." (Create/UpdateEndpointGpuConfig)
_CUDA_FLOOR_OR_SET = {
    "not": {
        "required": ["minCudaVersion", "allowedCudaVersions"],
        "properties": {"minCudaVersion": {"minLength": 1}, "allowedCudaVersions": {"minItems": 1}},
    }
}
_SCALING = {
    "oneOf": [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "queueDelay"],
            "properties": {"type": {"const": "QUEUE_DELAY"}, "queueDelay": {"type": "number", "minimum": 0.5}},
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["type", "requestCount"],
            "properties": {"type": {"const": "REQUEST_COUNT"}, "requestCount": {"type": "integer", "minimum": 1}},
        },
    ]
}
_WORKERS = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "min": {"type": "integer", "minimum": 0},
        "max": {"type": "integer", "minimum": 0},
        "idleTimeout": {"type": "integer", "minimum": 1, "maximum": 3600},
    },
}
_ENDPOINT_FIELDS = {
    **_CONTAINER,
    "cpu": {"type": "array", "minItems": 1},
    "dataCenterIds": {"type": "array", "items": {"type": "string"}},
    "flashboot": {"enum": ["OFF", "FLASHBOOT", "PRIORITY_FLASHBOOT"]},
    "name": {"type": "string", "minLength": 1},
    "networkVolumes": {"type": "array", "items": {"type": "string"}},
    "scaling": _SCALING,
    "templateId": {"type": "string", "minLength": 1},
    "timeout": {"type": "integer"},
    "workers": _WORKERS,
}


def _obj(properties: dict, required: list[str] = ()) -> dict:
    return {"type": "object", "properties": properties, "required": list(required), "unevaluatedProperties": False}


SCHEMAS = {
    "CreateTemplateRequest": _obj(_TEMPLATE_FIELDS, ["name", "image"]),
    "UpdateTemplateRequest": _obj(_TEMPLATE_FIELDS),
    "CreateEndpointRequest": {
        **_obj(
            {
                **_ENDPOINT_FIELDS,
                "type": {"enum": ["QUEUE", "LOAD_BALANCER"]},
                "gpu": {**_obj(_GPU_FIELDS, ["pools"]), **_CUDA_FLOOR_OR_SET},
            },
            ["name", "type", "scaling"],
        ),
        "if": {"not": {"required": ["templateId"]}},
        "then": {"required": ["image"]},
    },
    "UpdateEndpointRequest": _obj(
        {
            **_ENDPOINT_FIELDS,
            "gpu": {
                **_obj({**_GPU_FIELDS, "minCudaVersion": {"type": "string", "pattern": r"^$|^\d+\.\d+$"}}),
                **_CUDA_FLOOR_OR_SET,
            },
        }
    ),
    "CreateRegistryRequest": {
        "type": "object",
        "additionalProperties": False,
        "required": ["name", "username", "password"],
        "properties": {k: {"type": "string", "minLength": 1} for k in ("name", "username", "password")},
    },
}
VALIDATORS = {name: Draft202012Validator(schema) for name, schema in SCHEMAS.items()}
PUBLIC = "https://api.runpod.ai/v2"


def validation_errors(schema: str, body: Any) -> list[str]:
    """The messages v2 would put in a 400 problem's ``errors`` (empty: the body is valid)."""
    return [
        f"{'/'.join(map(str, e.absolute_path)) or '(body)'}: {e.message}"
        for e in sorted(VALIDATORS[schema].iter_errors(body), key=lambda e: list(map(str, e.absolute_path)))
    ]


class FakeRunPodRest:
    def __init__(self, api_key: str, templates=(), endpoints=(), volumes=(), registries=()):
        self.api_key = api_key
        self.templates: dict[str, dict] = {t["id"]: self._template(t) for t in templates}
        self.endpoints: dict[str, dict] = {e["id"]: self._endpoint(e) for e in endpoints}
        self.volumes: dict[str, dict] = {v["id"]: v for v in volumes}
        self.registries: dict[str, dict] = {r["id"]: r for r in registries}
        self.requests: list[dict] = []
        self._ids = itertools.count(1)
        self._lock = threading.Lock()
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _make_handler(self))
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v2"

    def __enter__(self) -> FakeRunPodRest:
        threading.Thread(target=self._server.serve_forever, name="fake-runpod-rest", daemon=True).start()
        return self

    def __exit__(self, *exc) -> None:
        self._server.shutdown()
        self._server.server_close()

    def calls(self) -> list[tuple[str, str]]:
        return [(r["method"], r["path"]) for r in self.requests]

    # -- resources, in the response shapes of the v2 schema -----------------------------
    @staticmethod
    def _template(body: dict) -> dict:
        base = {"args": "", "disk": 10, "mounts": {}, "ports": [], "env": {}, "registry": None, "serverless": False,
                "public": False, "category": "NVIDIA", "startSsh": True, "startJupyter": True,
                "allowedCudaVersions": []}  # fmt: skip
        return {**base, **body}

    @staticmethod
    def _endpoint(body: dict) -> dict:
        ep = {
            "workers": {"min": 0, "max": 3, "idleTimeout": 10},
            "dataCenterIds": [],
            "networkVolumes": [],
            "timeout": 300000,
            "flashboot": "OFF",
            "createdAt": "2026-11-29T00:00:00Z",
            "type": "QUEUE",
            **body,
        }
        eid = ep["id"]
        if ep["type"] == "LOAD_BALANCER":
            ep["requestUrls"] = {"base": f"https://{eid}.api.runpod.ai", "health": f"https://{eid}.api.runpod.ai/ping"}
        else:
            ep["requestUrls"] = {
                name: f"{PUBLIC}/{eid}/{path}"
                for name, path in [("run", "run"), ("runSync", "runsync"), ("status", "status/{job_id}"),
                                   ("stream", "stream/{job_id}"), ("cancel", "cancel/{job_id}"),
                                   ("retry", "retry/{job_id}"), ("purgeQueue", "purge-queue"), ("health", "health")]
            }  # fmt: skip
        return ep

    def new_id(self, prefix: str) -> str:
        return f"{prefix}{next(self._ids)}"


def _make_handler(fake: FakeRunPodRest) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args) -> None:
            pass

        def _send(self, status: int, payload: Any, content_type: str = "application/json") -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def _problem(self, status: int, title: str, detail: str, errors: list[str] | None = None) -> None:
            body = {"title": title, "status": status, "detail": detail}
            if errors:
                body["errors"] = errors
            self._send(status, body, "application/problem+json")

        def _handle(self) -> None:
            raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            try:
                body = json.loads(raw) if raw else None
            except ValueError:
                body = raw.decode("utf-8", "replace")
            with fake._lock:
                fake.requests.append(
                    {
                        "method": self.command,
                        "path": self.path,
                        "auth": self.headers.get("Authorization"),
                        "content_type": self.headers.get("Content-Type"),
                        "body": body,
                    }
                )
            if self.headers.get("Authorization") != f"Bearer {fake.api_key}":
                detail = "The bearer token is missing, malformed, expired, or invalid."
                return self._problem(401, "Unauthorized", detail)
            with fake._lock:
                self._route(self.command, self.path.split("?")[0], body)

        def _valid(self, schema: str, body: Any) -> bool:
            errors = ["(body): not a JSON object"] if not isinstance(body, dict) else validation_errors(schema, body)
            if errors:
                self._problem(400, "Bad Request", f"The request body does not match {schema}.", errors)
            return not errors

        def _route(self, method: str, path: str, body: Any) -> None:
            m = re.fullmatch(r"/v2/(templates|serverless|network-volumes|registries)(?:/([\w-]+))?", path)
            if not m:
                return self._problem(404, "Not Found", f"No route {method} {path}.")
            kind, rid = m.groups()
            store = {"templates": fake.templates, "serverless": fake.endpoints,
                     "network-volumes": fake.volumes, "registries": fake.registries}[kind]  # fmt: skip
            list_key = {"templates": "templates", "serverless": "endpoints", "registries": "registries",
                        "network-volumes": "networkVolumes"}[kind]  # fmt: skip
            if method == "GET" and rid is None:
                return self._send(200, {list_key: list(store.values())})
            if method == "GET":
                if rid not in store:
                    return self._problem(404, "Not Found", f"The requested {kind} resource {rid} does not exist.")
                return self._send(200, store[rid])
            if method == "POST" and rid is None and kind in ("templates", "serverless", "registries"):
                schema = {"templates": "CreateTemplateRequest", "serverless": "CreateEndpointRequest",
                          "registries": "CreateRegistryRequest"}[kind]  # fmt: skip
                if not self._valid(schema, body):
                    return None
                if kind == "serverless" and body.get("templateId") and body["templateId"] not in fake.templates:
                    return self._problem(404, "Not Found", f"Template {body['templateId']} does not exist.")
                if kind == "registries":
                    item = {"id": fake.new_id("reg-"), "name": body["name"]}  # username/password are write-only
                elif kind == "templates":
                    item = fake._template({**body, "id": fake.new_id("tpl-")})
                else:
                    item = fake._endpoint({**body, "id": fake.new_id("ep-")})
                store[item["id"]] = item
                return self._send(201, item)
            if method == "PATCH" and rid is not None and kind in ("templates", "serverless"):
                if rid not in store:
                    return self._problem(404, "Not Found", f"The requested {kind} resource {rid} does not exist.")
                schema = "UpdateTemplateRequest" if kind == "templates" else "UpdateEndpointRequest"
                if not self._valid(schema, body):
                    return None
                store[rid] = {**store[rid], **body}
                if kind == "serverless":
                    store[rid] = fake._endpoint(store[rid])
                return self._send(200, store[rid])
            return self._problem(405, "Method Not Allowed", f"{method} is not allowed on {path}.")

        do_GET = do_POST = do_PATCH = do_DELETE = _handle  # noqa: N815 - http.server API

    return Handler

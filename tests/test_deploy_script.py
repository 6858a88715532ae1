"""deploy-runpod.sh: the requests it prints with --dry-run and the ones it really
sends, against a fake RunPod REST API on 127.0.0.1 (no network needed)."""

from __future__ import annotations

import http.server
import json
import os
import re
import shutil
import subprocess
import threading
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy-runpod.sh"
CONFIG = json.loads((ROOT / "runpod-serverless-config.json").read_text())
API_KEY = "rpa_TESTKEY0123456789abcdefTESTKEY"
SECRET = "fake-secret-value-EXAMPLE-0123456789"

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("curl") is None, reason="bash and curl are required"
)


class FakeRunPod(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, templates=None, endpoints=None, fail_status: int | None = None):
        self.requests: list[dict] = []
        self.templates = templates or []
        self.endpoints = endpoints or []
        self.fail_status = fail_status
        super().__init__(("127.0.0.1", 0), FakeHandler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_port}/v1"


class FakeHandler(http.server.BaseHTTPRequestHandler):
    server: FakeRunPod

    def log_message(self, *args) -> None:
        pass

    def _reply(self, status: int, body) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _handle(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        body = json.loads(raw) if raw else None
        self.server.requests.append(
            {
                "method": self.command,
                "path": self.path,
                "auth": self.headers.get("Authorization"),
                "content_type": self.headers.get("Content-Type"),
                "body": body,
            }
        )
        srv = self.server
        if srv.fail_status:
            self._reply(srv.fail_status, {"error": "invalid api key"})
            return
        path = self.path.split("?")[0]
        if self.command == "GET" and path == "/v1/templates":
            self._reply(200, srv.templates)
        elif self.command == "GET" and path == "/v1/endpoints":
            self._reply(200, srv.endpoints)
        elif self.command == "POST" and path == "/v1/templates":
            self._reply(200, dict(body, id="tpl-new-1"))
        elif self.command == "POST" and path == "/v1/endpoints":
            self._reply(200, dict(body, id="ep-new-1"))
        elif self.command == "PATCH" and re.fullmatch(r"/v1/(templates|endpoints)/[\w-]+", path):
            self._reply(200, dict(body, id=path.rsplit("/", 1)[1]))
        else:
            self._reply(404, {"error": "not found"})

    do_GET = do_POST = do_PATCH = _handle  # noqa: N815 - http.server API


@pytest.fixture()
def fake_api():
    servers: list[FakeRunPod] = []

    def start(**kwargs) -> FakeRunPod:
        srv = FakeRunPod(**kwargs)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        servers.append(srv)
        return srv

    yield start
    for srv in servers:
        srv.shutdown()
        srv.server_close()


def run_deploy(*args: str, api: FakeRunPod | None = None, **extra: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "GITHUB_"))}
    env.update(
        NO_PROXY="127.0.0.1",
        no_proxy="127.0.0.1",
        GITHUB_REPOSITORY="Boson-Fan/Higgs-RunPod-Worker",
        RUNPOD_NETWORK_VOLUME_ID="vol-abc123",
    )
    if api is not None:
        env["RUNPOD_API_URL"] = api.url
    env.update(extra)
    return subprocess.run(["bash", str(DEPLOY), *args], env=env, capture_output=True, text=True, timeout=60)


def parse_dry_run(stdout: str) -> list[dict]:
    """Split the dry-run output into requests: method, URL, headers, JSON body."""
    blocks = re.split(r"^--- request \d+: .*$", stdout, flags=re.M)[1:]
    requests = []
    for block in blocks:
        block = block.split("\n--- end of dry run")[0].strip("\n")
        head, _, body = block.partition("\n\n")
        lines = head.splitlines()
        method, url = lines[0].split(" ", 1)
        headers = dict(line.split(": ", 1) for line in lines[1:])
        requests.append(
            {"method": method, "url": url, "headers": headers, "body": json.loads(body) if body.strip() else None}
        )
    return requests


def test_dry_run_prints_the_exact_requests_and_sends_nothing(fake_api) -> None:
    api = fake_api()
    result = run_deploy(
        "--dry-run",
        api=api,
        RUNPOD_API_KEY=API_KEY,
        RUNPOD_SECRETS="AWS_ACCESS_KEY_ID HF_TOKEN",
        RUNPOD_ENV_S3_BUCKET="my-audio-bucket",
        RUNPOD_ENV_AWS_SECRET_ACCESS_KEY=SECRET,
    )
    assert result.returncode == 0, result.stderr
    assert api.requests == [], "a dry run must not send anything"
    assert "deprecated" in result.stderr and "build-runpod-container.yml" in result.stderr
    for stream in (result.stdout, result.stderr):
        assert API_KEY not in stream and SECRET not in stream

    reqs = parse_dry_run(result.stdout)
    assert [(r["method"], r["url"]) for r in reqs] == [
        ("GET", f"{api.url}/templates?includeEndpointBoundTemplates=true"),
        ("POST", f"{api.url}/templates"),
        ("GET", f"{api.url}/endpoints"),
        ("POST", f"{api.url}/endpoints"),
    ]
    assert all(r["headers"]["Authorization"] == "Bearer $RUNPOD_API_KEY" for r in reqs)

    template = reqs[1]["body"]
    assert reqs[1]["headers"]["Content-Type"] == "application/json"
    assert template["imageName"] == "ghcr.io/boson-fan/higgs-runpod-worker:latest"
    assert template["name"] == CONFIG["template"]["name"]
    assert template["isServerless"] is True and template["volumeInGb"] == 0
    assert template["containerDiskInGb"] == CONFIG["template"]["containerDiskInGb"]
    env = template["env"]
    for key, value in CONFIG["template"]["env"].items():
        assert env[key] == value
    assert env["S3_BUCKET"] == "my-audio-bucket"
    assert env["AWS_ACCESS_KEY_ID"] == CONFIG["secretEnv"]["AWS_ACCESS_KEY_ID"]
    assert env["HF_TOKEN"] == "{{ RUNPOD_SECRET_higgs_hf_token }}"
    assert env["AWS_SECRET_ACCESS_KEY"] == "<redacted: from RUNPOD_ENV_AWS_SECRET_ACCESS_KEY>"
    assert not any(k.startswith("$") for k in template)

    endpoint = reqs[3]["body"]
    expected = {k: v for k, v in CONFIG["endpoint"].items() if not k.startswith("$")}
    for key, value in expected.items():
        assert endpoint[key] == value, key
    assert endpoint["networkVolumeId"] == "vol-abc123"
    assert endpoint["templateId"] == "<id of the created template>"
    assert "--- end of dry run: 4 request(s) shown, none sent" in result.stdout


def test_dry_run_with_known_ids_updates_with_patch(fake_api) -> None:
    result = run_deploy(
        "--dry-run",
        "--image",
        "ghcr.io/boson-fan/higgs-runpod-worker:0123abc",
        RUNPOD_TEMPLATE_ID="tpl42",
        RUNPOD_ENDPOINT_ID="ep42",
    )
    assert result.returncode == 0, result.stderr
    reqs = parse_dry_run(result.stdout)
    assert [(r["method"], r["url"].rsplit("/v1", 1)[1]) for r in reqs] == [
        ("PATCH", "/templates/tpl42"),
        ("PATCH", "/endpoints/ep42"),
    ]
    template, endpoint = reqs[0]["body"], reqs[1]["body"]
    assert template["imageName"] == "ghcr.io/boson-fan/higgs-runpod-worker:0123abc"
    # TemplateUpdateInput has no isServerless/category; EndpointUpdateInput no computeType.
    assert "isServerless" not in template and "category" not in template
    assert "computeType" not in endpoint
    assert endpoint["templateId"] == "tpl42"


def test_creates_template_then_endpoint_through_the_api(fake_api) -> None:
    api = fake_api()
    result = run_deploy(api=api, RUNPOD_API_KEY=API_KEY, RUNPOD_ENV_AWS_SECRET_ACCESS_KEY=SECRET)
    assert result.returncode == 0, result.stderr
    assert [(r["method"], r["path"]) for r in api.requests] == [
        ("GET", "/v1/templates?includeEndpointBoundTemplates=true"),
        ("POST", "/v1/templates"),
        ("GET", "/v1/endpoints"),
        ("POST", "/v1/endpoints"),
    ]
    assert all(r["auth"] == f"Bearer {API_KEY}" for r in api.requests)
    template, endpoint = api.requests[1]["body"], api.requests[3]["body"]
    assert api.requests[1]["content_type"] == "application/json"
    assert template["env"]["AWS_SECRET_ACCESS_KEY"] == SECRET  # the real value is sent...
    for stream in (result.stdout, result.stderr):  # ...but never printed
        assert SECRET not in stream and API_KEY not in stream
    assert endpoint["templateId"] == "tpl-new-1"
    assert endpoint["gpuTypeIds"] == CONFIG["endpoint"]["gpuTypeIds"]
    assert endpoint["networkVolumeId"] == "vol-abc123"
    assert "https://api.runpod.ai/v2/ep-new-1/run" in result.stdout


def test_updates_existing_template_and_endpoint_found_by_name(fake_api) -> None:
    api = fake_api(
        templates=[{"id": "other", "name": "something-else"}, {"id": "tpl-7", "name": CONFIG["template"]["name"]}],
        # RunPod shows FlashBoot endpoints with a " -fb" suffix.
        endpoints=[{"id": "ep-9", "name": CONFIG["endpoint"]["name"] + " -fb"}],
    )
    result = run_deploy(api=api, RUNPOD_API_KEY=API_KEY, RUNPOD_IMAGE="ghcr.io/boson-fan/higgs-runpod-worker:v1.2.3")
    assert result.returncode == 0, result.stderr
    assert [(r["method"], r["path"]) for r in api.requests] == [
        ("GET", "/v1/templates?includeEndpointBoundTemplates=true"),
        ("PATCH", "/v1/templates/tpl-7"),
        ("GET", "/v1/endpoints"),
        ("PATCH", "/v1/endpoints/ep-9"),
    ]
    assert api.requests[1]["body"]["imageName"] == "ghcr.io/boson-fan/higgs-runpod-worker:v1.2.3"
    assert "isServerless" not in api.requests[1]["body"]
    assert api.requests[3]["body"]["templateId"] == "tpl-7"


def test_api_errors_fail_loudly_without_leaking_the_key(fake_api) -> None:
    api = fake_api(fail_status=401)
    result = run_deploy(api=api, RUNPOD_API_KEY=API_KEY)
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr and "RUNPOD_API_KEY" in result.stderr
    assert len(api.requests) == 1
    assert API_KEY not in result.stdout + result.stderr


def test_refuses_to_run_without_key_or_with_the_old_build_flags(tmp_path: Path) -> None:
    result = run_deploy()
    assert result.returncode == 1 and "RUNPOD_API_KEY is not set" in result.stderr

    result = run_deploy("--build", RUNPOD_API_KEY=API_KEY)
    assert result.returncode == 1
    assert "deprecated" in result.stderr and "no longer supported" in result.stderr

    bad = json.loads(json.dumps(CONFIG))
    bad["endpoint"]["gpuIds"] = "ADA_24"  # the GraphQL name, not a REST field
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(bad))
    result = run_deploy("--dry-run", "--config", str(cfg))
    assert result.returncode == 1 and "unknown field(s) ['gpuIds']" in result.stderr

    result = run_deploy("--dry-run", RUNPOD_SECRETS="NOT_A_SECRET_NAME")
    assert result.returncode == 1 and "NOT_A_SECRET_NAME" in result.stderr


def test_never_builds_or_pushes_an_image() -> None:
    code = [line for line in DEPLOY.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(code)
    assert not re.search(r"\bdocker\s+(build|push|buildx)\b", text)
    assert not re.search(r"\bpodman\b", text)

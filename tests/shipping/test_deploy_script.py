"""deploy-runpod.sh: the requests it prints with --dry-run and the ones it really sends,
against a fake RunPod REST API v2 on 127.0.0.1 (tests/support/fake_runpod_rest.py,
written from RunPod's published v2 OpenAPI shapes; RunPod itself cannot be reached here)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.fake_registry import FakeRegistry
from tests.support.fake_runpod_rest import FakeRunPodRest, validation_errors

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy-runpod.sh"
CONFIG = json.loads((ROOT / "runpod-serverless-config.json").read_text())
API_KEY = "rpa_TESTKEY0123456789abcdefTESTKEY"
SECRET = "fake-secret-value-EXAMPLE-0123456789"
SHA = "0123456789abcdef0123456789abcdef01234567"
IMAGE = "ghcr.io/boson-fan/higgs-runpod-worker:sha-0123456"
REPOSITORY = "boson-fan/higgs-runpod-worker"
PINNED = "ghcr.io/boson-fan/higgs-runpod-worker:v1.2.3@sha256:" + "ab" * 32

pytestmark = pytest.mark.skipif(
    shutil.which("bash") is None or shutil.which("curl") is None, reason="bash and curl are required"
)


@pytest.fixture()
def fake_api():
    servers: list[FakeRunPodRest] = []

    def start(**kwargs) -> FakeRunPodRest:
        server = FakeRunPodRest(API_KEY, **kwargs).__enter__()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.__exit__(None, None, None)


@pytest.fixture(scope="module", autouse=True)
def registry():
    """The registry every real (not dry) run asks first: it holds the default sha tag and the
    pinned digest the tests deploy."""
    global REGISTRY
    with FakeRegistry({REPOSITORY: {"sha-0123456", "sha256:" + "ab" * 32}}) as REGISTRY:
        yield REGISTRY


REGISTRY: FakeRegistry | None = None


def run_deploy(
    *args: str, api: FakeRunPodRest | None = None, registry: FakeRegistry | None = None, **extra: str
) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("RUNPOD_", "GITHUB_", "DEPLOY_"))}
    env.update(
        NO_PROXY="127.0.0.1",
        no_proxy="127.0.0.1",
        GITHUB_REPOSITORY="Boson-Fan/Higgs-RunPod-Worker",
        GITHUB_SHA=SHA,
        RUNPOD_NETWORK_VOLUME_ID="vol-abc123",
    )
    if api is not None:
        env["RUNPOD_API_URL"] = api.url
    if registry or REGISTRY:
        env["DEPLOY_REGISTRY_URL"] = (registry or REGISTRY).url
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


VOLUME = {"id": "vol-abc123", "name": "higgs", "size": 50, "dataCenter": "EU-RO-1", "type": "STANDARD"}


def test_dry_run_prints_v2_requests_that_match_the_v2_schema_and_sends_nothing(fake_api) -> None:
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
    assert "not checked in a dry run" in result.stderr and "deprecated" not in result.stderr
    for stream in (result.stdout, result.stderr):
        assert API_KEY not in stream and SECRET not in stream

    reqs = parse_dry_run(result.stdout)
    assert [(r["method"], r["url"]) for r in reqs] == [
        ("GET", f"{api.url}/network-volumes/vol-abc123"),
        ("GET", f"{api.url}/templates"),
        ("POST", f"{api.url}/templates"),
        ("GET", f"{api.url}/serverless"),
        ("POST", f"{api.url}/serverless"),
    ]
    assert all(r["headers"]["Authorization"] == "Bearer $RUNPOD_API_KEY" for r in reqs)

    template = reqs[2]["body"]
    assert reqs[2]["headers"]["Content-Type"] == "application/json"
    assert validation_errors("CreateTemplateRequest", template) == []
    assert template["image"] == IMAGE  # the commit-sha tag the build workflow pushes, not :latest
    assert template["name"] == CONFIG["template"]["name"]
    assert template["serverless"] is True and template["startSsh"] is False and template["startJupyter"] is False
    assert template["disk"] == CONFIG["template"]["disk"]
    env = template["env"]
    for key, value in CONFIG["template"]["env"].items():
        assert env[key] == value
    assert env["S3_BUCKET"] == "my-audio-bucket"
    assert env["AWS_ACCESS_KEY_ID"] == CONFIG["secretEnv"]["AWS_ACCESS_KEY_ID"]
    assert env["HF_TOKEN"] == "{{ RUNPOD_SECRET_higgs_hf_token }}"
    assert env["AWS_SECRET_ACCESS_KEY"] == "<redacted: from RUNPOD_ENV_AWS_SECRET_ACCESS_KEY>"

    endpoint = reqs[4]["body"]
    assert validation_errors("CreateEndpointRequest", endpoint) == []
    for key, value in CONFIG["endpoint"].items():
        if key.startswith("$"):  # comments for the reader, never sent
            assert key not in endpoint
            continue
        assert endpoint[key] == value, key
    assert endpoint["type"] == "QUEUE" and endpoint["scaling"]["type"] == "QUEUE_DELAY"
    assert endpoint["networkVolumes"] == ["vol-abc123"]
    assert endpoint["templateId"] == "<id of the created template>"
    assert "--- end of dry run: 5 request(s) shown, none sent" in result.stdout


def test_dry_run_with_known_ids_updates_with_patch() -> None:
    result = run_deploy(
        "--dry-run",
        "--image",
        "ghcr.io/boson-fan/higgs-runpod-worker:0123abc",
        RUNPOD_TEMPLATE_ID="tpl42",
        RUNPOD_ENDPOINT_ID="ep42",
        RUNPOD_NETWORK_VOLUME_ID="",
    )
    assert result.returncode == 0, result.stderr
    assert "RUNPOD_NETWORK_VOLUME_ID is not set" in result.stderr
    reqs = parse_dry_run(result.stdout)
    assert [(r["method"], r["url"].split("/v2", 1)[1]) for r in reqs] == [
        ("PATCH", "/templates/tpl42"),
        ("PATCH", "/serverless/ep42"),
    ]
    template, endpoint = reqs[0]["body"], reqs[1]["body"]
    assert validation_errors("UpdateTemplateRequest", template) == []
    assert validation_errors("UpdateEndpointRequest", endpoint) == []
    assert template["image"] == "ghcr.io/boson-fan/higgs-runpod-worker:0123abc"
    assert "type" not in endpoint  # the routing type is fixed at create
    assert "name" not in endpoint  # an update never renames the endpoint
    assert endpoint["templateId"] == "tpl42" and "networkVolumes" not in endpoint
    # The CUDA floor, and an empty exact set that clears a list an earlier deploy left.
    assert endpoint["gpu"]["minCudaVersion"] == "12.8" and endpoint["gpu"]["allowedCudaVersions"] == []


def test_creates_template_then_endpoint_through_the_api(fake_api) -> None:
    api = fake_api(volumes=[VOLUME])
    result = run_deploy(api=api, RUNPOD_API_KEY=API_KEY, RUNPOD_ENV_AWS_SECRET_ACCESS_KEY=SECRET)
    assert result.returncode == 0, result.stderr
    assert api.calls() == [
        ("GET", "/v2/network-volumes/vol-abc123"),
        ("GET", "/v2/templates"),
        ("POST", "/v2/templates"),
        ("GET", "/v2/serverless"),
        ("POST", "/v2/serverless"),
    ]
    assert all(r["auth"] == f"Bearer {API_KEY}" for r in api.requests)
    assert "EU-RO-1" in result.stderr  # the volume's data center is reported
    template, endpoint = api.requests[2]["body"], api.requests[4]["body"]
    assert api.requests[2]["content_type"] == "application/json"
    assert template["env"]["AWS_SECRET_ACCESS_KEY"] == SECRET  # the real value is sent...
    for stream in (result.stdout, result.stderr):  # ...but never printed
        assert SECRET not in stream and API_KEY not in stream
    (tpl_id,) = api.templates
    (ep_id,) = api.endpoints
    assert endpoint["templateId"] == tpl_id
    assert endpoint["gpu"]["pools"] == CONFIG["endpoint"]["gpu"]["pools"]
    assert api.endpoints[ep_id]["networkVolumes"] == ["vol-abc123"]
    # The job URLs come from the endpoint's requestUrls, not built by the script.
    assert f"https://api.runpod.ai/v2/{ep_id}/run" in result.stdout
    assert f"https://api.runpod.ai/v2/{ep_id}/status/{{job_id}}" in result.stdout


NAME = CONFIG["endpoint"]["name"]
# Names that start with the endpoint's name but are other endpoints: a REST v1 FlashBoot
# endpoint (" -fb" suffix) and the load-balancing variant.
LOOKALIKES = [
    {"id": "ep-fb", "name": NAME + " -fb", "type": "QUEUE"},
    {"id": "ep-lb", "name": NAME + CONFIG["loadBalancer"]["nameSuffix"], "type": "LOAD_BALANCER"},
]


def test_updates_existing_template_and_endpoint_found_by_name(fake_api) -> None:
    api = fake_api(
        volumes=[VOLUME],
        templates=[
            {"id": "other", "name": "something-else", "image": "x/y:1"},
            {"id": "tpl-7", "name": CONFIG["template"]["name"], "image": "x/y:1"},
        ],
        endpoints=[*LOOKALIKES, {"id": "ep-9", "name": NAME, "type": "QUEUE"}],
    )
    pinned = PINNED
    result = run_deploy(api=api, RUNPOD_API_KEY=API_KEY, RUNPOD_IMAGE=pinned)
    assert result.returncode == 0, result.stderr
    assert api.calls()[1:] == [
        ("GET", "/v2/templates"),
        ("PATCH", "/v2/templates/tpl-7"),
        ("GET", "/v2/serverless"),
        ("PATCH", "/v2/serverless/ep-9"),
    ]
    assert api.templates["tpl-7"]["image"] == pinned
    patch = api.requests[4]["body"]
    assert patch["templateId"] == "tpl-7" and "type" not in patch and "name" not in patch
    assert validation_errors("UpdateEndpointRequest", patch) == []
    assert api.endpoints["ep-9"]["name"] == NAME
    assert [api.endpoints[e["id"]]["name"] for e in LOOKALIKES] == [e["name"] for e in LOOKALIKES]
    assert "https://api.runpod.ai/v2/ep-9/run" in result.stdout


def test_an_endpoint_whose_name_only_starts_with_the_name_is_left_alone(fake_api) -> None:
    # Issue 18: "NAME -fb" was taken for NAME, and the update renamed it to NAME.
    api = fake_api(volumes=[VOLUME], endpoints=LOOKALIKES)
    result = run_deploy(api=api, RUNPOD_API_KEY=API_KEY)
    assert result.returncode == 0, result.stderr
    assert api.calls()[-2:] == [("GET", "/v2/serverless"), ("POST", "/v2/serverless")]
    assert not [c for c in api.calls() if c[0] == "PATCH" and c[1].startswith("/v2/serverless")]
    assert [api.endpoints[e["id"]]["name"] for e in LOOKALIKES] == [e["name"] for e in LOOKALIKES]
    (new,) = set(api.endpoints) - {e["id"] for e in LOOKALIKES}
    assert api.endpoints[new]["name"] == NAME
    assert f'no endpoint is named exactly "{NAME}"' in result.stderr
    assert f'ep-fb ("{NAME} -fb")' in result.stderr and "RUNPOD_ENDPOINT_ID" in result.stderr


def test_load_balancing_variant(fake_api) -> None:
    api = fake_api(volumes=[VOLUME])
    result = run_deploy("--type", "lb", api=api, RUNPOD_API_KEY=API_KEY)
    assert result.returncode == 0, result.stderr
    (tpl,) = api.templates.values()
    (ep,) = api.endpoints.values()
    lb = CONFIG["loadBalancer"]
    assert tpl["name"] == CONFIG["template"]["name"] + lb["nameSuffix"]
    assert ep["name"] == CONFIG["endpoint"]["name"] + lb["nameSuffix"]
    assert tpl["env"]["WORKER_MODE"] == "http" and tpl["env"]["PORT"] == tpl["env"]["PORT_HEALTH"] == "8000"
    assert tpl["env"]["MODEL_REPO"] == CONFIG["template"]["env"]["MODEL_REPO"]  # merged, not replaced
    assert tpl["ports"] == ["8000/http"]
    assert ep["type"] == "LOAD_BALANCER" and ep["scaling"]["type"] == "REQUEST_COUNT"
    assert ep["gpu"] == CONFIG["endpoint"]["gpu"]
    assert f"https://{ep['id']}.api.runpod.ai" in result.stdout

    # The same name but the other routing type: v2 cannot change it, so the script stops.
    api2 = fake_api(volumes=[VOLUME], endpoints=[{"id": "ep-q", "name": ep["name"], "type": "QUEUE"}])
    result = run_deploy("--type=lb", api=api2, RUNPOD_API_KEY=API_KEY)
    assert result.returncode == 1 and "cannot be changed" in result.stderr
    assert ("PATCH", "/v2/serverless/ep-q") not in api2.calls()


def test_private_image_registry_credential_is_created_and_used(fake_api) -> None:
    api = fake_api(volumes=[VOLUME])
    password = "ghp-like-but-not-a-token-EXAMPLE"
    creds = {"RUNPOD_REGISTRY_USERNAME": "boson-bot", "RUNPOD_REGISTRY_PASSWORD": password}
    dry = run_deploy("--dry-run", **creds)
    assert dry.returncode == 0, dry.stderr
    shown = parse_dry_run(dry.stdout)
    assert [(r["method"], r["url"].split("/v2", 1)[1]) for r in shown][:2] == [
        ("GET", "/registries"),
        ("POST", "/registries"),
    ]
    assert shown[1]["body"]["password"] == "<redacted: from RUNPOD_REGISTRY_PASSWORD>"
    assert password not in dry.stdout + dry.stderr

    result = run_deploy(api=api, RUNPOD_API_KEY=API_KEY, **creds)
    assert result.returncode == 0, result.stderr
    assert api.calls()[:2] == [("GET", "/v2/registries"), ("POST", "/v2/registries")]
    assert api.requests[1]["body"] == {"name": "ghcr-boson-fan", "username": "boson-bot", "password": password}
    (reg_id,) = api.registries
    assert next(iter(api.templates.values()))["registry"] == reg_id
    assert password not in result.stdout + result.stderr

    again = run_deploy(api=api, RUNPOD_API_KEY=API_KEY, **creds)  # found by name: not created twice
    assert again.returncode == 0, again.stderr
    assert len(api.registries) == 1


def test_structured_errors_fail_loudly_without_leaking_the_key(fake_api, tmp_path: Path) -> None:
    api = fake_api(volumes=[VOLUME])
    result = run_deploy(api=api, RUNPOD_API_KEY="rpa_WRONGKEY0123456789abcdefWRONG")
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr and "RUNPOD_API_KEY" in result.stderr
    assert "Unauthorized: The bearer token is missing" in result.stderr  # the v2 problem's title + detail
    assert len(api.requests) == 1
    assert "rpa_WRONGKEY" not in result.stdout + result.stderr

    # A body v2 rejects (gpu.count 0): the 400 problem's validation errors are shown.
    bad = json.loads(json.dumps(CONFIG))
    bad["endpoint"]["gpu"]["count"] = 0
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(bad))
    result = run_deploy("--config", str(cfg), api=api, RUNPOD_API_KEY=API_KEY)
    assert result.returncode == 1
    assert "HTTP 400" in result.stderr and "Bad Request" in result.stderr and "gpu/count" in result.stderr

    # An unknown network volume stops the deploy before anything is created.
    result = run_deploy(api=api, RUNPOD_API_KEY=API_KEY, RUNPOD_NETWORK_VOLUME_ID="vol-missing")
    assert result.returncode == 1 and "HTTP 404" in result.stderr and "vol-missing" in result.stderr


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/boson-fan/higgs-runpod-worker:sha-0123456",
        "ghcr.io/boson-fan/higgs-runpod-worker:1.2.3@sha256:" + "0f" * 32,
        "ghcr.io/boson-fan/higgs-runpod-worker@sha256:" + "0f" * 32,
        "registry.example.com:5000/team/worker:v1",
    ],
)
def test_image_references_runpod_recommends_are_accepted(image: str) -> None:
    result = run_deploy("--dry-run", "--image", image)
    assert result.returncode == 0, result.stderr
    assert parse_dry_run(result.stdout)[2]["body"]["image"] == image
    assert "moving tag" not in result.stderr


@pytest.mark.parametrize(
    "image",
    [
        "ghcr.io/Boson-Fan/worker:1",  # upper case
        "ghcr.io/boson-fan/worker@sha256:abc",  # short digest
        "ghcr.io/boson-fan/worker:1@sha512:" + "0f" * 32,
        "worker:1",  # no registry
        "ghcr.io/OWNER/REPO:sha-COMMIT7",
    ],
)
def test_bad_image_references_are_refused(image: str) -> None:
    result = run_deploy("--dry-run", "--image", image)
    assert result.returncode == 1 and "ERROR" in result.stderr


def test_default_image_is_the_commit_sha_tag_and_latest_is_warned_about() -> None:
    head = subprocess.run(["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True)
    if head.returncode == 0:  # without GITHUB_SHA the checkout's commit is used
        result = run_deploy("--dry-run", GITHUB_SHA="")
        assert result.returncode == 0, result.stderr
        image = parse_dry_run(result.stdout)[2]["body"]["image"]
        assert image == f"ghcr.io/boson-fan/higgs-runpod-worker:sha-{head.stdout.strip()[:7]}"
    result = run_deploy("--dry-run", "--image", "ghcr.io/boson-fan/higgs-runpod-worker:latest")
    assert result.returncode == 0 and "moving tag" in result.stderr


def test_refuses_to_run_without_key_or_with_the_old_build_flags(tmp_path: Path) -> None:
    result = run_deploy()
    assert result.returncode == 1 and "RUNPOD_API_KEY is not set" in result.stderr

    result = run_deploy("--build", RUNPOD_API_KEY=API_KEY)
    assert result.returncode == 1
    assert "deprecated" in result.stderr and "no longer supported" in result.stderr

    bad = json.loads(json.dumps(CONFIG))
    bad["endpoint"]["gpuTypeIds"] = ["NVIDIA GeForce RTX 4090"]  # a REST v1 field
    cfg = tmp_path / "config.json"
    cfg.write_text(json.dumps(bad))
    result = run_deploy("--dry-run", "--config", str(cfg))
    assert result.returncode == 1 and "unknown field(s) ['gpuTypeIds']" in result.stderr

    result = run_deploy("--dry-run", RUNPOD_SECRETS="NOT_A_SECRET_NAME")
    assert result.returncode == 1 and "NOT_A_SECRET_NAME" in result.stderr

    result = run_deploy("--dry-run", "--type", "serverful")
    assert result.returncode == 1 and "queue, lb" in result.stderr


def test_never_builds_or_pushes_an_image() -> None:
    code = [line for line in DEPLOY.read_text().splitlines() if not line.lstrip().startswith("#")]
    text = "\n".join(code)
    assert not re.search(r"\bdocker\s+(build|push|buildx)\b", text)
    assert not re.search(r"\bpodman\b", text)
    assert "rest.runpod.io" not in DEPLOY.read_text()  # REST v1 is retired


# --------------------------------------------------------------------------- the image exists?
MISSING = "ghcr.io/boson-fan/higgs-runpod-worker:sha-fedcba9"


def test_a_missing_image_tag_is_refused_before_anything_is_created(fake_api) -> None:
    api = fake_api(volumes=[VOLUME])
    with FakeRegistry({REPOSITORY: {"sha-0123456"}}) as registry:
        result = run_deploy(api=api, registry=registry, RUNPOD_API_KEY=API_KEY, RUNPOD_IMAGE=MISSING)
    assert result.returncode == 1, result.stderr
    assert api.calls() == []  # no template, no endpoint, not even a look-up
    err = result.stderr
    assert f"image {MISSING} cannot be pulled" in err and "HTTP 404" in err and "Nothing was created" in err
    # how to fix it: the fork's Actions, the build, or another image
    assert "enable workflows" in err and "fork" in err and "--image" in err
    # the registry was asked the OCI way: a 401 challenge, an anonymous pull token, the manifest
    assert registry.calls() == [
        ("HEAD", "/v2/boson-fan/higgs-runpod-worker/manifests/sha-fedcba9"),
        ("GET", "/token"),
        ("HEAD", "/v2/boson-fan/higgs-runpod-worker/manifests/sha-fedcba9"),
    ]
    assert registry.requests[1]["auth"] is None  # anonymous for a public package
    assert "application/vnd.oci.image.index.v1+json" in registry.requests[2]["accept"]


def test_an_existing_tag_or_digest_is_found_with_the_accept_headers_ghcr_needs(fake_api) -> None:
    # ghcr.io keeps multi-arch images as OCI indexes and answers 404 to a client that does not
    # accept one; the Docker manifest types cover other registries.
    for media_type in (
        "application/vnd.oci.image.index.v1+json",
        "application/vnd.docker.distribution.manifest.v2+json",
    ):
        api = fake_api(volumes=[VOLUME])
        with FakeRegistry({REPOSITORY: {"sha-0123456", "sha256:" + "ab" * 32}}, media_type=media_type) as registry:
            for image in (IMAGE, PINNED):
                result = run_deploy(api=api, registry=registry, RUNPOD_API_KEY=API_KEY, RUNPOD_IMAGE=image)
                assert result.returncode == 0, result.stderr
                assert f"image {image}: found" in result.stderr
        assert ("HEAD", "/v2/boson-fan/higgs-runpod-worker/manifests/sha256:" + "ab" * 32) in registry.calls()


def test_a_private_image_is_checked_with_the_registry_credential(fake_api) -> None:
    api = fake_api(volumes=[VOLUME])
    creds = {"RUNPOD_REGISTRY_USERNAME": "boson-fan", "RUNPOD_REGISTRY_PASSWORD": "not-a-real-token-EXAMPLE"}
    with FakeRegistry(
        {REPOSITORY: {"sha-0123456"}}, private={REPOSITORY: ("boson-fan", "not-a-real-token-EXAMPLE")}
    ) as reg:
        denied = run_deploy(api=api, registry=reg, RUNPOD_API_KEY=API_KEY)  # anonymous: refused
        assert denied.returncode == 1 and api.calls() == []
        assert "refused a pull token anonymously (HTTP 403)" in denied.stderr
        assert "RUNPOD_REGISTRY_USERNAME" in denied.stderr and "public" in denied.stderr
        allowed = run_deploy(api=api, registry=reg, RUNPOD_API_KEY=API_KEY, **creds)
        assert allowed.returncode == 0, allowed.stderr
        assert reg.requests[-2]["auth"].startswith("Basic ")  # the token was asked with the credential
    assert creds["RUNPOD_REGISTRY_PASSWORD"] not in allowed.stdout + allowed.stderr
    assert ("POST", "/v2/serverless") in api.calls()


def test_an_unreachable_registry_warns_and_skip_image_check_skips(fake_api) -> None:
    api = fake_api(volumes=[VOLUME])
    with FakeRegistry({}) as gone:
        url = gone.url  # a port nothing listens on once it is closed
    result = run_deploy(api=api, RUNPOD_API_KEY=API_KEY, DEPLOY_REGISTRY_URL=url)
    assert result.returncode == 0, result.stderr
    assert "WARNING: could not check that image" in result.stderr
    with FakeRegistry({}) as registry:
        skipped = run_deploy("--skip-image-check", api=api, registry=registry, RUNPOD_API_KEY=API_KEY)
    assert skipped.returncode == 0 and registry.calls() == [] and "not checked (--skip-image-check)" in skipped.stderr


def test_a_normal_run_prints_no_deprecation_notice(fake_api) -> None:
    api = fake_api(volumes=[VOLUME])
    for result in (run_deploy("--dry-run"), run_deploy(api=api, RUNPOD_API_KEY=API_KEY)):
        assert result.returncode == 0, result.stderr
        assert "NOTICE" not in result.stderr and "deprecated" not in result.stderr.lower()

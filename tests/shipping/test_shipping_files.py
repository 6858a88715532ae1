"""The shipping files: endpoint config, Hub files, Dockerfile, .dockerignore,
workflows and the guide, checked for the keys RunPod and GitHub need, for
agreement with each other, and for secret-looking values."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest
import yaml

from higgs_worker.contract.schema import KNOWN_FIELDS
from tests.conftest import BUCKET, FAKE_AWS

ROOT = Path(__file__).resolve().parents[2]
CONFIG_PATH = ROOT / "runpod-serverless-config.json"
HUB_PATH = ROOT / ".runpod" / "hub.json"
HUB_TESTS_PATH = ROOT / ".runpod" / "tests.json"
DOCKERFILE = ROOT / "Dockerfile.runpod.ultra"  # the image's source: CI builds it
HUB_DOCKERFILE = ROOT / ".runpod" / "Dockerfile"  # its byte-identical copy, which RunPod Hub builds
GUIDE = ROOT / "docs" / "runpod-serverless-guide.md"
BUILD_WF = ROOT / ".github" / "workflows" / "build-runpod-container.yml"
TESTS_WF = ROOT / ".github" / "workflows" / "tests.yml"

# Up to three pools in priority order (RunPod: "GPU priority and worker distribution"),
# none below the 24 GB the model needs.
REQUIRED_POOLS = ["AMPERE_24", "AMPERE_48", "ADA_24"]
# Request fields of RunPod's REST API v2 (api.runpod.io/v2 openapi.json:
# CreateTemplateRequest, CreateEndpointRequest; both include ContainerConfig).
CONTAINER_FIELDS = {"args", "disk", "env", "image", "ports", "registry"}
TEMPLATE_FIELDS = CONTAINER_FIELDS | {
    "name",
    "allowedCudaVersions",
    "category",
    "mounts",
    "public",
    "serverless",
    "startJupyter",
    "startSsh",
}
ENDPOINT_FIELDS = CONTAINER_FIELDS | {
    "cpu",
    "dataCenterIds",
    "flashboot",
    "gpu",
    "name",
    "networkVolumes",
    "scaling",
    "templateId",
    "timeout",
    "type",
    "workers",
}
# NVIDIA's CUDA releases (major.minor), oldest first, as RunPod hosts report them. Add each
# new release here: the Hub files list every release from the floor on (see below).
CUDA_RELEASES = ["11.8", "12.0", "12.1", "12.2", "12.3", "12.4", "12.5", "12.6", "12.8", "12.9", "13.0", "13.1"]
# Job input fields of the contract (shared DESIGN.md, "Job input"), as the worker accepts them.
JOB_FIELDS = set(KNOWN_FIELDS)
# Worker environment of the contract, plus bootstrap's and the runpod SDK's own.
WORKER_ENV = {
    "MODEL_REPO",
    "MODEL_REVISION",
    "MODEL_PATH",
    "TOKENIZER_REPO",
    "TOKENIZER_REVISION",
    "TOKENIZER_PATH",
    "HF_TOKEN",
    "HF_ENDPOINT",
    "HF_HOME",
    "PRELOAD_MODELS",
    "MAX_CONCURRENCY",
    "KV_CACHE_MEMORY_FRACTION",
    "VOICES_DIR",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
    "AWS_SESSION_TOKEN",
    "AWS_DEFAULT_REGION",
    "S3_BUCKET",
    "S3_ENDPOINT_URL",
    "S3_PREFIX",
    "S3_PRESIGN_SECONDS",
    "BUCKET_ENDPOINT_URL",
    "BUCKET_ACCESS_KEY_ID",
    "BUCKET_SECRET_ACCESS_KEY",
    "MAX_TEXT_CHARS",
    "INLINE_MAX_BYTES",
    "MAX_REFERENCE_SECONDS",
    "MAX_REFERENCE_BYTES",
    "ALLOW_PRIVATE_URLS",
    "DEVICE",
    "DTYPE",
    "RUNPOD_LOG_LEVEL",
    "TORCH_INDEX_URL",
    "RUNPOD_INIT_TIMEOUT",
    "RUNPOD_MIN_CUDA_VERSION",
    "WORKER_MODE",
    "PORT",
    "PORT_HEALTH",
}
CONTRACT_DEFAULTS = {
    "MODEL_REPO": "bosonai/higgs-audio-v2-generation-3B-base",
    "MODEL_PATH": "/runpod-volume/bosonai/higgs-audio-v2-generation-3B-base",
    "TOKENIZER_REPO": "bosonai/higgs-audio-v2-tokenizer",
    "TOKENIZER_PATH": "/runpod-volume/bosonai/higgs-audio-v2-tokenizer",
    "VOICES_DIR": "/runpod-volume/bosonai/voices",
    "PRELOAD_MODELS": "false",
    "S3_PREFIX": "higgs-audio/",
}
SECRET_PATTERNS = [
    re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
    re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}"),  # Hugging Face token
    re.compile(r"(?<![A-Za-z0-9])rpa_[A-Za-z0-9]{20,}"),  # RunPod API key
    re.compile(r"gh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub token
    re.compile(r"-----BEGIN [A-Z ]*PRIVATE KEY-----"),
    re.compile(r"(?i)aws_secret_access_key\s*[=:]\s*['\"]?[A-Za-z0-9/+]{40}"),
]
SECRET_NAME = re.compile(r"(^|_)(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?)(_|$)", re.I)
SECRET_REF = re.compile(r"\{\{\s*RUNPOD_SECRET_\w+\s*\}\}")


def load(path: Path) -> dict:
    return json.loads(path.read_text())


def cuda_of_torch_build() -> str:
    """CUDA version of the torch wheel bootstrap installs (PyPI's default build)."""
    pins = dict(
        line.split("==", 1)
        for line in (ROOT / "requirements-runtime.txt").read_text().splitlines()
        if "==" in line and not line.startswith("#")
    )
    version = pins["torch"].split("+")[0]
    # PyPI's default CUDA build per torch minor release (pytorch.org release matrix).
    default_cuda = {"2.7": "12.6", "2.8": "12.8", "2.9": "12.8"}
    minor = ".".join(version.split(".")[:2])
    assert minor in default_cuda, f"torch {version}: add its PyPI CUDA build to this table"
    return default_cuda[minor]


# --------------------------------------------------------------------------- config
def test_endpoint_config_has_what_runpod_needs() -> None:
    cfg = load(CONFIG_PATH)
    tpl, ep = cfg["template"], cfg["endpoint"]
    assert {k for k in tpl if not k.startswith("$")} <= TEMPLATE_FIELDS
    assert {k for k in ep if not k.startswith("$")} <= ENDPOINT_FIELDS
    # Deploy the immutable commit tag the build workflow pushes, not :latest.
    assert re.fullmatch(r"ghcr\.io/OWNER/REPO:sha-COMMIT7", cfg["image"])
    assert tpl["serverless"] is True and tpl["startSsh"] is False and tpl["startJupyter"] is False
    assert 20 <= tpl["disk"] <= 100
    assert ep["type"] == "QUEUE" and ep["scaling"]["type"] == "QUEUE_DELAY"
    assert ep["flashboot"] in ("FLASHBOOT", "PRIORITY_FLASHBOOT")
    assert ep["gpu"]["count"] == 1
    assert 0 <= ep["workers"]["min"] <= ep["workers"]["max"]
    assert 5 <= ep["workers"]["idleTimeout"] <= 3600
    # The first job may download ~12 GB of model before it generates anything.
    assert ep["timeout"] >= 10 * 60 * 1000
    assert cfg["networkVolume"]["mountPath"] == "/runpod-volume"
    assert int(tpl["env"]["RUNPOD_INIT_TIMEOUT"]) >= 900  # first start installs the runtime
    # bootstrap.sh derives its lock wait from RUNPOD_INIT_TIMEOUT; a fixed one would drift.
    assert "BOOTSTRAP_LOCK_TIMEOUT" not in tpl["env"]


def test_load_balancer_variant_fits_the_http_worker_mode() -> None:
    cfg = load(CONFIG_PATH)
    lb = cfg["loadBalancer"]
    assert set(lb["template"]) - {"$comment"} <= TEMPLATE_FIELDS
    assert set(lb["endpoint"]) - {"$comment"} <= ENDPOINT_FIELDS
    assert lb["endpoint"]["type"] == "LOAD_BALANCER"
    assert lb["endpoint"]["scaling"]["type"] == "REQUEST_COUNT"  # RunPod requires it for LB endpoints
    env = lb["template"]["env"]
    assert env["WORKER_MODE"] == "http" and set(env) <= WORKER_ENV
    assert lb["template"]["ports"] == [f"{env['PORT']}/http"]
    assert env["PORT_HEALTH"] == env["PORT"]
    assert lb["nameSuffix"]


def test_gpu_pools_fit_the_model_and_are_a_short_priority_list() -> None:
    cfg = load(CONFIG_PATH)
    pools = {k: v for k, v in cfg["gpuPools"].items() if not k.startswith("$")}
    assert list(pools) == REQUIRED_POOLS == cfg["endpoint"]["gpu"]["pools"]
    assert len(REQUIRED_POOLS) <= 3  # RunPod: up to three, in priority order
    flattened = [gpu for types in pools.values() for gpu in types]
    assert len(set(flattened)) == len(flattened)
    assert not set(REQUIRED_POOLS) & {"AMPERE_16"}  # 16 GB: the bf16 model alone is 11-12 GB


def test_the_pools_are_the_cost_estimates_cheapest_and_every_card_holds_the_templates_jobs() -> None:
    """The pool order comes from benchmarks/gpu_cost.py (docs/costs.md): the first pool is the
    cheapest per audio-second even by its dearest card, and every card the pools may hand out
    plans the template's MAX_CONCURRENCY slots that fit (the memory plan with the real model's shapes)."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    try:
        import gpu_cost
    finally:
        sys.path.remove(str(ROOT / "benchmarks"))
    cfg = load(CONFIG_PATH)
    jobs = int(cfg["template"]["env"]["MAX_CONCURRENCY"])
    assert gpu_cost.TEMPLATE_CONCURRENCY == jobs
    rows = gpu_cost.estimate(jobs)
    ranking = [pool for pool, _ in gpu_cost.pools_by_dearest_card(rows)]
    assert ranking[0] == REQUIRED_POOLS[0]
    chosen = [pool for pool in ranking if pool in REQUIRED_POOLS]
    assert chosen[:2] == REQUIRED_POOLS[:2], chosen  # the 48 GB Ampere pool before ADA_24 (its L4)
    by_name = {card.name.split(" (")[0]: (card.pool, plan) for _, card, plan, *_ in rows}
    for pool, names in cfg["gpuPools"].items():
        if pool.startswith("$"):
            continue
        for name in names:
            short = name.removeprefix("NVIDIA ").removeprefix("GeForce ")
            assert short in by_name, f"{name} has no cost estimate in benchmarks/gpu_cost.py"
            card_pool, plan = by_name[short]
            assert card_pool == pool and plan.fits and plan.slots == jobs, (name, plan.describe())


def test_the_cuda_floor_admits_hosts_on_every_newer_cuda() -> None:
    """REST v2 matches ``allowedCudaVersions`` exactly ("Matching is exact"), so a list
    shuts out hosts on a CUDA newer than its last entry; ``minCudaVersion`` is the open
    floor (CreateEndpointGpuConfig, api.runpod.io/v2 openapi.json). Issue 18."""
    cuda = cuda_of_torch_build()
    cfg = load(CONFIG_PATH)
    for gpu in (cfg["endpoint"]["gpu"], {**cfg["endpoint"]["gpu"], **cfg["loadBalancer"]["endpoint"].get("gpu", {})}):
        assert gpu["minCudaVersion"] == cuda
        assert gpu["allowedCudaVersions"] == []  # "an explicit [] states no constraint": clears an older list
    # Templates have no floor field; theirs is empty too (an update clears an older list).
    assert cfg["template"]["allowedCudaVersions"] == []
    assert cfg["template"]["env"]["RUNPOD_MIN_CUDA_VERSION"] == cuda
    assert cfg["template"]["env"]["TORCH_INDEX_URL"] == ""  # PyPI's build, the one checked above
    # RunPod's Hub guide documents only the exact list for hub.json and tests.json: every
    # release from the floor on.
    newer = CUDA_RELEASES[CUDA_RELEASES.index(cuda) :]
    assert load(HUB_PATH)["config"]["allowedCudaVersions"] == newer
    assert load(HUB_TESTS_PATH)["config"]["allowedCudaVersions"] == newer


def bootstrap_settings() -> set[str]:
    """The BOOTSTRAP_* variables: bootstrap.sh runs higgs_worker/bootstrap.py, which reads the rest."""
    sources = (ROOT / "bootstrap.sh", ROOT / "higgs_worker" / "bootstrap.py")
    return {var for src in sources for var in re.findall(r"\bBOOTSTRAP_[A-Z_]+\b", src.read_text())}


def test_worker_env_follows_the_contract() -> None:
    cfg = load(CONFIG_PATH)
    env = cfg["template"]["env"]
    assert set(env) <= WORKER_ENV | bootstrap_settings()
    for key, value in CONTRACT_DEFAULTS.items():
        assert env[key] == value, key
    assert all(isinstance(v, str) for v in env.values()), "RunPod env values are strings"
    secret_env = {k: v for k, v in cfg["secretEnv"].items() if not k.startswith("$")}
    assert set(secret_env) <= WORKER_ENV
    assert all(SECRET_REF.fullmatch(v) for v in secret_env.values())


# --------------------------------------------------------------------------- Hub
def test_hub_json_is_complete_and_agrees_with_the_config() -> None:
    hub, cfg = load(HUB_PATH), load(CONFIG_PATH)
    for key in ("title", "description", "type", "category", "config"):
        assert hub[key], key
    assert hub["type"] == "serverless" and hub["category"] == "audio"
    conf = hub["config"]
    assert conf["runsOn"] == "GPU" and conf["gpuCount"] == 1
    assert conf["containerDiskInGb"] == cfg["template"]["disk"]
    assert conf["gpuIds"].split(",") == REQUIRED_POOLS
    for entry in conf["env"]:
        assert set(entry) in ({"key", "value"}, {"key", "input"}), entry
        assert entry["key"] in WORKER_ENV, entry["key"]
        if "input" in entry:
            assert {"name", "type", "description"} <= set(entry["input"])
            assert entry["input"]["type"] in {"string", "number", "boolean", "huggingface"}
            if entry["input"]["type"] == "huggingface":
                assert entry["input"]["default"] == cfg["template"]["env"][entry["key"]]
    for preset in conf.get("presets", []):
        assert set(preset["defaults"]) <= {e["key"] for e in conf["env"]}


def test_hub_tests_json_sends_valid_jobs() -> None:
    hub_tests, cfg = load(HUB_TESTS_PATH), load(CONFIG_PATH)
    assert hub_tests["tests"]
    for case in hub_tests["tests"]:
        assert case["name"] and isinstance(case["input"], dict)
        assert set(case["input"]) <= JOB_FIELDS, set(case["input"]) - JOB_FIELDS
        assert case["input"]["text"].strip()
        assert isinstance(case["timeout"], int) and case["timeout"] >= 60_000
    # The first Hub test runs on a fresh worker: runtime install + model download.
    assert hub_tests["tests"][0]["timeout"] >= 15 * 60 * 1000
    assert hub_tests["config"]["gpuTypeId"] in cfg["gpuPools"][REQUIRED_POOLS[0]]
    assert hub_tests["config"]["gpuCount"] == 1


def test_ci_builds_dockerfile_runpod_ultra_and_the_hub_builds_its_identical_copy() -> None:
    """CI builds Dockerfile.runpod.ultra. RunPod Hub reads Dockerfile from .runpod/ before the
    repository root ("This directory takes precedence over the root directory, allowing you to
    override common files like Dockerfile": docs.runpod.io/hub/publishing-guide), so
    .runpod/Dockerfile is a plain copy (BuildKit does not follow a symlinked Dockerfile,
    moby/buildkit#2119), kept byte-identical here; no root Dockerfile, which the Hub would
    otherwise be the one to build."""
    dockerfiles = sorted(
        p.relative_to(ROOT).as_posix()
        for p in ROOT.rglob("*")
        if p.is_file()
        and (p.name == "Dockerfile" or p.name.startswith("Dockerfile.") or p.name.endswith(".Dockerfile"))
        and not {".git", ".venv", "node_modules"} & set(p.relative_to(ROOT).parts)
    )
    assert dockerfiles == [".runpod/Dockerfile", "Dockerfile.runpod.ultra"]
    assert not HUB_DOCKERFILE.is_symlink()
    assert HUB_DOCKERFILE.read_bytes() == DOCKERFILE.read_bytes(), (
        ".runpod/Dockerfile differs from Dockerfile.runpod.ultra: run `cp Dockerfile.runpod.ultra .runpod/Dockerfile`"
    )
    wf = yaml.safe_load(BUILD_WF.read_text())
    builds = [s for s in wf["jobs"]["image"]["steps"] if str(s.get("uses", "")).startswith("docker/build-push-action")]
    assert len(builds) == 1
    assert builds[0]["with"]["file"] == "Dockerfile.runpod.ultra" and builds[0]["with"]["context"] == "."


# --------------------------------------------------------------------------- secrets
def shipping_files() -> list[Path]:
    files = [
        CONFIG_PATH,
        HUB_PATH,
        HUB_TESTS_PATH,
        DOCKERFILE,
        HUB_DOCKERFILE,
        ROOT / ".dockerignore",
        GUIDE,
        ROOT / "bootstrap.sh",
        ROOT / "higgs_worker" / "bootstrap.py",
        ROOT / "deploy-runpod.sh",
        ROOT / ".ci" / "shipping-checks.sh",
    ]
    files += sorted((ROOT / ".github" / "workflows").glob("*.yml"))
    return files


@pytest.mark.parametrize("path", shipping_files(), ids=lambda p: str(p.relative_to(ROOT)))
def test_no_secret_looking_values(path: Path) -> None:
    text = path.read_text()
    for pattern in SECRET_PATTERNS:
        match = pattern.search(text)
        assert match is None, f"{path.name}: secret-looking value {match.group(0)[:12]}..."


def _env_pairs(obj):
    """(name, value) for every env entry in RunPod JSON: maps and key/value lists."""
    if isinstance(obj, dict):
        if set(obj) >= {"key", "value"} and isinstance(obj["key"], str):
            yield obj["key"], obj["value"]
        for key, value in obj.items():
            if key == "env" and isinstance(value, dict):
                yield from value.items()
            else:
                yield from _env_pairs(value)
    elif isinstance(obj, list):
        for item in obj:
            yield from _env_pairs(item)


@pytest.mark.parametrize("path", [CONFIG_PATH, HUB_PATH, HUB_TESTS_PATH], ids=lambda p: p.name)
def test_secret_env_entries_hold_only_placeholders(path: Path) -> None:
    data = load(path)
    pairs = list(_env_pairs(data))
    if path == CONFIG_PATH:
        pairs += [(k, v) for k, v in data["secretEnv"].items() if not k.startswith("$")]
    assert pairs
    for name, value in pairs:
        if SECRET_NAME.search(name):
            assert value in ("", None) or SECRET_REF.fullmatch(str(value)), f"{name} holds a value"
    if path == HUB_PATH:
        for entry in data["config"]["env"]:
            if SECRET_NAME.search(entry["key"]) and "input" in entry:
                assert entry["input"]["default"] == ""


# --------------------------------------------------------------------------- image
def dockerfile_instructions() -> list[tuple[str, str]]:
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    out = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            op, _, rest = line.partition(" ")
            out.append((op.upper(), rest.strip()))
    return out


def test_dockerfile_is_thin_and_starts_bootstrap() -> None:
    ins = dockerfile_instructions()
    froms = [rest for op, rest in ins if op == "FROM"]
    assert len(froms) == 1 and re.fullmatch(r"python:3\.11(\.\d+)?-slim(-\w+)?", froms[0])
    runs = " ".join(rest for op, rest in ins if op == "RUN").lower()
    for heavy in ("torch", "transformers", "pip install", "huggingface", "snapshot_download"):
        assert heavy not in runs, heavy
    # apt: only the C/C++ compiler that triton and inductor need (the compiled decode step)
    for packages in re.findall(r"apt-get install ([^&]*)", runs):
        names = {p.split("=")[0] for p in packages.split() if not p.startswith("-")}
        assert names == {"gcc", "g++"}, names
    entry = [rest for op, rest in ins if op == "ENTRYPOINT"]
    assert len(entry) == 1 and json.loads(entry[0]) == ["/app/bootstrap.sh"]  # exec form
    cmd = [rest for op, rest in ins if op == "CMD"]
    assert cmd and isinstance(json.loads(cmd[-1]), list)
    for op, rest in ins:
        if op in ("ENV", "ARG"):
            names = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)=", rest) or [rest.split()[0]]
            assert not any(SECRET_NAME.search(n) for n in names), rest


def test_dockerignore_allows_exactly_what_the_dockerfile_copies() -> None:
    lines = [line.strip() for line in (ROOT / ".dockerignore").read_text().splitlines()]
    rules = [line for line in lines if line and not line.startswith("#")]
    assert rules[0] == "*", "allow-list .dockerignore: start by excluding everything"
    allowed = {r[1:].rstrip("/") for r in rules if r.startswith("!")}
    sources = []
    for op, rest in dockerfile_instructions():
        if op == "COPY":
            parts = [p for p in rest.split() if not p.startswith("--")]
            sources += [p.rstrip("/") for p in parts[:-1]]
    assert set(sources) == allowed
    for src in sources:
        assert (ROOT / src).exists() or src in ("handler.py", "higgs_worker"), src
    assert "bootstrap.sh" in sources and "requirements-runtime.txt" in sources
    assert "requirements-runtime.lock" in sources  # bootstrap installs the lock with its hashes


def test_expected_image_size_is_within_budget() -> None:
    # Base python:3.11-slim is ~125 MB uncompressed; the rest is the project code.
    code = sum(p.stat().st_size for p in (ROOT / "higgs_worker").rglob("*.py"))
    code += sum((ROOT / f).stat().st_size for f in ("bootstrap.sh", "requirements-runtime.txt"))
    budget_mb = int(yaml.safe_load(BUILD_WF.read_text())["env"]["IMAGE_SIZE_BUDGET_MB"])
    assert budget_mb <= 500
    assert 125 + 2 * code / 1e6 < budget_mb  # code + its byte-compiled copy


# --------------------------------------------------------------------------- workflows
def _on(wf: dict) -> dict:
    return wf.get("on", wf.get(True))  # YAML 1.1 reads a bare `on` key as True


PUSHES = "github.event_name == 'push' && (github.ref == 'refs/heads/main' || startsWith(github.ref, 'refs/tags/v'))"


def test_build_workflow_tests_first_then_builds_checks_and_pushes() -> None:
    wf = yaml.safe_load(BUILD_WF.read_text())
    on = _on(wf)
    assert on["push"]["branches"] == ["**"] and on["push"]["tags"] == ["v*"]
    assert "pull_request" in on
    jobs = wf["jobs"]
    assert jobs["tests"]["uses"] == "./.github/workflows/tests.yml"
    image = jobs["image"]
    assert image["needs"] == "tests"  # no image without green tests
    assert image["permissions"]["packages"] == "write"
    steps = image["steps"]
    text = BUILD_WF.read_text()
    assert "ghcr.io/${GITHUB_REPOSITORY,,}" in text
    assert set(re.findall(r"secrets\.(\w+)", text)) == {"GITHUB_TOKEN"}
    # One build, loaded into the runner's Docker for the checks; the image that passed them
    # is the one pushed (issue 18: a second build-push step rebuilt it, and after a cache
    # eviction the pushed image could differ from the tested one).
    (build,) = [s for s in steps if str(s.get("uses", "")).startswith("docker/build-push-action")]
    assert build["with"]["cache-from"] == "type=gha" and build["with"]["cache-to"].startswith("type=gha")
    assert build["with"]["push"] is False and build["with"]["load"] is True
    tested = build["with"]["tags"]
    assert tested == "${{ steps.name.outputs.image }}:ci"
    names = [s.get("name", "") for s in steps]
    push = steps[names.index("Push")]
    login = next(s for s in steps if str(s.get("uses", "")).startswith("docker/login-action"))
    for step in (push, login):
        assert step["if"] == PUSHES  # only main and version tags publish
    assert login["with"]["password"] == "${{ secrets.GITHUB_TOKEN }}"
    assert (
        "uses" not in push
        and push["env"]["IMAGE"] == tested
        and push["env"]["TAGS"] == "${{ steps.meta.outputs.tags }}"
    )
    script = push["run"]
    assert 'docker tag "$IMAGE" "$tag"' in script and 'docker push "$tag"' in script
    assert not re.search(r"docker\s+(buildx\s+)?build", script)
    checks = [i for i, s in enumerate(steps) if s.get("env", {}).get("IMAGE") == tested and s is not push]
    assert names.index("Size budget") in checks and any(names[i].startswith("Smoke") for i in checks)
    assert max(checks) < names.index("Push") < names.index("Summary")
    size_step = steps[names.index("Size budget")]
    assert "IMAGE_SIZE_BUDGET_MB" in size_step["run"] and "exit 1" in size_step["run"]


def test_only_the_default_branch_moves_latest_and_deploy_uses_the_sha_tag() -> None:
    wf = yaml.safe_load(BUILD_WF.read_text())
    meta = next(s for s in wf["jobs"]["image"]["steps"] if s.get("id") == "meta")["with"]
    # metadata-action's default flavor latest=auto adds :latest for every semver tag.
    assert [line.strip() for line in meta["flavor"].splitlines() if line.strip()] == ["latest=false"]
    tags = [line.strip() for line in meta["tags"].splitlines() if line.strip()]
    latest = [t for t in tags if "value=latest" in t]
    assert latest == ["type=raw,value=latest,enable={{is_default_branch}}"]
    assert "type=sha,prefix=sha-,format=short" in tags  # :sha-<7 hex>
    assert "type=semver,pattern={{version}}" in tags
    # deploy-runpod.sh defaults to the same tag for the checked-out commit.
    deploy = (ROOT / "deploy-runpod.sh").read_text()
    assert 'IMAGE="ghcr.io/${REPO,,}:sha-${commit:0:7}"' in deploy
    assert ":latest" not in load(CONFIG_PATH)["image"]


def test_version_tags_get_a_github_release_after_the_image() -> None:
    wf = yaml.safe_load(BUILD_WF.read_text())
    release = wf["jobs"]["release"]
    assert release["needs"] == "image"
    assert release["if"] == "github.event_name == 'push' && startsWith(github.ref, 'refs/tags/v')"
    assert release["permissions"] == {"contents": "write"}
    run = " ".join(s.get("run", "") for s in release["steps"])
    assert 'gh release create "$TAG"' in run and "--verify-tag" in run
    assert 'gh release view "$TAG"' in run  # a re-run does not fail on an existing release


def test_the_suite_runs_once_per_push() -> None:
    runs_suite = []
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        wf = yaml.safe_load(path.read_text())
        if "push" not in (_on(wf) or {}):
            continue
        for job in wf["jobs"].values():
            steps = " ".join(s.get("run", "") for s in job.get("steps", []))
            if "bash .ci/run" in steps or job.get("uses") == "./.github/workflows/tests.yml":
                runs_suite.append(path.name)
    assert runs_suite == [BUILD_WF.name]
    wf = yaml.safe_load(TESTS_WF.read_text())
    assert set(_on(wf)) == {"workflow_call", "workflow_dispatch"}
    run = " ".join(s.get("run", "") for s in wf["jobs"]["tests"]["steps"])
    assert "bash .ci/run" in run
    assert "secrets." not in TESTS_WF.read_text()


# The current majors (releases read 2026-09: actions/checkout v7.0.1, actions/setup-python
# v7.0.0, docker/setup-buildx-action v4.1.0, docker/metadata-action v6.1.0,
# docker/build-push-action v7.2.0, docker/login-action v4.2.0); all run on Node 24.
CURRENT_MAJORS = {
    "actions/checkout": 7,
    "actions/setup-python": 7,
    "docker/setup-buildx-action": 4,
    "docker/metadata-action": 6,
    "docker/build-push-action": 7,
    "docker/login-action": 4,
}


def test_workflow_actions_are_on_current_majors() -> None:
    used = []
    for path in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for action, major in re.findall(r"uses:\s*([\w.-]+/[\w.-]+)@v(\d+)", path.read_text()):
            used.append(action)
            assert action in CURRENT_MAJORS, f"{path.name}: {action} has no known current major here"
            assert int(major) >= CURRENT_MAJORS[action], f"{path.name}: {action}@v{major}"
    assert set(used) == set(CURRENT_MAJORS)


# --------------------------------------------------------------------------- docs
def test_the_deploy_reference_documents_every_script_variable_and_the_config() -> None:
    """Every variable bootstrap and deploy-runpod.sh read is in docs/deploy-reference.md,
    with the endpoint's timeout and GPU pools as the config has them."""
    reference = (ROOT / "docs" / "deploy-reference.md").read_text()
    for var in sorted(bootstrap_settings()):
        assert var in reference, f"{var} (bootstrap) is not documented in docs/deploy-reference.md"
    deploy = (ROOT / "deploy-runpod.sh").read_text()
    for var in sorted(set(re.findall(r"\bRUNPOD_[A-Z_]+\b", deploy)) - {"RUNPOD_SECRET_", "RUNPOD_ENV_"}):
        assert var in reference, f"{var} (deploy-runpod.sh) is not documented in docs/deploy-reference.md"
    parsing = deploy[deploy.index("while (($#)); do") : deploy.index("\ndone\n")]
    refused = {"--build", "--local", "--local-build", "--push", "--docker", "--no-push", "--tag"}  # old flags
    for option in sorted(set(re.findall(r"(--[a-z][a-z-]+)", parsing)) - refused):
        assert option in reference, f"{option} (deploy-runpod.sh) is not documented in docs/deploy-reference.md"
    cfg = load(CONFIG_PATH)
    assert f"{cfg['endpoint']['timeout']}" in reference.replace(",", "")
    for pool in REQUIRED_POOLS:
        assert pool in reference
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    for doc in docs:  # REST v1 is retired; the image's source is named by its name
        text = doc.read_text()
        assert "https://rest.runpod.io" not in text and "root `Dockerfile`" not in text, doc.name
    assert "Dockerfile.runpod.ultra" in reference
    readme = (ROOT / "README.md").read_text()  # the README names only real bootstrap settings
    assert set(re.findall(r"\bBOOTSTRAP_[A-Z_]+\b", readme)) <= bootstrap_settings()


def test_http_mode_doc_states_the_load_balancer_limits() -> None:
    """RunPod's load-balancing limits (docs.runpod.io/serverless/load-balancing/overview,
    "Timeouts and limits") and what the worker does at each (issue 18, fault 2)."""
    doc = (ROOT / "docs" / "http-mode.md").read_text()
    section = doc[doc.index("## Limits of load-balancing endpoints") :]
    for needle in ("5.5 min", "30 MB", "2 min", "8 minutes", "204", "queue endpoint", "S3_BUCKET", "mp3"):
        assert needle in section, needle
    assert "bootstrap.sh" in doc and "HEALTH_CHECK_PATH" in doc


# --------------------------------------------------------------------------- the lint script itself
def _tool_dir() -> Path:
    return Path(sysconfig.get_path("scripts"))


@pytest.mark.skipif(
    not all((_tool_dir() / t).exists() for t in ("shellcheck", "hadolint", "check-jsonschema")),
    reason="lint tools not installed in this environment (bash .ci/shipping-checks.sh installs them)",
)
def test_shipping_checks_fail_on_a_finding(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / ".ci").mkdir(parents=True)
    (repo / ".github" / "workflows").mkdir(parents=True)
    shutil.copy(ROOT / ".ci" / "shipping-checks.sh", repo / ".ci")
    shutil.copy(DOCKERFILE, repo)
    shutil.copy(TESTS_WF, repo / ".github" / "workflows")
    (repo / "ok.json").write_text("{}")
    (repo / "good.sh").write_text('#!/usr/bin/env bash\necho "fine"\n')

    def run() -> subprocess.CompletedProcess:
        return subprocess.run(
            ["bash", str(repo / ".ci" / "shipping-checks.sh")],
            capture_output=True,
            text=True,
            timeout=120,
            env={"PATH": "/usr/bin:/bin", "PYTHON": sys.executable},
        )

    clean = run()
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "all checks passed" in clean.stdout

    (repo / "bad").write_text("#!/bin/bash\nrm -rf $1/*\n")  # no extension: found by its shebang
    (repo / "bad.json").write_text("{not json")
    (repo / "Dockerfile").write_text("FROM python:latest\nRUN cd /tmp && pip install requests\n")
    result = run()
    assert result.returncode == 1, result.stdout
    assert "FAIL: shellcheck" in result.stdout
    assert "FAIL: hadolint" in result.stdout
    assert "FAIL: invalid JSON: bad.json" in result.stdout


# --------------------------------------------------------------------------- test_input.json
@pytest.mark.slow
def test_handler_without_arguments_runs_test_input_json(subprocess_env, moto_server, s3_client) -> None:
    """`python handler.py` with no arguments: the runpod SDK runs ./test_input.json (a
    smart-voice job: no reference audio) as a local test job, here on the tiny model."""
    job = load(ROOT / "test_input.json")
    assert set(job) == {"input"} and set(job["input"]) <= JOB_FIELDS
    assert job["input"]["text"].strip() and "voice" not in job["input"] and "reference_audio" not in job["input"]
    env = {**subprocess_env, **FAKE_AWS, "S3_BUCKET": BUCKET, "S3_ENDPOINT_URL": moto_server}
    proc = subprocess.run(
        [sys.executable, "handler.py"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    out = proc.stdout + proc.stderr
    assert proc.returncode == 0, out[-3000:]
    assert "Using test_input.json as job input." in out
    assert "completed successfully" in out and "Traceback" not in out
    key = f"higgs-audio/{job['input']['output_name']}.wav"
    data = s3_client.get_object(Bucket=BUCKET, Key=key)["Body"].read()
    assert data[:4] == b"RIFF" and len(data) > 44  # a WAV with samples in it

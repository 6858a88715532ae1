#!/usr/bin/env bash
# deploy-runpod.sh - create or update the RunPod serverless template and endpoint of
# the Higgs Audio v2 worker through RunPod's REST API, from
# runpod-serverless-config.json and the image that GitHub Actions pushed to ghcr.io.
#
# It never builds or pushes a container: images come from
# .github/workflows/build-runpod-container.yml.
#
#   ./deploy-runpod.sh --dry-run        print the exact requests, send nothing
#   ./deploy-runpod.sh                  create or update template + endpoint
#
# Environment (secrets only from here, never from files):
#   RUNPOD_API_KEY            required unless --dry-run (sent as a bearer token)
#   RUNPOD_IMAGE              image to deploy [ghcr.io/<owner>/<repo>:latest from
#                             GITHUB_REPOSITORY or the git remote]; prefer an
#                             immutable tag (the commit sha or a version)
#   RUNPOD_NETWORK_VOLUME_ID  network volume to attach (strongly recommended)
#   RUNPOD_TEMPLATE_ID        update this template [looked up by name, else created]
#   RUNPOD_ENDPOINT_ID        update this endpoint [looked up by name, else created]
#   RUNPOD_TEMPLATE_NAME, RUNPOD_ENDPOINT_NAME   override the names in the config
#   RUNPOD_REGISTRY_AUTH_ID   RunPod registry credential for a private ghcr image
#   RUNPOD_SECRETS            names from the config's secretEnv block to add as
#                             RunPod secret references, e.g. "AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"
#   RUNPOD_ENV_<NAME>=value   set NAME=value in the worker environment (e.g.
#                             RUNPOD_ENV_S3_BUCKET=my-bucket); secret-looking names
#                             are redacted in all output
#   RUNPOD_API_URL            [https://rest.runpod.io/v1]
set -Eeuo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
CONFIG="$SCRIPT_DIR/runpod-serverless-config.json"
API_URL=${RUNPOD_API_URL:-https://rest.runpod.io/v1}
API_URL=${API_URL%/}
DRY_RUN=0
IMAGE=${RUNPOD_IMAGE:-}

say() { printf '%s\n' "$*"; }
note() { printf '[deploy] %s\n' "$*" >&2; }
die() {
    printf '[deploy] ERROR: %s\n' "$*" >&2
    exit 1
}

deprecation_notice() {
    cat >&2 <<'EOF'
[deploy] NOTICE: the old way of deploying (building and pushing the container image
[deploy]         on your own machine with this script) is deprecated and removed.
[deploy]         Push to GitHub instead: .github/workflows/build-runpod-container.yml
[deploy]         builds the image and pushes ghcr.io/<owner>/<repo>:<latest|sha|version>;
[deploy]         this script only points the RunPod template and endpoint at it.
EOF
}

usage() {
    sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while (($#)); do
    case "$1" in
    --dry-run | -n) DRY_RUN=1 ;;
    --image)
        (($# >= 2)) || die "--image needs a value"
        IMAGE=$2
        shift
        ;;
    --image=*) IMAGE=${1#*=} ;;
    --config)
        (($# >= 2)) || die "--config needs a value"
        CONFIG=$2
        shift
        ;;
    --config=*) CONFIG=${1#*=} ;;
    -h | --help)
        usage
        exit 0
        ;;
    --build | --local | --local-build | --push | --docker | --no-push | --tag | --tag=*)
        deprecation_notice
        die "option '$1' belonged to the old local-build deploy and is no longer supported (see the notice above)"
        ;;
    *) die "unknown option '$1' (try --help)" ;;
    esac
    shift
done

deprecation_notice

command -v python3 >/dev/null 2>&1 || die "python3 is required (it assembles the JSON requests)"
[[ -r "$CONFIG" ]] || die "config file '${CONFIG}' not found"
if ((!DRY_RUN)); then
    command -v curl >/dev/null 2>&1 || die "curl is required"
    [[ -n "${RUNPOD_API_KEY:-}" ]] || die "RUNPOD_API_KEY is not set: export it (RunPod console > Settings > API Keys, read/write), or use --dry-run"
fi

# ---------------------------------------------------------------- image
if [[ -z "$IMAGE" ]]; then
    repo=${GITHUB_REPOSITORY:-}
    if [[ -z "$repo" ]]; then
        remote=$(git -C "$SCRIPT_DIR" remote get-url origin 2>/dev/null || true)
        if [[ "$remote" =~ github\.com[:/]([^/]+/[^/]+)$ ]]; then
            repo=${BASH_REMATCH[1]%.git}
        fi
    fi
    [[ -n "$repo" ]] || die "cannot tell the image: set RUNPOD_IMAGE=ghcr.io/<owner>/<repo>:<tag> (or GITHUB_REPOSITORY=<owner>/<repo>)"
    IMAGE="ghcr.io/${repo,,}:latest"
fi
[[ "$IMAGE" != *OWNER/REPO* ]] || die "RUNPOD_IMAGE still holds the OWNER/REPO placeholder"
[[ "$IMAGE" =~ ^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9._-]+|@sha256:[0-9a-f]{64})?$ ]] ||
    die "image '${IMAGE}' is not a valid lower-case image reference"

WORK=$(mktemp -d)
trap 'rm -rf -- "$WORK"' EXIT
umask 077

# ---------------------------------------------------------------- request bodies
DEPLOY_IMAGE="$IMAGE" DEPLOY_OUT="$WORK" python3 - "$CONFIG" <<'PY' || die "could not build the requests from ${CONFIG}"
import json, os, re, sys

cfg = json.load(open(sys.argv[1]))
out = os.environ["DEPLOY_OUT"]
env = os.environ

# Field names accepted by RunPod's REST API v1 (openapi.json of rest.runpod.io/v1:
# TemplateCreateInput, TemplateUpdateInput, EndpointCreateInput, EndpointUpdateInput).
TEMPLATE_CREATE = {"category", "containerDiskInGb", "containerRegistryAuthId", "dockerEntrypoint",
                   "dockerStartCmd", "env", "imageName", "isPublic", "isServerless", "name", "ports",
                   "readme", "volumeInGb", "volumeMountPath"}
TEMPLATE_UPDATE = TEMPLATE_CREATE - {"category", "isServerless"}
ENDPOINT_CREATE = {"allowedCudaVersions", "computeType", "cpuFlavorIds", "dataCenterIds",
                   "executionTimeoutMs", "flashboot", "gpuCount", "gpuTypeIds", "idleTimeout",
                   "minCudaVersion", "name", "networkVolumeId", "networkVolumeIds", "scalerType",
                   "scalerValue", "templateId", "vcpuCount", "workersMax", "workersMin"}
ENDPOINT_UPDATE = ENDPOINT_CREATE - {"computeType"}
SECRETISH = re.compile(r"(^|_)(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?)(_|$)", re.I)

def fail(msg):
    print("[deploy] ERROR: " + msg, file=sys.stderr)
    sys.exit(1)

def clean(block, allowed, what):
    body = {k: v for k, v in block.items() if not k.startswith("$")}
    unknown = sorted(set(body) - allowed)
    if unknown:
        fail("%s: unknown field(s) %s; RunPod's REST API accepts %s" % (what, unknown, sorted(allowed)))
    return body

tpl = clean(cfg["template"], TEMPLATE_CREATE, "template")
ep = clean(cfg["endpoint"], ENDPOINT_CREATE, "endpoint")

tpl = dict(name=env.get("RUNPOD_TEMPLATE_NAME") or tpl["name"], imageName=os.environ["DEPLOY_IMAGE"],
           **{k: v for k, v in tpl.items() if k not in ("name", "imageName")})
ep["name"] = env.get("RUNPOD_ENDPOINT_NAME") or ep["name"]
if env.get("RUNPOD_REGISTRY_AUTH_ID"):
    tpl["containerRegistryAuthId"] = env["RUNPOD_REGISTRY_AUTH_ID"]

worker_env = dict(tpl.get("env", {}))
shown_env = dict(worker_env)
secret_refs = {k: v for k, v in cfg.get("secretEnv", {}).items() if not k.startswith("$")}
for name in re.split(r"[\s,]+", env.get("RUNPOD_SECRETS", "").strip()):
    if not name:
        continue
    if name not in secret_refs:
        fail("RUNPOD_SECRETS names '%s', which is not in secretEnv (%s)" % (name, ", ".join(sorted(secret_refs))))
    worker_env[name] = shown_env[name] = secret_refs[name]
for key in sorted(env):
    if key.startswith("RUNPOD_ENV_") and len(key) > len("RUNPOD_ENV_"):
        name = key[len("RUNPOD_ENV_"):]
        worker_env[name] = env[key]
        is_ref = re.fullmatch(r"\{\{\s*RUNPOD_SECRET_\w+\s*\}\}", env[key] or "")
        shown_env[name] = ("<redacted: from %s>" % key) if SECRETISH.search(name) and env[key] and not is_ref else env[key]
tpl["env"] = worker_env

volume = env.get("RUNPOD_NETWORK_VOLUME_ID", "").strip()
if volume:
    ep["networkVolumeId"] = volume
else:
    print("[deploy] WARNING: RUNPOD_NETWORK_VOLUME_ID is not set: the endpoint gets no network volume, "
          "so every new worker installs the runtime (~8 GB) and downloads the model (~12 GB) again. "
          "Create a volume (console > Storage) in a data center with your GPUs and export its id.",
          file=sys.stderr)
ep["templateId"] = "__TEMPLATE_ID__"

def write(name, body):
    with open(os.path.join(out, name), "w") as fh:
        json.dump(body, fh, indent=2)
        fh.write("\n")

shown_tpl = dict(tpl, env=shown_env)
write("template_create.json", tpl)
write("template_create.shown.json", shown_tpl)
write("template_update.json", {k: v for k, v in tpl.items() if k in TEMPLATE_UPDATE})
write("template_update.shown.json", {k: v for k, v in shown_tpl.items() if k in TEMPLATE_UPDATE})
write("endpoint_create.json", ep)
write("endpoint_update.json", {k: v for k, v in ep.items() if k in ENDPOINT_UPDATE})
with open(os.path.join(out, "names"), "w") as fh:
    fh.write(tpl["name"] + "\n" + ep["name"] + "\n")
PY

{
    read -r TEMPLATE_NAME
    read -r ENDPOINT_NAME
} <"$WORK/names"

# ---------------------------------------------------------------- HTTP
AUTH_HEADER="$WORK/auth.header"
if ((!DRY_RUN)); then
    printf 'Authorization: Bearer %s\n' "$RUNPOD_API_KEY" >"$AUTH_HEADER"
fi
REQ_N=0

# show_request METHOD PATH PURPOSE [BODY_FILE]
show_request() {
    REQ_N=$((REQ_N + 1))
    say "--- request ${REQ_N}: $3"
    say "$1 ${API_URL}$2"
    say "Authorization: Bearer \$RUNPOD_API_KEY"
    if [[ -n "${4:-}" ]]; then
        say "Content-Type: application/json"
        say ""
        cat -- "$4"
    else
        say ""
    fi
}

# api METHOD PATH BODY_FILE|"" OUT_FILE -> sets HTTP_CODE
api() {
    local method=$1 path=$2 body=$3 out=$4
    local args=(-sS -X "$method" -H @"$AUTH_HEADER" -H 'Accept: application/json'
        --connect-timeout 15 --max-time 120 -o "$out" -w '%{http_code}')
    [[ "$method" != GET ]] || args+=(--retry 3 --retry-delay 2)
    [[ -z "$body" ]] || args+=(-H 'Content-Type: application/json' --data-binary @"$body")
    HTTP_CODE=$(curl "${args[@]}" "${API_URL}${path}") || die "${method} ${API_URL}${path} failed (network)"
    note "${method} ${path} -> HTTP ${HTTP_CODE}"
    if [[ ! "$HTTP_CODE" =~ ^2 ]]; then
        local hint=""
        [[ "$HTTP_CODE" != 401 && "$HTTP_CODE" != 403 ]] || hint=" (check that RUNPOD_API_KEY is valid and has read/write access)"
        die "RunPod answered HTTP ${HTTP_CODE} to ${method} ${path}${hint}: $(head -c 600 -- "$out" | tr '\n' ' ')"
    fi
}

# JSON helpers (python3): print the value or nothing.
json_find_id() { # FILE NAME: id of the item whose name is NAME (or "NAME -fb")
    python3 - "$1" "$2" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
if isinstance(data, dict):
    data = next((v for v in data.values() if isinstance(v, list)), [])
for item in data:
    if isinstance(item, dict) and item.get("name") in (sys.argv[2], sys.argv[2] + " -fb"):
        print(item.get("id", ""))
        break
PY
}
json_id() {
    python3 -c 'import json,sys; print(json.load(open(sys.argv[1])).get("id",""))' "$1"
}

# ---------------------------------------------------------------- template
TEMPLATE_ID=${RUNPOD_TEMPLATE_ID:-}
ENDPOINT_ID=${RUNPOD_ENDPOINT_ID:-}
say "# RunPod REST API ${API_URL}; image ${IMAGE}"

if [[ -z "$TEMPLATE_ID" ]]; then
    if ((DRY_RUN)); then
        show_request GET "/templates?includeEndpointBoundTemplates=true" "find the template named \"${TEMPLATE_NAME}\" (dry run: not sent; assuming none)"
    else
        api GET "/templates?includeEndpointBoundTemplates=true" "" "$WORK/templates.json"
        TEMPLATE_ID=$(json_find_id "$WORK/templates.json" "$TEMPLATE_NAME")
    fi
fi
if [[ -n "$TEMPLATE_ID" ]]; then
    if ((DRY_RUN)); then
        show_request PATCH "/templates/${TEMPLATE_ID}" "update template ${TEMPLATE_ID}" "$WORK/template_update.shown.json"
    else
        api PATCH "/templates/${TEMPLATE_ID}" "$WORK/template_update.json" "$WORK/template.out.json"
        note "updated template ${TEMPLATE_ID} (${TEMPLATE_NAME}) -> ${IMAGE}"
    fi
else
    if ((DRY_RUN)); then
        show_request POST "/templates" "create template \"${TEMPLATE_NAME}\"" "$WORK/template_create.shown.json"
        TEMPLATE_ID="<id of the created template>"
    else
        api POST "/templates" "$WORK/template_create.json" "$WORK/template.out.json"
        TEMPLATE_ID=$(json_id "$WORK/template.out.json")
        [[ -n "$TEMPLATE_ID" ]] || die "POST /templates answered without an id"
        note "created template ${TEMPLATE_ID} (${TEMPLATE_NAME}) -> ${IMAGE}"
    fi
fi

# ---------------------------------------------------------------- endpoint
for f in endpoint_create endpoint_update; do
    TID="$TEMPLATE_ID" python3 - "$WORK/$f.json" <<'PY'
import json, os, sys
body = json.load(open(sys.argv[1]))
body["templateId"] = os.environ["TID"]
json.dump(body, open(sys.argv[1], "w"), indent=2)
open(sys.argv[1], "a").write("\n")
PY
done

if [[ -z "$ENDPOINT_ID" ]]; then
    if ((DRY_RUN)); then
        show_request GET "/endpoints" "find the endpoint named \"${ENDPOINT_NAME}\" (dry run: not sent; assuming none)"
    else
        api GET "/endpoints" "" "$WORK/endpoints.json"
        ENDPOINT_ID=$(json_find_id "$WORK/endpoints.json" "$ENDPOINT_NAME")
    fi
fi
if [[ -n "$ENDPOINT_ID" ]]; then
    if ((DRY_RUN)); then
        show_request PATCH "/endpoints/${ENDPOINT_ID}" "update endpoint ${ENDPOINT_ID}" "$WORK/endpoint_update.json"
    else
        api PATCH "/endpoints/${ENDPOINT_ID}" "$WORK/endpoint_update.json" "$WORK/endpoint.out.json"
        note "updated endpoint ${ENDPOINT_ID} (${ENDPOINT_NAME})"
    fi
else
    if ((DRY_RUN)); then
        show_request POST "/endpoints" "create endpoint \"${ENDPOINT_NAME}\"" "$WORK/endpoint_create.json"
        ENDPOINT_ID="<endpoint id>"
    else
        api POST "/endpoints" "$WORK/endpoint_create.json" "$WORK/endpoint.out.json"
        ENDPOINT_ID=$(json_id "$WORK/endpoint.out.json")
        [[ -n "$ENDPOINT_ID" ]] || die "POST /endpoints answered without an id"
        note "created endpoint ${ENDPOINT_ID} (${ENDPOINT_NAME})"
    fi
fi

if ((DRY_RUN)); then
    say "--- end of dry run: ${REQ_N} request(s) shown, none sent"
else
    say "endpoint ${ENDPOINT_ID} uses template ${TEMPLATE_ID} (${IMAGE})"
    say "  submit:  curl -X POST https://api.runpod.ai/v2/${ENDPOINT_ID}/run -H \"Authorization: Bearer \$RUNPOD_API_KEY\" -H 'Content-Type: application/json' -d '{\"input\": {\"text\": \"Hello from Higgs Audio.\"}}'"
    say "  status:  https://api.runpod.ai/v2/${ENDPOINT_ID}/status/<job id>"
    say "The first job on an empty volume installs the runtime and downloads the model (several minutes); see docs/runpod-serverless-guide.md."
fi

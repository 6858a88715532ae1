#!/usr/bin/env bash
# deploy-runpod.sh - create or update the RunPod serverless template and endpoint of
# the Higgs Audio v2 worker through RunPod's REST API v2 (https://api.runpod.io/v2),
# from runpod-serverless-config.json and the image that GitHub Actions pushed to
# ghcr.io.
#
# It never builds or pushes a container: images come from
# .github/workflows/build-runpod-container.yml, which builds Dockerfile.runpod.ultra,
# checks the image and pushes that very image.
#
#   ./deploy-runpod.sh --dry-run        print the exact requests, send nothing
#   ./deploy-runpod.sh                  create or update template + endpoint
#   ./deploy-runpod.sh --type lb        the load-balancing variant (HTTP worker mode)
#   ./deploy-runpod.sh --image REF      deploy another image (e.g. a release's :X.Y.Z)
#
# Before it creates anything it checks that the image exists in its registry (anonymous
# pull token for a public image; RUNPOD_REGISTRY_USERNAME/PASSWORD for a private one) and
# stops, saying how to get one, when it does not. --skip-image-check skips that (a
# registry it cannot query; RunPod still fails to pull a missing image).
#
# Environment (secrets only from here, never from files):
#   RUNPOD_API_KEY            required unless --dry-run (sent as a bearer token)
#   RUNPOD_IMAGE              image to deploy [ghcr.io/<owner>/<repo>:sha-<commit, 7
#                             hex> from GITHUB_REPOSITORY/GITHUB_SHA or the git
#                             checkout: the tag the build workflow pushes for that
#                             commit]; also name:tag@sha256:<digest> or name@sha256:...
#   RUNPOD_ENDPOINT_TYPE      queue | lb  [queue]  (same as --type)
#   RUNPOD_NETWORK_VOLUME_ID  network volume to attach (strongly recommended); checked
#                             with GET /network-volumes/{id} before it is used
#   RUNPOD_TEMPLATE_ID        update this template [looked up by name, else created]
#   RUNPOD_ENDPOINT_ID        update this endpoint [looked up by its exact name, else
#                             created; an update never renames it]
#   RUNPOD_TEMPLATE_NAME, RUNPOD_ENDPOINT_NAME   override the names in the config
#   RUNPOD_REGISTRY_AUTH_ID   RunPod registry credential id for a private image, or:
#   RUNPOD_REGISTRY_USERNAME, RUNPOD_REGISTRY_PASSWORD   create (or reuse, by the name
#                             RUNPOD_REGISTRY_NAME [ghcr-<owner>]) that credential
#                             through POST /registries; the password is never printed
#   RUNPOD_SECRETS            names from the config's secretEnv block to add as
#                             RunPod secret references, e.g. "AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY"
#   RUNPOD_ENV_<NAME>=value   set NAME=value in the worker environment (e.g.
#                             RUNPOD_ENV_S3_BUCKET=my-bucket); secret-looking names
#                             are redacted in all output
#   RUNPOD_API_URL            [https://api.runpod.io/v2]  REST API v2 base URL
set -Eeuo pipefail

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
CONFIG="$SCRIPT_DIR/runpod-serverless-config.json"
API_URL=${RUNPOD_API_URL:-https://api.runpod.io/v2}
API_URL=${API_URL%/}
DRY_RUN=0
IMAGE=${RUNPOD_IMAGE:-}
ENDPOINT_TYPE=${RUNPOD_ENDPOINT_TYPE:-queue}
CHECK_IMAGE=1

say() { printf '%s\n' "$*"; }
note() { printf '[deploy] %s\n' "$*" >&2; }
die() {
    printf '[deploy] ERROR: %s\n' "$*" >&2
    exit 1
}

old_flags_notice() {
    cat >&2 <<'EOF'
[deploy] This script never builds or pushes an image: GitHub Actions
[deploy] (.github/workflows/build-runpod-container.yml) builds Dockerfile.runpod.ultra and
[deploy] pushes ghcr.io/<owner>/<repo>:sha-<commit>; this script points RunPod at it.
EOF
}

usage() {
    sed -n '2,/^set -Eeuo/p' "${BASH_SOURCE[0]}" | sed -e '$d' -e 's/^# \{0,1\}//'
}

while (($#)); do
    case "$1" in
    --dry-run | -n) DRY_RUN=1 ;;
    --image | --config | --type)
        (($# >= 2)) || die "$1 needs a value"
        case "$1" in --image) IMAGE=$2 ;; --config) CONFIG=$2 ;; --type) ENDPOINT_TYPE=$2 ;; esac
        shift
        ;;
    --image=*) IMAGE=${1#*=} ;;
    --skip-image-check) CHECK_IMAGE=0 ;;
    --config=*) CONFIG=${1#*=} ;;
    --type=*) ENDPOINT_TYPE=${1#*=} ;;
    -h | --help)
        usage
        exit 0
        ;;
    --build | --local | --local-build | --push | --docker | --no-push | --tag | --tag=*)
        old_flags_notice
        die "option '$1' belonged to the old local-build deploy (deprecated, removed) and is no longer supported"
        ;;
    *) die "unknown option '$1' (try --help)" ;;
    esac
    shift
done

case "$ENDPOINT_TYPE" in
queue | QUEUE) ENDPOINT_TYPE=queue ;;
lb | LB | load-balancer | LOAD_BALANCER) ENDPOINT_TYPE=lb ;;
*) die "endpoint type '${ENDPOINT_TYPE}' is not one of: queue, lb (--type or RUNPOD_ENDPOINT_TYPE)" ;;
esac

command -v python3 >/dev/null 2>&1 || die "python3 is required (it assembles the JSON requests)"
[[ -r "$CONFIG" ]] || die "config file '${CONFIG}' not found"
if ((!DRY_RUN)); then
    command -v curl >/dev/null 2>&1 || die "curl is required"
    [[ -n "${RUNPOD_API_KEY:-}" ]] || die "RUNPOD_API_KEY is not set: export it (RunPod console > Settings > API Keys, read/write), or use --dry-run"
fi
if [[ -n "${RUNPOD_REGISTRY_USERNAME:-}${RUNPOD_REGISTRY_PASSWORD:-}" && -z "${RUNPOD_REGISTRY_AUTH_ID:-}" ]]; then
    [[ -n "${RUNPOD_REGISTRY_USERNAME:-}" && -n "${RUNPOD_REGISTRY_PASSWORD:-}" ]] ||
        die "set both RUNPOD_REGISTRY_USERNAME and RUNPOD_REGISTRY_PASSWORD (or RUNPOD_REGISTRY_AUTH_ID)"
fi

# ---------------------------------------------------------------- image
# The build workflow tags every pushed commit ghcr.io/<owner>/<repo>:sha-<7 hex>
# (docker/metadata-action type=sha); the default points at that immutable tag.
REPO=${GITHUB_REPOSITORY:-}
if [[ -z "$REPO" ]]; then
    remote=$(git -C "$SCRIPT_DIR" remote get-url origin 2>/dev/null || true)
    if [[ "$remote" =~ github\.com[:/]([^/]+/[^/]+)$ ]]; then
        REPO=${BASH_REMATCH[1]%.git}
    fi
fi
if [[ -z "$IMAGE" ]]; then
    [[ -n "$REPO" ]] || die "cannot tell the image: set RUNPOD_IMAGE=ghcr.io/<owner>/<repo>:sha-<commit> (or GITHUB_REPOSITORY=<owner>/<repo>)"
    commit=${GITHUB_SHA:-$(git -C "$SCRIPT_DIR" rev-parse HEAD 2>/dev/null || true)}
    [[ "$commit" =~ ^[0-9a-f]{40}$ ]] || die "cannot tell the commit: set RUNPOD_IMAGE=ghcr.io/${REPO,,}:sha-<commit> (or GITHUB_SHA)"
    IMAGE="ghcr.io/${REPO,,}:sha-${commit:0:7}"
    note "image ${IMAGE}: the tag the build workflow pushed for commit ${commit:0:7} (a commit on main or a v* tag that passed CI)"
fi
[[ "$IMAGE" != *OWNER/REPO* ]] || die "RUNPOD_IMAGE still holds the OWNER/REPO placeholder"
# name[:tag][@sha256:<64 hex>] with a registry host, lower-case repository path.
IMAGE_RE='^[a-z0-9.-]+(:[0-9]+)?/[a-z0-9._/-]+(:[A-Za-z0-9_][A-Za-z0-9._-]{0,127})?(@sha256:[0-9a-f]{64})?$'
[[ "$IMAGE" =~ $IMAGE_RE ]] ||
    die "image '${IMAGE}' is not a valid image reference (registry/name[:tag][@sha256:<64 hex>], lower-case name)"
if [[ "$IMAGE" != *@sha256:* && ("$IMAGE" == *:latest || ! "${IMAGE##*/}" == *:*) ]]; then
    note "WARNING: ${IMAGE} is a moving tag (latest); RunPod advises an immutable tag or a digest for endpoints, so workers cannot drift apart. Prefer :sha-<commit> or @sha256:..."
fi

WORK=$(mktemp -d)
trap 'rm -rf -- "$WORK"' EXIT
umask 077

# ---------------------------------------------------------------- request bodies
DEPLOY_IMAGE="$IMAGE" DEPLOY_OUT="$WORK" DEPLOY_TYPE="$ENDPOINT_TYPE" DEPLOY_REPO="${REPO,,}" \
    python3 - "$CONFIG" <<'PY' || die "could not build the requests from ${CONFIG}"
import json, os, re, sys

cfg = json.load(open(sys.argv[1]))
out, env = os.environ["DEPLOY_OUT"], os.environ

# Request fields of RunPod's REST API v2 (https://api.runpod.io/v2/openapi.json:
# CreateTemplateRequest / UpdateTemplateRequest = ContainerConfig + template fields;
# CreateEndpointRequest / UpdateEndpointRequest = ContainerConfig + endpoint fields).
# v2 rejects unknown fields by name, so they are caught here first.
CONTAINER = {"args", "disk", "env", "image", "ports", "registry"}
TEMPLATE = CONTAINER | {"name", "allowedCudaVersions", "category", "mounts", "public", "serverless",
                        "startJupyter", "startSsh"}
ENDPOINT_CREATE = CONTAINER | {"cpu", "dataCenterIds", "flashboot", "gpu", "name", "networkVolumes", "scaling",
                               "templateId", "timeout", "type", "workers"}
# The routing type is fixed at create; the name too: an endpoint is found by its exact name
# (or RUNPOD_ENDPOINT_ID) and an update never renames it.
ENDPOINT_UPDATE = ENDPOINT_CREATE - {"type", "name"}
SECRETISH = re.compile(r"(^|_)(KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIALS?)(_|$)", re.I)

def fail(msg):
    print("[deploy] ERROR: " + msg, file=sys.stderr)
    sys.exit(1)

def clean(block, allowed, what):
    body = {k: v for k, v in block.items() if not k.startswith("$")}
    unknown = sorted(set(body) - allowed)
    if unknown:
        fail("%s: unknown field(s) %s; RunPod's REST API v2 accepts %s" % (what, unknown, sorted(allowed)))
    return body

def write(name, body):
    with open(os.path.join(out, name), "w") as fh:
        json.dump(body, fh, indent=2)
        fh.write("\n")

def merge(base, over):
    merged = dict(base)
    for key, value in over.items():
        if key.startswith("$"):
            continue
        merged[key] = merge(base[key], value) if key == "env" and isinstance(value, dict) else value
    return merged

tpl, ep = cfg["template"], cfg["endpoint"]
if env["DEPLOY_TYPE"] == "lb":
    lb = cfg["loadBalancer"]
    tpl, ep = merge(tpl, lb.get("template", {})), merge(ep, lb.get("endpoint", {}))
    tpl["name"] += lb.get("nameSuffix", "")
    ep["name"] += lb.get("nameSuffix", "")
tpl = clean(tpl, TEMPLATE, "template")
ep = clean(ep, ENDPOINT_CREATE, "endpoint")

tpl["name"] = env.get("RUNPOD_TEMPLATE_NAME") or tpl["name"]
tpl["image"] = env["DEPLOY_IMAGE"]
ep["name"] = env.get("RUNPOD_ENDPOINT_NAME") or ep["name"]
if env.get("RUNPOD_REGISTRY_AUTH_ID"):
    tpl["registry"] = env["RUNPOD_REGISTRY_AUTH_ID"]
elif env.get("RUNPOD_REGISTRY_USERNAME"):
    tpl["registry"] = "__REGISTRY_ID__"
    owner = (env["DEPLOY_REPO"].split("/")[0] or "private")
    reg = {"name": env.get("RUNPOD_REGISTRY_NAME") or "ghcr-" + owner,
           "username": env["RUNPOD_REGISTRY_USERNAME"], "password": env["RUNPOD_REGISTRY_PASSWORD"]}
    write("registry_create.json", reg)
    write("registry_create.shown.json", dict(reg, password="<redacted: from RUNPOD_REGISTRY_PASSWORD>"))
    open(os.path.join(out, "registry_name"), "w").write(reg["name"] + "\n")

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

volumes = [v for v in re.split(r"[\s,]+", env.get("RUNPOD_NETWORK_VOLUME_ID", "").strip()) if v]
if volumes:
    ep["networkVolumes"] = volumes
else:
    print("[deploy] WARNING: RUNPOD_NETWORK_VOLUME_ID is not set: the endpoint gets no network volume, "
          "so every new worker installs the runtime (~8 GB) and downloads the model (~12 GB) again. "
          "Create a volume (console > Storage) in a data center with your GPUs and export its id.",
          file=sys.stderr)
ep["templateId"] = "__TEMPLATE_ID__"

write("template.json", tpl)
write("template.shown.json", dict(tpl, env=shown_env))
write("endpoint_create.json", ep)
write("endpoint_update.json", {k: v for k, v in ep.items() if k in ENDPOINT_UPDATE})
with open(os.path.join(out, "names"), "w") as fh:
    fh.write("\n".join([tpl["name"], ep["name"], ep["type"], " ".join(volumes)]) + "\n")
PY

{
    read -r TEMPLATE_NAME
    read -r ENDPOINT_NAME
    read -r ENDPOINT_KIND
    read -r VOLUMES || true
} <"$WORK/names"

# ---------------------------------------------------------------- the image exists?
# A tag that was never pushed (a clone of upstream, a branch, a fork whose Actions are off,
# a build still running) would leave every worker "initializing", billed, until it is
# stopped. So the registry is asked first (OCI distribution API: HEAD of the manifest, with
# the pull token its 401 challenge names; anonymous unless RUNPOD_REGISTRY_USERNAME/PASSWORD
# are set). DEPLOY_REGISTRY_URL replaces the registry's base URL, for the tests only.
# check_image -> 0 found, 3 missing, 4 pull denied, 5 could not tell (message on stdout)
check_image() {
    DEPLOY_IMAGE="$IMAGE" python3 - <<'PY'
import base64, json, os, re, sys, urllib.error, urllib.parse, urllib.request

image, env = os.environ["DEPLOY_IMAGE"], os.environ
host, _, rest = image.partition("/")
name, _, digest = rest.partition("@")
if not digest:
    name, _, tag = name.partition(":")
else:
    name = name.split(":")[0]
reference = digest or tag or "latest"
base = env.get("DEPLOY_REGISTRY_URL") or "https://" + ("registry-1.docker.io" if host == "docker.io" else host)
base = base.rstrip("/")
url = "%s/v2/%s/manifests/%s" % (base, name, reference)
accept = ", ".join([
    "application/vnd.oci.image.index.v1+json", "application/vnd.oci.image.manifest.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
    "application/vnd.docker.distribution.manifest.v2+json",
])
user, password = env.get("RUNPOD_REGISTRY_USERNAME", ""), env.get("RUNPOD_REGISTRY_PASSWORD", "")

def head(token=None):
    req = urllib.request.Request(url, method="HEAD", headers={"Accept": accept})
    if token:
        req.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(req, timeout=20) as r:
            return r.status, r.headers
    except urllib.error.HTTPError as e:
        return e.code, e.headers

def done(code, message):
    print(message)
    sys.exit(code)

try:
    status, headers = head()
    if status == 401:
        challenge = headers.get("WWW-Authenticate", "")
        params = dict(re.findall(r'(\w+)="([^"]*)"', challenge))
        if not challenge.lower().startswith("bearer") or "realm" not in params:
            done(5, "the registry asked for an authentication it does not name (%s)" % challenge[:200])
        query = {k: params[k] for k in ("service", "scope") if k in params}
        query.setdefault("scope", "repository:%s:pull" % name)
        req = urllib.request.Request(params["realm"] + "?" + urllib.parse.urlencode(query))
        if user and password:
            req.add_header("Authorization", "Basic " + base64.b64encode(("%s:%s" % (user, password)).encode()).decode())
        try:
            with urllib.request.urlopen(req, timeout=20) as r:
                answer = json.load(r)
        except urllib.error.HTTPError as e:
            if e.code in (401, 403):
                who = "with RUNPOD_REGISTRY_USERNAME's credential" if user else "anonymously"
                done(4, "%s refused a pull token %s (HTTP %d): the image is private, or does not exist" % (host, who, e.code))
            done(5, "%s answered HTTP %d to the token request" % (host, e.code))
        token = answer.get("token") or answer.get("access_token")
        status, headers = head(token)
    if 200 <= status < 300:
        done(0, "%s has %s:%s (%s)" % (host, name, reference, headers.get("Docker-Content-Digest", "digest not given")))
    if status == 404:
        done(3, "%s has no %s:%s (HTTP 404, manifest unknown)" % (host, name, reference))
    if status in (401, 403):
        done(4, "%s refused to show %s:%s (HTTP %d): the image is private, or does not exist" % (host, name, reference, status))
    done(5, "%s answered HTTP %d" % (host, status))
except (urllib.error.URLError, OSError, ValueError) as e:
    done(5, "could not ask %s (%s)" % (base, getattr(e, "reason", e)))
PY
}

if ((DRY_RUN || !CHECK_IMAGE)); then
    ((DRY_RUN)) && note "image ${IMAGE}: not checked in a dry run (a real run checks that the registry has it)"
    ((CHECK_IMAGE)) || note "image ${IMAGE}: not checked (--skip-image-check)"
elif [[ -n "${RUNPOD_REGISTRY_AUTH_ID:-}" && -z "${RUNPOD_REGISTRY_USERNAME:-}" ]]; then
    note "image ${IMAGE}: not checked (a RunPod registry credential is used, whose password this script cannot read; set RUNPOD_REGISTRY_USERNAME/PASSWORD to check it)"
else
    image_status=0
    image_answer=$(check_image) || image_status=$?
    case "$image_status" in
    0) note "image ${IMAGE}: found (${image_answer})" ;;
    5) note "WARNING: could not check that image ${IMAGE} exists: ${image_answer}. Deploying anyway; if workers stay \"initializing\", the tag is missing or private" ;;
    *)
        how="Fix one of:
  - build it: fork the repository on GitHub, enable workflows in the fork's Actions tab (GitHub leaves a fork's workflows off), push to main (or a v* tag), wait until the build-runpod-container run is green (it pushes :sha-<commit>), and run this script from that commit${REPO:+ (runs: https://github.com/${REPO}/actions)};
  - deploy an image that exists: ./deploy-runpod.sh --image ghcr.io/<owner>/<repo>:<tag> (or RUNPOD_IMAGE=...), e.g. a release's :X.Y.Z"
        if ((image_status == 4)); then
            how="${how}
  - a private package: make it public (GitHub > Packages > package settings > visibility), or set RUNPOD_REGISTRY_USERNAME and RUNPOD_REGISTRY_PASSWORD (a token with read:packages) so RunPod can pull it"
        fi
        die "image ${IMAGE} cannot be pulled: ${image_answer}. Nothing was created: a RunPod worker would wait for this image in \"initializing\", billed.
${how}"
        ;;
    esac
fi

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

# problem FILE: one line from a v2 error body (RFC 9457: title, status, detail, errors[]).
problem() {
    python3 - "$1" <<'PY'
import json, sys
raw = open(sys.argv[1], "rb").read()[:4000].decode("utf-8", "replace")
try:
    p = json.loads(raw)
except ValueError:
    print(" ".join(raw.split())[:600] or "(empty body)")
    sys.exit()
if isinstance(p, dict) and ("title" in p or "detail" in p):
    line = "%s: %s" % (p.get("title", "error"), p.get("detail", ""))
    if p.get("errors"):
        line += " [" + "; ".join(str(e) for e in p["errors"][:10]) + "]"
    print(line[:1000])
else:
    print(" ".join(raw.split())[:600])
PY
}

# api METHOD PATH BODY_FILE|"" OUT_FILE -> sets HTTP_CODE; dies on anything but 2xx
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
        case "$HTTP_CODE" in
        401 | 403) hint=" (check that RUNPOD_API_KEY is valid and has read/write access)" ;;
        429) hint=" (rate limited: wait a minute and run the script again)" ;;
        404) hint=" (the id does not exist in this account, or RUNPOD_API_URL is not the REST API v2)" ;;
        esac
        die "RunPod answered HTTP ${HTTP_CODE} to ${method} ${path}${hint}: $(problem "$out")"
    fi
}

# find_named FILE LIST_KEY NAME: "id<TAB>type" of the item whose name is exactly NAME in
# the wrapped v2 list {"LIST_KEY": [...]}; nothing when there is none. Exact: a name that
# only starts with NAME ("NAME -fb", "NAME-lb") is another resource.
find_named() {
    python3 - "$@" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
items = data.get(sys.argv[2], []) if isinstance(data, dict) else []
for item in items:
    if isinstance(item, dict) and item.get("name") == sys.argv[3]:
        print("%s\t%s" % (item.get("id", ""), item.get("type", "")))
        break
PY
}
# similar_names FILE LIST_KEY NAME: "id (name)" of the items whose name starts with NAME
# but is not NAME, comma-separated (for a note: they are left alone).
similar_names() {
    python3 - "$@" <<'PY'
import json, sys
data = json.load(open(sys.argv[1]))
items = data.get(sys.argv[2], []) if isinstance(data, dict) else []
name = sys.argv[3]
print(", ".join('%s ("%s")' % (i.get("id", "?"), i["name"]) for i in items
                if isinstance(i, dict) and isinstance(i.get("name"), str)
                and i["name"] != name and i["name"].startswith(name)))
PY
}
json_get() { # FILE KEY[.KEY...]: the value, or nothing
    python3 - "$1" "$2" <<'PY'
import json, sys
value = json.load(open(sys.argv[1]))
for key in sys.argv[2].split("."):
    value = value.get(key) if isinstance(value, dict) else None
print("" if value is None else value)
PY
}
json_set() { # FILE KEY VALUE: set a top-level string field
    python3 - "$@" <<'PY'
import json, sys
body = json.load(open(sys.argv[1]))
body[sys.argv[2]] = sys.argv[3]
with open(sys.argv[1], "w") as fh:
    json.dump(body, fh, indent=2)
    fh.write("\n")
PY
}

say "# RunPod REST API ${API_URL}; image ${IMAGE}; ${ENDPOINT_KIND} endpoint"
TEMPLATE_ID=${RUNPOD_TEMPLATE_ID:-}
ENDPOINT_ID=${RUNPOD_ENDPOINT_ID:-}

# ---------------------------------------------------------------- registry credential
if [[ -f "$WORK/registry_create.json" ]]; then
    read -r REGISTRY_NAME <"$WORK/registry_name"
    if ((DRY_RUN)); then
        show_request GET "/registries" "find the registry credential named \"${REGISTRY_NAME}\" (dry run: not sent; assuming none)"
        show_request POST "/registries" "create registry credential \"${REGISTRY_NAME}\"" "$WORK/registry_create.shown.json"
        REGISTRY_ID="<id of the created registry credential>"
    else
        api GET "/registries" "" "$WORK/registries.json"
        REGISTRY_ID=$(find_named "$WORK/registries.json" registries "$REGISTRY_NAME" | cut -f1)
        if [[ -n "$REGISTRY_ID" ]]; then
            note "reusing registry credential ${REGISTRY_ID} (${REGISTRY_NAME})"
        else
            api POST "/registries" "$WORK/registry_create.json" "$WORK/registry.out.json"
            REGISTRY_ID=$(json_get "$WORK/registry.out.json" id)
            [[ -n "$REGISTRY_ID" ]] || die "POST /registries answered without an id"
            note "created registry credential ${REGISTRY_ID} (${REGISTRY_NAME})"
        fi
    fi
    rm -f -- "$WORK/registry_create.json"
    for f in template.json template.shown.json; do json_set "$WORK/$f" registry "$REGISTRY_ID"; done
fi

# ---------------------------------------------------------------- network volumes
for volume in $VOLUMES; do
    if ((DRY_RUN)); then
        show_request GET "/network-volumes/${volume}" "check that network volume ${volume} exists (dry run: not sent)"
    else
        api GET "/network-volumes/${volume}" "" "$WORK/volume.json"
        note "network volume ${volume}: \"$(json_get "$WORK/volume.json" name)\", $(json_get "$WORK/volume.json" size) GB in $(json_get "$WORK/volume.json" dataCenter); workers run in that data center only, so pick GPU pools available there"
    fi
done

# ---------------------------------------------------------------- template
if [[ -z "$TEMPLATE_ID" ]]; then
    if ((DRY_RUN)); then
        show_request GET "/templates" "find the template named \"${TEMPLATE_NAME}\" (dry run: not sent; assuming none)"
    else
        api GET "/templates" "" "$WORK/templates.json"
        TEMPLATE_ID=$(find_named "$WORK/templates.json" templates "$TEMPLATE_NAME" | cut -f1)
    fi
fi
if [[ -n "$TEMPLATE_ID" ]]; then
    if ((DRY_RUN)); then
        show_request PATCH "/templates/${TEMPLATE_ID}" "update template ${TEMPLATE_ID}" "$WORK/template.shown.json"
    else
        api PATCH "/templates/${TEMPLATE_ID}" "$WORK/template.json" "$WORK/template.out.json"
        note "updated template ${TEMPLATE_ID} (${TEMPLATE_NAME}) -> ${IMAGE}"
    fi
else
    if ((DRY_RUN)); then
        show_request POST "/templates" "create template \"${TEMPLATE_NAME}\"" "$WORK/template.shown.json"
        TEMPLATE_ID="<id of the created template>"
    else
        api POST "/templates" "$WORK/template.json" "$WORK/template.out.json"
        TEMPLATE_ID=$(json_get "$WORK/template.out.json" id)
        [[ -n "$TEMPLATE_ID" ]] || die "POST /templates answered without an id"
        note "created template ${TEMPLATE_ID} (${TEMPLATE_NAME}) -> ${IMAGE}"
    fi
fi

# ---------------------------------------------------------------- endpoint
# v2 copies the template's container settings into the endpoint when it is created
# or patched with templateId (no lasting link), so the PATCH carries templateId too.
for f in endpoint_create endpoint_update; do json_set "$WORK/$f.json" templateId "$TEMPLATE_ID"; done

if [[ -z "$ENDPOINT_ID" ]]; then
    if ((DRY_RUN)); then
        show_request GET "/serverless" "find the endpoint named \"${ENDPOINT_NAME}\" (dry run: not sent; assuming none)"
    else
        api GET "/serverless" "" "$WORK/endpoints.json"
        IFS=$'\t' read -r ENDPOINT_ID found_type < <(find_named "$WORK/endpoints.json" endpoints "$ENDPOINT_NAME") || true
        if [[ -n "${ENDPOINT_ID:-}" && -n "${found_type:-}" && "$found_type" != "$ENDPOINT_KIND" ]]; then
            die "endpoint ${ENDPOINT_ID} (${ENDPOINT_NAME}) is a ${found_type} endpoint and the routing type cannot be changed; set RUNPOD_ENDPOINT_NAME to deploy a ${ENDPOINT_KIND} endpoint beside it"
        fi
        if [[ -z "${ENDPOINT_ID:-}" ]]; then
            similar=$(similar_names "$WORK/endpoints.json" endpoints "$ENDPOINT_NAME")
            [[ -z "$similar" ]] || note "no endpoint is named exactly \"${ENDPOINT_NAME}\", so a new one is created; left alone: ${similar}. To update one of those instead, set RUNPOD_ENDPOINT_ID"
        fi
    fi
fi
if [[ -n "$ENDPOINT_ID" ]]; then
    if ((DRY_RUN)); then
        show_request PATCH "/serverless/${ENDPOINT_ID}" "update endpoint ${ENDPOINT_ID}" "$WORK/endpoint_update.json"
    else
        api PATCH "/serverless/${ENDPOINT_ID}" "$WORK/endpoint_update.json" "$WORK/endpoint.out.json"
        note "updated endpoint ${ENDPOINT_ID} (${ENDPOINT_NAME})"
    fi
else
    if ((DRY_RUN)); then
        show_request POST "/serverless" "create endpoint \"${ENDPOINT_NAME}\"" "$WORK/endpoint_create.json"
        ENDPOINT_ID="<endpoint id>"
    else
        api POST "/serverless" "$WORK/endpoint_create.json" "$WORK/endpoint.out.json"
        ENDPOINT_ID=$(json_get "$WORK/endpoint.out.json" id)
        [[ -n "$ENDPOINT_ID" ]] || die "POST /serverless answered without an id"
        note "created endpoint ${ENDPOINT_ID} (${ENDPOINT_NAME})"
    fi
fi

if ((DRY_RUN)); then
    say "--- end of dry run: ${REQ_N} request(s) shown, none sent"
    exit 0
fi
say "endpoint ${ENDPOINT_ID} (${ENDPOINT_KIND}) uses template ${TEMPLATE_ID} (${IMAGE})"
if [[ "$ENDPOINT_KIND" == LOAD_BALANCER ]]; then
    base=$(json_get "$WORK/endpoint.out.json" requestUrls.base)
    say "  base URL:  ${base:-https://${ENDPOINT_ID}.api.runpod.ai}"
    say "  health:    $(json_get "$WORK/endpoint.out.json" requestUrls.health)"
else
    run=$(json_get "$WORK/endpoint.out.json" requestUrls.run)
    run=${run:-https://api.runpod.ai/v2/${ENDPOINT_ID}/run}
    say "  submit:  curl -X POST ${run} -H \"Authorization: Bearer \$RUNPOD_API_KEY\" -H 'Content-Type: application/json' -d '{\"input\": {\"text\": \"Hello from Higgs Audio.\"}}'"
    status=$(json_get "$WORK/endpoint.out.json" requestUrls.status)
    say "  status:  ${status:-https://api.runpod.ai/v2/${ENDPOINT_ID}/status/{job_id\}}"
fi
say "The first job on an empty volume installs the runtime and downloads the model (several minutes); see docs/runpod-serverless-guide.md, step 6."

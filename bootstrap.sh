#!/usr/bin/env bash
# bootstrap.sh - container entry point of the Higgs Audio v2 RunPod worker.
#
# 1. Makes sure the pinned runtime requirements (requirements-runtime.txt: torch,
#    torchaudio, transformers, runpod, ...) are installed in a virtual environment.
#    With a network volume the environment lives on the volume, keyed by a hash of
#    the requirements, the Python version, the platform and the pip options, so only
#    the first worker on a volume pays for the install; later cold starts reuse it.
#    Without a volume it is installed on the container disk. "A volume" means a real
#    mount at BOOTSTRAP_VOLUME_DIR (read from /proc/self/mountinfo), not just a folder
#    of that name: the worker itself creates /runpod-volume/... on the container disk
#    when no volume is attached, and a runtime installed there would be lost (and
#    installed again) with the container.
# 2. exec's `python -u handler.py "$@"` with the environment's Python, so
#    `./bootstrap.sh --test_input '{...}'` and `./bootstrap.sh --rp_serve_api` reach
#    the runpod SDK unchanged.
#
# HTTP mode (WORKER_MODE=http, RunPod load-balancing endpoints): while it installs or
# waits for another worker's install, a small standard-library responder answers GET
# /ping with 204 (RunPod: "initializing") on PORT_HEALTH and PORT, and every other
# request with 503 and Retry-After, so the load balancer sees a starting worker, not a
# dead port (RunPod stops a worker whose port does not answer after about 8 minutes, and
# a first install plus model download can take longer). It is stopped, and its ports
# are free, before handler.py starts; handler.py's own /ping answers from its server's
# start (after the imports, 5-15 s) on. Queue mode starts no responder.
#
# Safety: the install runs under a lock on the venv folder (concurrent workers build
# once), into a temporary folder next to its final place, and is published with one
# atomic rename only when pip succeeded, so an install that crashed or was killed is
# never used. Everything is logged to stdout (RunPod's console) with phase timings.
#
# Settings (environment; production defaults in brackets):
#   BOOTSTRAP_VOLUME_DIR     [/runpod-volume]  network volume mount point
#   BOOTSTRAP_MOUNTINFO      [/proc/self/mountinfo]  mount table read to tell a
#                             mounted volume from a plain folder
#   BOOTSTRAP_VENV_ROOT      [<volume>/higgs-worker/venvs, or BOOTSTRAP_LOCAL_DIR
#                             without a volume]  folder that holds the environments
#   BOOTSTRAP_LOCAL_DIR      [/tmp/higgs-worker/venvs]  used when there is no volume
#   BOOTSTRAP_REQUIREMENTS   [<app>/requirements-runtime.txt]
#   BOOTSTRAP_PYTHON         [python3]  interpreter the environment is made from
#   BOOTSTRAP_APP_DIR        [folder of this script]  where handler.py lives
#   BOOTSTRAP_PIP_ARGS       []  extra pip arguments (word-split), part of the key
#   BOOTSTRAP_LOCK_TIMEOUT   [RUNPOD_INIT_TIMEOUT - 60, RunPod's default 420 s when
#                             that is unset]  seconds to wait for another worker's
#                             install; capped there, so the worker gives up with a
#                             clear message before RunPod marks it unhealthy
#   BOOTSTRAP_MIN_FREE_GB    [12]  warn when the venv folder has less free space
#   WORKER_MODE, PORT, PORT_HEALTH   [queue, 8000, PORT]  the worker's own settings,
#                             read here for the /ping responder of HTTP mode
#   TORCH_INDEX_URL          []  PyTorch wheel index, passed as --extra-index-url
#                             (e.g. https://download.pytorch.org/whl/cu126); part of
#                             the key. Empty: PyPI's torch build (CUDA 12.8).
set -Eeuo pipefail

LAYOUT_VERSION=1

log() { printf '[bootstrap] %s\n' "$*"; }
warn() { printf '[bootstrap] WARNING: %s\n' "$*"; }
die() {
    printf '[bootstrap] ERROR: %s\n' "$*"
    printf '[bootstrap] ERROR: the worker cannot start; see the message above.\n'
    exit 1
}

# Microseconds since the epoch (bash 5 EPOCHREALTIME, else whole seconds).
now_us() {
    if [[ -n "${EPOCHREALTIME:-}" ]]; then
        printf '%s' "${EPOCHREALTIME//[.,]/}"
    else
        printf '%s000000' "$(date +%s)"
    fi
}
# Seconds elapsed since a now_us value, as "12.345s".
since() {
    local ms=$((($(now_us) - $1) / 1000))
    printf '%d.%03ds' $((ms / 1000)) $((ms % 1000))
}
# Hide credentials in URLs (scheme://user:password@host -> scheme://***@host).
redact() { printf '%s' "$1" | sed -E 's#(://)[^/@[:space:]]+@#\1***@#g'; }

T_START=$(now_us)
trap 'die "unexpected failure at line ${LINENO}: ${BASH_COMMAND}"' ERR

SCRIPT_DIR=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")" && pwd)
APP_DIR=${BOOTSTRAP_APP_DIR:-$SCRIPT_DIR}
REQUIREMENTS=${BOOTSTRAP_REQUIREMENTS:-$APP_DIR/requirements-runtime.txt}
PYTHON_BIN=${BOOTSTRAP_PYTHON:-python3}
VOLUME_DIR=${BOOTSTRAP_VOLUME_DIR:-/runpod-volume}
LOCAL_DIR=${BOOTSTRAP_LOCAL_DIR:-/tmp/higgs-worker/venvs}
MOUNTINFO=${BOOTSTRAP_MOUNTINFO:-/proc/self/mountinfo}
INIT_TIMEOUT=${RUNPOD_INIT_TIMEOUT:-420}
LOCK_MARGIN=60
LOCK_TIMEOUT=${BOOTSTRAP_LOCK_TIMEOUT:-}
MIN_FREE_GB=${BOOTSTRAP_MIN_FREE_GB:-12}
TORCH_INDEX_URL=${TORCH_INDEX_URL:-}
PIP_EXTRA=${BOOTSTRAP_PIP_ARGS:-}

[[ "$INIT_TIMEOUT" =~ ^[0-9]+$ ]] || die "RUNPOD_INIT_TIMEOUT must be a whole number of seconds, got '${INIT_TIMEOUT}'"
# RunPod marks a worker unhealthy when it is not ready within RUNPOD_INIT_TIMEOUT
# (420 s when unset): waiting for another worker's install must end before that.
LOCK_LIMIT=$((INIT_TIMEOUT > LOCK_MARGIN + 5 ? INIT_TIMEOUT - LOCK_MARGIN : 5))
if [[ -z "$LOCK_TIMEOUT" ]]; then
    LOCK_TIMEOUT=$LOCK_LIMIT
else
    [[ "$LOCK_TIMEOUT" =~ ^[0-9]+$ ]] || die "BOOTSTRAP_LOCK_TIMEOUT must be a whole number of seconds, got '${LOCK_TIMEOUT}'"
    if ((LOCK_TIMEOUT > LOCK_LIMIT)); then
        warn "BOOTSTRAP_LOCK_TIMEOUT=${LOCK_TIMEOUT}s outlives RUNPOD_INIT_TIMEOUT=${INIT_TIMEOUT}s (RunPod would mark this worker unhealthy first); waiting at most ${LOCK_LIMIT}s. Raise RUNPOD_INIT_TIMEOUT to wait longer"
        LOCK_TIMEOUT=$LOCK_LIMIT
    fi
fi
[[ "$MIN_FREE_GB" =~ ^[0-9]+$ ]] || die "BOOTSTRAP_MIN_FREE_GB must be a whole number, got '${MIN_FREE_GB}'"

PYTHON_PATH=$(command -v -- "$PYTHON_BIN" 2>/dev/null) ||
    die "Python interpreter '${PYTHON_BIN}' not found; set BOOTSTRAP_PYTHON to a Python 3.11 interpreter"
[[ -r "$REQUIREMENTS" ]] ||
    die "requirements file '${REQUIREMENTS}' not found or unreadable; set BOOTSTRAP_REQUIREMENTS"
[[ -f "$APP_DIR/handler.py" ]] ||
    die "handler.py not found in '${APP_DIR}'; set BOOTSTRAP_APP_DIR to the folder that holds it"

# ---------------------------------------------------------------- environment key
# The key changes whenever anything that decides the installed files changes.
T_PHASE=$(now_us)
KEY_INFO=$(
    BS_REQ="$REQUIREMENTS" BS_TORCH="$TORCH_INDEX_URL" BS_PIP="$PIP_EXTRA" BS_LAYOUT="$LAYOUT_VERSION" \
        "$PYTHON_PATH" - <<'PY'
import hashlib, os, platform, sys, sysconfig
req = open(os.environ["BS_REQ"], "rb").read()
impl = sys.implementation.name
ver = "%d.%d" % sys.version_info[:2]
libc = " ".join(platform.libc_ver()) or "unknown-libc"
parts = [
    "layout=" + os.environ["BS_LAYOUT"],
    "python=%s-%s" % (impl, ver),
    "platform=" + sysconfig.get_platform(),
    "libc=" + libc,
    "base=" + os.path.realpath(sys.executable),
    "torch_index=" + os.environ["BS_TORCH"],
    "pip_args=" + os.environ["BS_PIP"],
    "requirements_sha256=" + hashlib.sha256(req).hexdigest(),
]
digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]
print("py%s-%s\t%s %s\t%s\t%s" % (ver, digest, impl, platform.python_version(),
                                  sysconfig.get_platform(), hashlib.sha256(req).hexdigest()[:12]))
PY
) || die "could not run '${PYTHON_PATH}' to compute the environment key"
IFS=$'\t' read -r KEY PY_DESC PLATFORM REQ_SHORT <<<"$KEY_INFO"

# ---------------------------------------------------------------- where it lives
ensure_writable_dir() { mkdir -p -- "$1" 2>/dev/null && [[ -w "$1" ]]; }

# volume_mounted DIR: is DIR itself a mount point? Field 5 of each mountinfo line is
# a mount point, with spaces, tabs, newlines and backslashes written as octal escapes.
volume_mounted() {
    local dir
    dir=$(realpath -e -- "$1" 2>/dev/null) || return 1
    if [[ -r "$MOUNTINFO" ]]; then
        dir=${dir//\\/\\134}
        dir=${dir// /\\040}
        dir=${dir//$'\t'/\\011}
        MOUNT_DIR="$dir" awk '$5 == ENVIRON["MOUNT_DIR"] { found = 1 } END { exit !found }' "$MOUNTINFO"
    else # no mount table: a mount point sits on another device than its parent
        [[ "$(stat -c %d -- "$dir")" != "$(stat -c %d -- "$dir/..")" ]]
    fi
}

if [[ -n "${BOOTSTRAP_VENV_ROOT:-}" ]]; then
    VENV_ROOT=$BOOTSTRAP_VENV_ROOT
    MODE="BOOTSTRAP_VENV_ROOT"
elif volume_mounted "$VOLUME_DIR" && ensure_writable_dir "$VOLUME_DIR/higgs-worker/venvs"; then
    VENV_ROOT="$VOLUME_DIR/higgs-worker/venvs"
    MODE="network volume"
    log "network volume mounted at ${VOLUME_DIR}: the runtime is installed there once and reused by every worker"
else
    if volume_mounted "$VOLUME_DIR"; then
        warn "network volume ${VOLUME_DIR} is not writable; installing on the container disk instead"
    elif [[ -d "$VOLUME_DIR" ]]; then
        warn "NO NETWORK VOLUME is mounted at ${VOLUME_DIR}: that folder is only on the container disk (left by an earlier start of this container), so nothing there survives the container. Installing on the container disk in ${LOCAL_DIR}; every new worker pays the install and the model download. Attach a network volume to the endpoint to cache them"
    else
        log "no network volume at ${VOLUME_DIR}: installing on the container disk (every new worker pays the install; attach a volume to cache it)"
    fi
    VENV_ROOT=$LOCAL_DIR
    MODE="container disk"
fi
ensure_writable_dir "$VENV_ROOT" || die "cannot create or write the venv folder '${VENV_ROOT}'"
VENV="$VENV_ROOT/$KEY"

log "python ${PY_DESC} (${PYTHON_PATH}), platform ${PLATFORM}"
log "requirements ${REQUIREMENTS} (sha256 ${REQ_SHORT}...)"
log "torch index: $(redact "${TORCH_INDEX_URL:-PyPI default (CUDA 12.8 build)}")"
[[ -z "$PIP_EXTRA" ]] || log "extra pip args: $(redact "$PIP_EXTRA")"
log "environment ${VENV} (${MODE}); key computed in $(since "$T_PHASE")"

venv_usable() {
    [[ -f "$1/.bootstrap.json" && -x "$1/bin/python" ]] && "$1/bin/python" -c 'import sys' >/dev/null 2>&1
}

# ---------------------------------------------------------------- /ping while installing
PING_PID=""
# start_ping_responder: in HTTP mode, answer /ping with 204 until stop_ping_responder.
start_ping_responder() {
    local mode=${WORKER_MODE:-queue} port ports=()
    mode=${mode//[[:space:]]/}
    [[ "${mode,,}" == http ]] || return 0
    for port in "${PORT:-8000}" "${PORT_HEALTH:-${PORT:-8000}}"; do
        if [[ ! "$port" =~ ^[0-9]{1,5}$ ]] || ((port < 1 || port > 65535)); then
            warn "HTTP mode: port '${port}' (PORT / PORT_HEALTH) is not a port number; no /ping answers while installing (handler.py will refuse it)"
            continue
        fi
        [[ " ${ports[*]} " == *" ${port} "* ]] || ports+=("$port")
    done
    ((${#ports[@]})) || return 0
    "$PYTHON_PATH" -u - "${ports[@]}" <<'PY' &
import http.server, json, os, sys, threading, time
parent = os.getppid()
BUSY = json.dumps({"error": {
    "message": "the worker is starting: its runtime is being installed; retry in a minute",
    "type": "server_error", "code": "model_loading", "param": None}}).encode()

class Ping(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def answer(self):
        if self.path.split("?", 1)[0] == "/ping":
            self.send_response(204)  # RunPod's load balancer: initializing
            self.end_headers()
            return
        self.send_response(503)
        self.send_header("Content-Type", "application/json")
        self.send_header("Retry-After", "30")
        self.send_header("Content-Length", str(len(BUSY)))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(BUSY)

    do_GET = do_HEAD = do_POST = do_PUT = do_PATCH = do_DELETE = do_OPTIONS = answer

bound = []
for port in map(int, sys.argv[1:]):
    try:
        server = http.server.ThreadingHTTPServer(("0.0.0.0", port), Ping)
    except OSError as exc:
        print("[bootstrap] WARNING: /ping responder: port %d: %s" % (port, exc.strerror), flush=True)
        continue
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    bound.append(str(port))
if bound:
    print("[bootstrap] HTTP mode: /ping answers 204 (initializing) on port %s until handler.py starts"
          % ", ".join(bound), flush=True)
    while os.getppid() == parent:  # bootstrap.sh gone (killed): stop answering for it
        time.sleep(0.5)
PY
    PING_PID=$!
}
# stop_ping_responder: stop it and wait until it has exited (its ports are then free).
stop_ping_responder() {
    [[ -n "$PING_PID" ]] || return 0
    kill -TERM "$PING_PID" 2>/dev/null || true
    wait "$PING_PID" 2>/dev/null || true
    PING_PID=""
}

start_handler() {
    local how=$1
    shift
    stop_ping_responder
    export VIRTUAL_ENV="$VENV"
    export PATH="$VENV/bin:$PATH"
    unset PYTHONHOME
    cd -- "$APP_DIR"
    log "environment ${how}; bootstrap took $(since "$T_START"); starting handler.py with $# argument(s)"
    trap - ERR
    exec python -u handler.py "$@"
}

# ---------------------------------------------------------------- fast path
if venv_usable "$VENV"; then
    start_handler "reused (no install)" "$@"
fi

# ---------------------------------------------------------------- lock
trap 'stop_ping_responder' EXIT
start_ping_responder
# flock(2) on an fd held by this shell: released by the kernel when this process
# (and so the worker) dies, so a crashed worker never leaves a stale lock.
T_PHASE=$(now_us)
LOCK_FILE="$VENV_ROOT/.install.lock"
exec 9>>"$LOCK_FILE" || die "cannot open the lock file '${LOCK_FILE}'"
LOCKED=1
lock_rc=0
log "install lock ${LOCK_FILE}: waiting at most ${LOCK_TIMEOUT}s for another worker's install (RUNPOD_INIT_TIMEOUT=${INIT_TIMEOUT}s)"
"$PYTHON_PATH" - "$LOCK_TIMEOUT" "$LOCK_FILE" "$KEY" "$INIT_TIMEOUT" <<'PY' || lock_rc=$?
import errno, fcntl, sys, time
timeout, path, key, init = float(sys.argv[1]), sys.argv[2], sys.argv[3], sys.argv[4]
start = time.monotonic()

def holder():
    try:
        with open(path) as fh:
            return fh.read(300).strip() or "another worker (it left no note)"
    except OSError:
        return "another worker"

next_note = start
while True:
    try:
        fcntl.flock(9, fcntl.LOCK_EX | fcntl.LOCK_NB)
        sys.exit(0)
    except OSError as exc:
        if exc.errno not in (errno.EAGAIN, errno.EACCES):
            print("[bootstrap] WARNING: locking %s failed (%s)" % (path, exc.strerror), flush=True)
            sys.exit(3)
    now = time.monotonic()
    if now - start >= timeout:
        sys.exit(2)
    if now >= next_note:
        print("[bootstrap] waiting for the install lock %s: %s is installing; this worker needs environment %s"
              " (%ds so far, giving up in %ds, before RUNPOD_INIT_TIMEOUT=%ss)"
              % (path, holder(), key, now - start, timeout - (now - start), init), flush=True)
        next_note = now + 15
    time.sleep(0.25)
PY
case "$lock_rc" in
0)
    log "install lock acquired after $(since "$T_PHASE")"
    # A note for workers that wait meanwhile (the lock is on the file, not its text).
    printf 'worker %s (pid %s, installing %s since %s)\n' "${HOSTNAME:-?}" "$$" "$KEY" "$(date -u +%H:%M:%SZ)" >"$LOCK_FILE" 2>/dev/null || true
    ;;
2) die "gave up after ${LOCK_TIMEOUT}s waiting for the install lock ${LOCK_FILE} ($(head -c 300 -- "$LOCK_FILE" 2>/dev/null || true)): that install is still running. RunPod restarts this worker, which then reuses it once published. To wait longer, raise RUNPOD_INIT_TIMEOUT (the wait is capped ${LOCK_MARGIN}s below it)" ;;
3)
    LOCKED=0
    warn "the file system of ${VENV_ROOT} does not support locks; continuing without one (a concurrent worker may install too; the atomic publish keeps that safe)"
    ;;
*) die "the lock helper failed (exit ${lock_rc})" ;;
esac

if venv_usable "$VENV"; then
    exec 9>&-
    start_handler "reused (built by another worker while this one waited)" "$@"
fi

# ---------------------------------------------------------------- clean up leftovers
if ((LOCKED)); then
    # Under the lock nobody else is installing: every temporary folder is a leftover
    # of an install that crashed or was killed.
    shopt -s nullglob
    for stale in "$VENV_ROOT"/.tmp-*; do
        log "removing leftover of an interrupted install: ${stale}"
        rm -rf -- "$stale"
    done
    shopt -u nullglob
fi
if [[ -e "$VENV" ]]; then
    warn "${VENV} exists but is not a complete environment; moving it aside and rebuilding"
    mv -T -- "$VENV" "$VENV_ROOT/.tmp-broken-$$" && rm -rf -- "$VENV_ROOT/.tmp-broken-$$"
fi

FREE_KB=$(df -Pk -- "$VENV_ROOT" 2>/dev/null | awk 'NR==2 {print $4}') || FREE_KB=""
if [[ "$FREE_KB" =~ ^[0-9]+$ ]]; then
    log "free space in ${VENV_ROOT}: $((FREE_KB / 1024 / 1024)) GB"
    if ((FREE_KB < MIN_FREE_GB * 1024 * 1024)); then
        warn "less than ${MIN_FREE_GB} GB free in ${VENV_ROOT}; the runtime (torch + CUDA libraries) needs about 8 GB and the model about 12 GB. Enlarge the network volume or delete old environments in ${VENV_ROOT}"
    fi
fi

# ---------------------------------------------------------------- build
HOST_TAG=${HOSTNAME:-host}
HOST_TAG=${HOST_TAG//[^A-Za-z0-9_.-]/_}
TMP_VENV="$VENV_ROOT/.tmp-${KEY}-${HOST_TAG}-$$"
cleanup_tmp() { [[ -z "${TMP_VENV:-}" ]] || rm -rf -- "$TMP_VENV"; }
trap 'cleanup_tmp; stop_ping_responder' EXIT
log "building a new environment in ${TMP_VENV}"

T_PHASE=$(now_us)
PIP_HELP=$("$PYTHON_PATH" -m pip --help 2>/dev/null 9>&-) || PIP_HELP=""
if [[ "$PIP_HELP" == *"--python "* ]]; then
    # Fast: an environment without its own pip, filled by the base interpreter's pip.
    "$PYTHON_PATH" -m venv --without-pip "$TMP_VENV" 9>&- || die "python -m venv failed for ${TMP_VENV}"
    PIP=("$PYTHON_PATH" -m pip --python "$TMP_VENV/bin/python")
else
    "$PYTHON_PATH" -m venv "$TMP_VENV" 9>&- || die "python -m venv failed for ${TMP_VENV}"
    PIP=("$TMP_VENV/bin/python" -m pip)
fi
log "phase venv: $(since "$T_PHASE")"

PIP_ARGS=(install --no-cache-dir --disable-pip-version-check --no-input --progress-bar off)
[[ -z "$TORCH_INDEX_URL" ]] || PIP_ARGS+=(--extra-index-url "$TORCH_INDEX_URL")
if [[ -n "$PIP_EXTRA" ]]; then
    read -r -a extra <<<"$PIP_EXTRA"
    PIP_ARGS+=("${extra[@]}")
fi
PIP_ARGS+=(-r "$REQUIREMENTS")

T_PHASE=$(now_us)
PIP_LOG="$TMP_VENV/.pip-install.log"
log "phase pip install: started (torch and the CUDA libraries are several GB; this takes minutes on the first start)"
pip_rc=0
"${PIP[@]}" "${PIP_ARGS[@]}" 9>&- 2>&1 | tee "$PIP_LOG" || pip_rc=$?
if ((pip_rc != 0)); then
    reason="see pip's output above"
    if grep -qi 'no space left on device' "$PIP_LOG" 2>/dev/null; then
        reason="the disk holding ${VENV_ROOT} is full: enlarge the network volume or delete old environments in ${VENV_ROOT}"
    elif grep -qiE 'Could not find a version|No matching distribution' "$PIP_LOG" 2>/dev/null; then
        reason="a pinned package is not available from the configured index (check TORCH_INDEX_URL and BOOTSTRAP_PIP_ARGS)"
    elif grep -qiE 'connection|timed out|Temporary failure in name resolution' "$PIP_LOG" 2>/dev/null; then
        reason="the package index could not be reached (network)"
    fi
    die "pip install failed (exit ${pip_rc}) after $(since "$T_PHASE"): ${reason}. Nothing was published; the next start retries from scratch"
fi
log "phase pip install: $(since "$T_PHASE")"

# ---------------------------------------------------------------- record + publish
T_PHASE=$(now_us)
INSTALL_SECONDS=$(since "$T_START")
FREEZE=$("${PIP[@]}" freeze --all 9>&- 2>/dev/null) || FREEZE=""
BS_TMP="$TMP_VENV" BS_FINAL="$VENV" BS_KEY="$KEY" BS_REQ="$REQUIREMENTS" BS_TORCH="$TORCH_INDEX_URL" \
    BS_PIP="$PIP_EXTRA" BS_SECONDS="$INSTALL_SECONDS" BS_MODE="$MODE" BS_FREEZE="$FREEZE" \
    "$PYTHON_PATH" - 9>&- <<'PY' || die "could not finalize the environment in ${TMP_VENV}"
import datetime, hashlib, json, os, platform, re, socket, sys, sysconfig
tmp, final = os.environ["BS_TMP"], os.environ["BS_FINAL"]
# The environment was built at its temporary path: point scripts and pyvenv.cfg at
# the final path so console scripts keep working after the rename.
old, new = tmp.encode(), final.encode()
targets = [os.path.join(tmp, "pyvenv.cfg")]
bindir = os.path.join(tmp, "bin")
targets += [os.path.join(bindir, n) for n in os.listdir(bindir)]
for path in targets:
    if os.path.islink(path) or not os.path.isfile(path):
        continue
    with open(path, "rb") as fh:
        data = fh.read()
    if old in data and b"\0" not in data[:4096]:
        with open(path, "wb") as fh:
            fh.write(data.replace(old, new))
def redact(s):
    return re.sub(r"(://)[^/@\s]+@", r"\1***@", s)
req = open(os.environ["BS_REQ"], "rb").read()
record = {
    "key": os.environ["BS_KEY"],
    "path": final,
    "created_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
    "created_by_host": socket.gethostname(),
    "install_seconds": float(os.environ["BS_SECONDS"].rstrip("s")),
    "mode": os.environ["BS_MODE"],
    "python": platform.python_version(),
    "implementation": sys.implementation.name,
    "platform": sysconfig.get_platform(),
    "requirements_file": os.environ["BS_REQ"],
    "requirements_sha256": hashlib.sha256(req).hexdigest(),
    "torch_index_url": redact(os.environ["BS_TORCH"]),
    "pip_args": redact(os.environ["BS_PIP"]),
    "packages": [l for l in os.environ["BS_FREEZE"].splitlines() if l.strip()],
}
with open(os.path.join(tmp, ".bootstrap.json"), "w") as fh:
    json.dump(record, fh, indent=2)
    fh.write("\n")
PY
rm -f -- "$PIP_LOG"
sync -f "$TMP_VENV/.bootstrap.json" 2>/dev/null || true

# rename(2) is atomic: readers see either no environment or the complete one.
if mv -T -- "$TMP_VENV" "$VENV" 2>/dev/null; then
    TMP_VENV=""
    log "phase publish: $(since "$T_PHASE"); recorded ${VENV}/.bootstrap.json"
elif venv_usable "$VENV"; then
    log "another worker published ${VENV} first; discarding this copy"
else
    die "could not move ${TMP_VENV} to ${VENV}"
fi
cleanup_tmp
TMP_VENV=""
trap - EXIT
exec 9>&-
start_handler "built and published" "$@"

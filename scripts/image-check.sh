#!/usr/bin/env bash
# Image check: builds Dockerfile.runpod.ultra and runs its entrypoint the way RunPod does, on
# every CI run (.ci/run calls it after the tests). Needs root; installs buildah, podman and
# mmdebstrap from Debian when they are missing. See docs/image.md.
#
#   base    a bookworm root made by mmdebstrap with Debian's Python 3.11 (python3, venv, pip,
#           the C headers, ca-certificates), slimmed like Debian's container images, imported
#           as python:3.11-slim-bookworm: the stand-in for the real base, which cannot be
#           pulled here
#   build   buildah build (vfs storage, chroot isolation); prints the image's own layer size
#           over the base and what each part of it costs (Debian package by package)
#   then the entrypoint (the image's ENTRYPOINT, run with `buildah run --isolation chroot`),
#   with a bind-mounted folder as /runpod-volume that holds the tiny random-weight model:
#   (1) first start on the empty volume: installs the runtime there and answers a job
#       (--test_input)
#   (3) HTTP mode (WORKER_MODE=http): a second container, started while (1) installs, answers
#       GET /ping with 204 until it is ready, then 200, then a POST /v1/audio/speech with WAV
#   (2) a second start reuses the runtime (nothing new on the volume) and answers a job
#   (4) the same under a non-root uid (1000:1000)
#   (5) a DECODE_COMPILE=true job: the decode step compiled by inductor with the image's g++,
#       no fallback to the plain step
# Each phase's seconds are printed; the whole check takes about 6 minutes on 2 cores (budget:
# 10). The first failing phase stops the check: exit 1 with the phase named and its log's tail.
# Everything it made is removed at the end (containers, images, the volume folder), whatever
# happened.
#
# Settings (environment):
#   IMAGE_CHECK_DIR          [/var/tmp/higgs-image-check.<pid>] work folder (storage, volume,
#                            logs); removed at the end
#   IMAGE_CHECK_KEEP         [0] 1: keep the work folder and the images (for a look afterwards)
#   IMAGE_CHECK_MIRROR       [http://deb.debian.org/debian] Debian mirror for the base
#   IMAGE_CHECK_CA_BUNDLE    [/etc/ssl/certs/ca-certificates.crt] the host's CA bundle, mounted
#                            into the containers (PIP_CERT, REQUESTS_CA_BUNDLE, SSL_CERT_FILE)
#                            for machines that reach the package index through a TLS proxy
#   IMAGE_CHECK_TORCH_INDEX_URL  [] TORCH_INDEX_URL of the containers: empty installs what a
#                            RunPod worker installs (PyPI's CUDA build, ~7.4 GB); e.g.
#                            https://download.pytorch.org/whl/cpu for a smaller install
#   IMAGE_CHECK_PYTHON       [.venv/bin/python] builds the tiny model (the dev environment)
set -Eeuo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD

DOCKERFILE=Dockerfile.runpod.ultra
BASE_IMAGE=docker.io/library/python:3.11-slim-bookworm
IMAGE=localhost/higgs-runpod-worker:image-check
WORK=${IMAGE_CHECK_DIR:-/var/tmp/higgs-image-check.$$}
KEEP=${IMAGE_CHECK_KEEP:-0}
MIRROR=${IMAGE_CHECK_MIRROR:-http://deb.debian.org/debian}
CA_BUNDLE=${IMAGE_CHECK_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
TORCH_INDEX=${IMAGE_CHECK_TORCH_INDEX_URL:-}
DEV_PYTHON=${IMAGE_CHECK_PYTHON:-.venv/bin/python}
HELPER=(python3 "$ROOT/scripts/image_check.py")
STORE=(--root "$WORK/storage" --runroot "$WORK/run" --storage-driver vfs)
VOL=$WORK/volume
LOGS=$WORK/logs
CA_IN=/etc/ssl/certs/host-ca-bundle.crt
JOB='{"input": {"text": "Hello there.", "seed": 3, "max_new_tokens": 24}}'
FALLBACK_LINE="now runs the plain (uncompiled) decode step" # the worker's line when compiling failed

PHASE=setup
PHASE_T0=$(date +%s.%N)
RESULTS=()     # "name<TAB>seconds<TAB>note"
CONTAINERS=()  # working containers to remove
BG_PIDS=()     # background processes (process group leaders) to stop

say() { printf '[image-check] %s\n' "$*"; }
elapsed() { python3 -c 'import sys; print("%.1f" % (float(sys.argv[2]) - float(sys.argv[1])))' "$1" "${2:-$(date +%s.%N)}"; }
start_phase() {
    PHASE=$1
    PHASE_T0=$(date +%s.%N)
    say "phase ${PHASE}: $2"
}
end_phase() { # end_phase NOTE [SECONDS]
    local secs=${2:-$(elapsed "$PHASE_T0")}
    RESULTS+=("${PHASE}"$'\t'"${secs}"$'\t'"$1")
    say "phase ${PHASE}: ok in ${secs}s${1:+ ($1)}"
}
fail() { # fail MESSAGE [LOG]
    say "FAILED in phase ${PHASE}: $1"
    if [[ -n "${2:-}" && -f "$2" ]]; then
        say "last lines of $2:"
        tail -n 40 -- "$2" | cut -c1-400 | sed 's/^/    /'
    fi
    exit 1
}
trap 'fail "unexpected error at line ${LINENO}: ${BASH_COMMAND}"' ERR

cleanup() {
    local rc=$? pid t_clean
    trap - ERR
    set +e
    t_clean=$(date +%s.%N)
    [[ -z "${MODEL_PID:-}" ]] || kill "$MODEL_PID" 2>/dev/null
    for pid in "${BG_PIDS[@]}"; do
        kill -TERM -- "-$pid" 2>/dev/null
    done
    for pid in "${BG_PIDS[@]}"; do
        for _ in $(seq 20); do kill -0 -- "-$pid" 2>/dev/null || break; sleep 0.5; done
        kill -KILL -- "-$pid" 2>/dev/null
    done
    if [[ -d "$WORK/storage" ]]; then
        for ctr in "${CONTAINERS[@]}"; do buildah "${STORE[@]}" rm "$ctr" >/dev/null 2>&1; done
        buildah "${STORE[@]}" umount --all >/dev/null 2>&1
        if [[ "$KEEP" != 1 ]]; then
            buildah "${STORE[@]}" rmi --all --force >/dev/null 2>&1
        fi
    fi
    # anything still mounted below the work folder (there should be nothing) is unmounted
    grep -F " $WORK/" /proc/self/mountinfo | awk '{print $5}' | sort -r | while read -r mnt; do
        umount -l "$mnt" 2>/dev/null && say "unmounted a leftover mount ${mnt}"
    done
    if [[ "$KEEP" == 1 ]]; then
        say "kept ${WORK} (IMAGE_CHECK_KEEP=1)"
    else
        rm -rf -- "$WORK"
    fi
    RESULTS+=("cleanup"$'\t'"$(elapsed "$t_clean")"$'\t'"containers, images, mounts, the work folder")
    if ((${#RESULTS[@]})); then
        say "summary (seconds per phase):"
        printf '%s\n' "${RESULTS[@]}" | awk -F'\t' '{ printf "[image-check]   %-22s %7.1f  %s\n", $1, $2, $3 }'
    fi
    if ((rc == 0)); then
        say "image check passed in $(elapsed "$T_ALL")s"
    else
        say "image check FAILED (exit ${rc}) after $(elapsed "$T_ALL")s"
    fi
    exit "$rc"
}
T_ALL=$(date +%s.%N)
trap cleanup EXIT

# ---------------------------------------------------------------------------------- tools
start_phase tools "buildah, podman, mmdebstrap"
[[ $(id -u) == 0 ]] || fail "run as root (buildah's vfs storage and chroot isolation, apt-get, mounts)"
missing=()
for tool in buildah podman mmdebstrap; do command -v "$tool" >/dev/null 2>&1 || missing+=("$tool"); done
if ((${#missing[@]})); then
    say "installing ${missing[*]} from Debian"
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" crun >/dev/null ||
        fail "could not install ${missing[*]}"
fi
[[ -r "$CA_BUNDLE" ]] || fail "no CA bundle at ${CA_BUNDLE} (IMAGE_CHECK_CA_BUNDLE)"
[[ -x "$DEV_PYTHON" ]] || fail "no ${DEV_PYTHON} to build the tiny model with (scripts/setup-dev.sh makes it)"
mkdir -p "$WORK" "$VOL" "$LOGS"
end_phase "$(buildah --version | cut -d' ' -f1-3), $(mmdebstrap --version)"

# ---------------------------------------------------------------------------------- volume
# The tiny random-weight model on the volume, built meanwhile by the dev environment (readable
# for every uid, as a downloaded model is).
(
    "$DEV_PYTHON" -m higgs_worker.devtools.tiny_model --out "$VOL/tiny" &&
        mkdir -p "$VOL/tiny/voices" && chmod -R a+rX "$VOL/tiny" && date +%s.%N >"$WORK/model.end"
) >"$LOGS/model.log" 2>&1 &
MODEL_PID=$!
T_MODEL=$(date +%s.%N)

# ---------------------------------------------------------------------------------- base
# Like python:3.11-slim-bookworm: Debian's container-image trimming (no docs, man pages or
# translations; apt keeps no .deb files or caches), Python with its C headers (the official
# image has them; pyconfig.h and Python.h are what inductor's C++ wrappers include) but no C
# compiler or libc headers. Debian's Python lives in /usr, the official one in /usr/local.
start_phase base "mmdebstrap bookworm + Python 3.11, imported as ${BASE_IMAGE}"
slim=(/usr/share/doc/\* /usr/share/man/\* /usr/share/info/\* /usr/share/locale/\* /usr/share/groff/\*
    /usr/share/lintian/\* /usr/share/linda/\*)
dpkg_opts=()
for path in "${slim[@]}"; do dpkg_opts+=(--dpkgopt="path-exclude=${path}"); done
dpkg_opts+=(--dpkgopt='path-include=/usr/share/doc/*/copyright' --dpkgopt=force-unsafe-io)
clean_cmd='rm -f /var/cache/apt/archives/*.deb /var/cache/apt/archives/partial/*.deb /var/cache/apt/*.bin || true'
# shellcheck disable=SC2016  # $1 is mmdebstrap's: the root being made
mmdebstrap --quiet --variant=minbase \
    --include=python3,python3-venv,python3-pip,python-is-python3,ca-certificates,netbase,tzdata \
    "${dpkg_opts[@]}" \
    --customize-hook='chroot "$1" sh -c "cd /tmp && apt-get download -qq -o APT::Sandbox::User=root libpython3.11-dev && dpkg-deb -x libpython3.11-dev_*.deb /tmp/dev && cp -a /tmp/dev/usr/include/. /usr/include/ && rm -rf /tmp/dev /tmp/*.deb"' \
    --customize-hook="printf '%s\n' 'DPkg::Post-Invoke { \"${clean_cmd}\"; };' 'APT::Update::Post-Invoke { \"${clean_cmd}\"; };' 'Dir::Cache::pkgcache \"\";' 'Dir::Cache::srcpkgcache \"\";' >\"\$1/etc/apt/apt.conf.d/docker-clean\"" \
    --customize-hook='printf "%s\n" "Acquire::Languages \"none\";" >"$1/etc/apt/apt.conf.d/docker-no-languages"' \
    --customize-hook='printf "%s\n" "Acquire::GzipIndexes \"true\";" >"$1/etc/apt/apt.conf.d/docker-gzip-indexes"' \
    bookworm "$WORK/base.tar" "$MIRROR" >"$LOGS/base.log" 2>&1 || fail "mmdebstrap failed" "$LOGS/base.log"
podman "${STORE[@]}" import --quiet \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV LANG=C.UTF-8' --change 'CMD ["python3"]' \
    "$WORK/base.tar" "$BASE_IMAGE" >>"$LOGS/base.log" 2>&1 || fail "podman import failed" "$LOGS/base.log"
base_bytes=$(podman "${STORE[@]}" image inspect --format '{{.Size}}' "$BASE_IMAGE")
end_phase "base $((base_bytes / 1000000)) MB"

# ---------------------------------------------------------------------------------- build
start_phase build "buildah build -f ${DOCKERFILE}"
buildah "${STORE[@]}" build --isolation chroot --pull=never --layers=false \
    -f "$DOCKERFILE" -t "$IMAGE" . >"$LOGS/build.log" 2>&1 || fail "buildah build failed" "$LOGS/build.log"
image_bytes=$(podman "${STORE[@]}" image inspect --format '{{.Size}}' "$IMAGE")
own_mb=$(((image_bytes - base_bytes) / 1000000))
end_phase "the image's own layer: ${own_mb} MB over the base"
say "image ${IMAGE}: $((image_bytes / 1000000)) MB, of which the base $((base_bytes / 1000000)) MB and its own layer ${own_mb} MB"

mapfile -t ENTRYPOINT < <("${HELPER[@]}" entrypoint "$(buildah "${STORE[@]}" inspect --type image "$IMAGE")")
((${#ENTRYPOINT[@]})) || fail "the image has no ENTRYPOINT"

# ---------------------------------------------------------------------------------- containers
start_phase containers "two working containers (vfs copies the image for each)"
new_container() {
    buildah "${STORE[@]}" from --pull-never --name "$1" "$IMAGE" >>"$LOGS/containers.log" 2>&1 ||
        fail "buildah from ${1} failed" "$LOGS/containers.log"
}
CONTAINERS+=(higgs-check-a higgs-check-b)
new_container higgs-check-a &
pid_a=$!
new_container higgs-check-b &
pid_b=$!
wait "$pid_a" || fail "could not create the first container" "$LOGS/containers.log"
wait "$pid_b" || fail "could not create the second container" "$LOGS/containers.log"
end_phase "higgs-check-a, higgs-check-b"

start_phase size "what each part of the image's own layer costs"
mnt=$(buildah "${STORE[@]}" mount higgs-check-a)
"${HELPER[@]}" part-sizes --base-tar "$WORK/base.tar" --root "$mnt" | tee "$LOGS/size.log" | sed 's/^/[image-check]   /'
buildah "${STORE[@]}" umount higgs-check-a >/dev/null
end_phase "measured in the image's files"

ENV_ARGS=(
    --env MODEL_PATH=/runpod-volume/tiny/model --env TOKENIZER_PATH=/runpod-volume/tiny/tokenizer
    --env VOICES_DIR=/runpod-volume/tiny/voices --env HF_HUB_OFFLINE=1
    --env "PIP_CERT=$CA_IN" --env "REQUESTS_CA_BUNDLE=$CA_IN" --env "SSL_CERT_FILE=$CA_IN"
)
[[ -z "$TORCH_INDEX" ]] || ENV_ARGS+=(--env "TORCH_INDEX_URL=$TORCH_INDEX")

# start CONTAINER LOG [buildah run options...] -- [entrypoint arguments...]
# One start of the entrypoint, as a new worker: the volume bind-mounted, a fresh /tmp.
start() {
    local ctr=$1 log=$2 opts=()
    shift 2
    while (($#)) && [[ "$1" != -- ]]; do
        opts+=("$1")
        shift
    done
    shift
    buildah "${STORE[@]}" run --isolation chroot \
        --volume "$VOL:/runpod-volume" --volume "$CA_BUNDLE:$CA_IN:ro" \
        --mount type=tmpfs,destination=/tmp,tmpfs-mode=1777 \
        "${ENV_ARGS[@]}" "${opts[@]}" "$ctr" -- "${ENTRYPOINT[@]}" "$@" >"$log" 2>&1
}
# The environments published on the volume, with their inode (a reused one keeps it).
runtimes() { find "$VOL/higgs-worker/venvs" -mindepth 1 -maxdepth 1 -type d ! -name '.*' -printf '%f %i\n' 2>/dev/null | sort; }
job_answered() { # job_answered LOG: the runpod SDK's line for a finished --test_input job
    grep -q "completed successfully" "$1"
}

start_phase model "the tiny random-weight model on the volume (built since the base phase)"
wait "$MODEL_PID" || fail "could not build the tiny model" "$LOGS/model.log"
MODEL_PID=""
end_phase "$(du -sh "$VOL/tiny" | cut -f1), built in $(elapsed "$T_MODEL" "$(cat "$WORK/model.end")")s alongside"

# ---------------------------------------------------------------------------------- (1) + (3)
start_phase 1-first-start "empty volume: install the runtime, answer a --test_input job"
T1=$(date +%s.%N)
# shellcheck disable=SC2016  # $@ and $start_rc expand in the child shell; $WORK is spliced in here
setsid bash -c 'start_rc=0; "$@" || start_rc=$?; date +%s.%N >"'"$WORK"'/first.end"; echo "$start_rc" >"'"$WORK"'/first.rc"' \
    first-start buildah "${STORE[@]}" run --isolation chroot \
    --volume "$VOL:/runpod-volume" --volume "$CA_BUNDLE:$CA_IN:ro" \
    --mount type=tmpfs,destination=/tmp,tmpfs-mode=1777 \
    "${ENV_ARGS[@]}" higgs-check-a -- "${ENTRYPOINT[@]}" --test_input "$JOB" >"$LOGS/1-first-start.log" 2>&1 &
BG_PIDS+=($!)
# The second container starts once the first is installing: its venv folder on the volume exists.
for _ in $(seq 120); do
    [[ -d "$VOL/higgs-worker/venvs" || -f "$WORK/first.rc" ]] && break
    sleep 0.5
done
[[ ! -f "$WORK/first.rc" ]] || fail "the first start ended before it began installing (exit $(cat "$WORK/first.rc"))" "$LOGS/1-first-start.log"
[[ -d "$VOL/higgs-worker/venvs" ]] || fail "the first start made no runtime folder on the volume in 60s" "$LOGS/1-first-start.log"
sleep 3

PHASE=3-http-while-installing
say "phase ${PHASE}: WORKER_MODE=http, a second container started while the first installs"
T3=$(date +%s.%N)
PORT=$("${HELPER[@]}" free-port)
API_KEY=image-check-$RANDOM$RANDOM
setsid buildah "${STORE[@]}" run --isolation chroot \
    --volume "$VOL:/runpod-volume" --volume "$CA_BUNDLE:$CA_IN:ro" \
    --mount type=tmpfs,destination=/tmp,tmpfs-mode=1777 \
    "${ENV_ARGS[@]}" --env WORKER_MODE=http --env "PORT=$PORT" --env "PORT_HEALTH=$PORT" \
    --env "API_KEY=$API_KEY" --env RUNPOD_INIT_TIMEOUT=900 \
    higgs-check-b -- "${ENTRYPOINT[@]}" >"$LOGS/3-http.log" 2>&1 &
HTTP_PID=$!
BG_PIDS+=("$HTTP_PID")
"${HELPER[@]}" watch-http --port "$PORT" --api-key "$API_KEY" --venv-root "$VOL/higgs-worker/venvs" \
    --started-at "$T3" --first-rc-file "$WORK/first.rc" --timeout 540 --save "$WORK/speech.wav" \
    >"$LOGS/3-watch.log" 2>&1 || {
    cat "$LOGS/3-watch.log"
    fail "$(tail -n 1 "$LOGS/3-watch.log")" "$LOGS/3-http.log"
}
sed 's/^/[image-check]   /' "$LOGS/3-watch.log"
kill -TERM -- "-$HTTP_PID" 2>/dev/null || true
wait "$HTTP_PID" 2>/dev/null || true
RESULTS+=("3-http-while-installing"$'\t'"$(elapsed "$T3")"$'\t'"/ping 204 then 200; speech $(stat -c %s "$WORK/speech.wav") bytes of WAV")
say "phase 3-http-while-installing: ok in $(elapsed "$T3")s"

PHASE=1-first-start
while [[ ! -f "$WORK/first.rc" ]]; do
    (($(printf '%.0f' "$(elapsed "$T1")") < 540)) || fail "the first start did not end in 540s" "$LOGS/1-first-start.log"
    sleep 1
done
rc=$(cat "$WORK/first.rc")
((rc == 0)) || fail "the first start exited ${rc}" "$LOGS/1-first-start.log"
job_answered "$LOGS/1-first-start.log" || fail "no answered job in the first start's output" "$LOGS/1-first-start.log"
[[ $(runtimes | wc -l) == 1 ]] || fail "expected one runtime on the volume, found: $(runtimes | tr '\n' ' ')"
RUNTIME=$(runtimes)
end_phase "runtime ${RUNTIME%% *}, $(du -sh "$VOL/higgs-worker/venvs" | cut -f1) on the volume" "$(elapsed "$T1" "$(cat "$WORK/first.end")")"

# ---------------------------------------------------------------------------------- (2)
start_phase 2-second-start "a second start reuses the runtime"
start higgs-check-a "$LOGS/2-second-start.log" -- --test_input "$JOB" ||
    fail "the second start exited $?" "$LOGS/2-second-start.log"
job_answered "$LOGS/2-second-start.log" || fail "no answered job in the output" "$LOGS/2-second-start.log"
[[ "$(runtimes)" == "$RUNTIME" ]] || fail "the runtime was not reused: before '${RUNTIME}', now '$(runtimes | tr '\n' ' ')'"
end_phase "reused ${RUNTIME%% *}"

# ---------------------------------------------------------------------------------- (4)
start_phase 4-non-root "uid 1000:1000 (the volume writable for it, as RunPod needs)"
chmod 1777 "$VOL" "$VOL/higgs-worker" "$VOL/higgs-worker/venvs"
start higgs-check-a "$LOGS/4-non-root.log" --user 1000:1000 -- --test_input "$JOB" ||
    fail "the start under uid 1000 exited $?" "$LOGS/4-non-root.log"
job_answered "$LOGS/4-non-root.log" || fail "no answered job in the output" "$LOGS/4-non-root.log"
[[ "$(runtimes)" == "$RUNTIME" ]] || fail "the runtime was not reused: before '${RUNTIME}', now '$(runtimes | tr '\n' ' ')'"
end_phase "uid 1000 reused ${RUNTIME%% *}"

# ---------------------------------------------------------------------------------- (5)
start_phase 5-decode-compile "DECODE_COMPILE=true: the decode step compiled with the image's g++"
start higgs-check-a "$LOGS/5-decode-compile.log" --env DECODE_COMPILE=true -- --test_input "$JOB" ||
    fail "the DECODE_COMPILE=true start exited $?" "$LOGS/5-decode-compile.log"
job_answered "$LOGS/5-decode-compile.log" || fail "no answered job in the output" "$LOGS/5-decode-compile.log"
if grep -qF "$FALLBACK_LINE" "$LOGS/5-decode-compile.log"; then
    fail "the compiled decode step fell back to the plain step: $(grep -m1 -F "$FALLBACK_LINE" "$LOGS/5-decode-compile.log" | cut -c1-400)" "$LOGS/5-decode-compile.log"
fi
grep -qF "(compiled: [1]" "$LOGS/5-decode-compile.log" ||
    fail "the log does not say the decode step was compiled" "$LOGS/5-decode-compile.log"
bundles=$(find "$VOL/bosonai/compile-cache" -name '*.bundle' 2>/dev/null | wc -l)
end_phase "compiled at batch size 1; ${bundles} kernel bundle(s) saved to the volume"

#!/usr/bin/env bash
# GPU check: the gpu tests and the full-size benchmarks (random weights, no download) in one
# run of at most GPU_CHECK_BUDGET seconds (default 470, under the 8 minutes planned for it).
#
# On the lent GPU machine ('nvidia-h200': python3 3.12 with torch 2.11 and transformers
# 5.17, no pydantic/soundfile/runpod, no package registry), from a session that has one:
#   1. here, in the repository root:   bash scripts/gpu-wheels.sh     (~59 MiB into .whl/)
#   2. the device tool's run, with     carry [".whl"], timeout_s 540,
#      command                         bash scripts/gpu-check.sh
#   It costs about 10 of the session's 15 device minutes (start 1-2, the run at most 8,
#   the transfers); call give_back after it unless you rerun at once. The reply's tail
#   holds the summary table; $OUT brings back gpu-check.log, summary.txt, gpu-tests.xml and
#   one JSON file per benchmark. To rerun some sections only (e.g. with the time left):
#   GPU_CHECK_SECTIONS=concurrency,cold-start bash scripts/gpu-check.sh   (wheels always run)
#
# Sections, most valuable first; each runs under `timeout`, and a failing or timed-out
# section never stops the later ones. A section may run until the sum of its own and the
# earlier sections' caps (time an earlier one saved goes to the later ones):
#   wheels       (30 s) .whl/*.whl installed with --target into GPU_CHECK_SITE (/tmp/site),
#                       which then heads PYTHONPATH
#   nvidia-smi   (10 s) the GPU as the driver sees it
#   versions     (40 s) python, torch + CUDA, transformers (must be our pin), every carried
#                       package imported from the site, the worker's modules
#   gpu-tests   (150 s) pytest -m gpu tests/model/test_gpu_batching.py (bf16, compiled paths vs
#                       generate()); a skipped test counts as a failure here
#   batch-1      (80 s) python -m higgs_worker.devtools.bench --full-size-random --frames 200
#   concurrency (100 s) ... --frames 100 --concurrency 1,8,16,32
#   cold-start   (60 s) benchmarks/cold_start.py --phases --full-size-random --layers 4
#                       --tokens 60, MAX_CONCURRENCY=1 (one decode graph to compile)
# The caps are estimates (nothing here has run on the H200 yet): size them by the seconds
# column of the first device run's summary. Caps: GPU_CHECK_LIMIT_<SECTION> (e.g. GPU_CHECK_LIMIT_COLD_START=120); total:
# GPU_CHECK_BUDGET. Exit status: 0 when every section passed, else 1.
#
# GPU_CHECK_DRY=1 runs the same plumbing on a CPU with tiny sizes (the tiny model; the gpu
# tests skip, which is accepted there): tests/test_gpu_check_script.py runs it.
# Other knobs: PYTHON (default .venv/bin/python, else python3), GPU_CHECK_WHEELS (.whl;
# empty: none), GPU_CHECK_SITE (/tmp/site), OUT (results; default out/gpu-check).
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
export PYTHONUNBUFFERED=1

if [[ -n "${PYTHON:-}" ]]; then
    PY=$PYTHON
elif [[ -x .venv/bin/python ]]; then
    PY=.venv/bin/python
else
    PY=python3
fi
DRY=${GPU_CHECK_DRY:-0}
WHEELS=${GPU_CHECK_WHEELS-.whl}
export GPU_CHECK_SITE=${GPU_CHECK_SITE:-/tmp/site}
BUDGET=${GPU_CHECK_BUDGET:-470}
SECTIONS=${GPU_CHECK_SECTIONS:-wheels,nvidia-smi,versions,gpu-tests,batch-1,concurrency,cold-start}
RESULTS=${OUT:-out/gpu-check}
mkdir -p "$RESULTS"
LOG=$RESULTS/gpu-check.log
: >"$LOG"
PARTS=$(mktemp -d)
trap 'rm -rf "$PARTS"' EXIT

say() { printf '%s\n' "$*" | tee -a "$LOG"; }

names=() rcs=() secs=() caps=()
planned=0   # where the caps of the sections so far add up to, in seconds from the start
failed=0

# run_section NAME CAP CMD...: CMD under timeout, its output to the terminal, the log and
# $PARTS/NAME; records the exit status and the seconds it took.
run_section() {
    local name=$1 cap=$2 var
    shift 2
    [[ $name == wheels || ",$SECTIONS," == *",$name,"* ]] || return 0 # wheels: always, if any
    var=GPU_CHECK_LIMIT_${name^^}
    var=${var//-/_}
    cap=${!var:-$cap}
    planned=$((planned + cap))
    local until=$((planned < BUDGET ? planned : BUDGET))
    local limit=$((until - SECONDS)) start=$SECONDS rc
    say ""
    say "== $name (limit ${limit}s): $*"
    if ((limit < 5)); then
        say "no time left for $name"
        rc=none
    else
        timeout -k 5 "$limit" "$@" 2>&1 | tee "$PARTS/$name" | tee -a "$LOG"
        rc=${PIPESTATUS[0]}
        ((rc == 124 || rc == 137)) && say "$name: stopped at its limit of ${limit}s"
    fi
    record "$name" "$rc" $((SECONDS - start)) "$limit"
}

record() { # NAME RC SECONDS LIMIT
    names+=("$1") rcs+=("$2") secs+=("$3") caps+=("$4")
    [[ "$2" == 0 || "$2" == skip ]] || failed=$((failed + 1))
}

# The last JSON line a section printed, saved as $RESULTS/FILE.
save_json() { # NAME FILE
    [[ -f "$PARTS/$1" ]] || return 0
    local line
    line=$(grep '^{' "$PARTS/$1" | tail -n 1)
    [[ -n "$line" ]] && printf '%s\n' "$line" >"$RESULTS/$2"
}

# A section that must exit 0 and show no skipped test (on the GPU).
fail_on_skips() { # NAME
    local i=$((${#names[@]} - 1))
    [[ "${names[$i]:-}" == "$1" && "${rcs[$i]}" == 0 ]] || return 0
    if [[ "$DRY" != 1 ]] && grep -qE '[0-9]+ skipped|no tests ran' "$PARTS/$1"; then
        say "$1: tests were skipped (no CUDA?): counted as a failure"
        rcs[i]=1
        failed=$((failed + 1))
    fi
}

say "gpu-check $(date -u +%FT%TZ): python $PY, budget ${BUDGET}s, sections $SECTIONS, dry=$DRY, results in $RESULTS"

# -- wheels: the packages the image lacks, first on PYTHONPATH
shopt -s nullglob
wheel_files=()
[[ -n "$WHEELS" ]] && wheel_files=("$WHEELS"/*.whl)
if ((${#wheel_files[@]})); then
    run_section wheels 30 "$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir \
        --upgrade --target "$GPU_CHECK_SITE" "${wheel_files[@]}"
    if [[ "${rcs[-1]:-}" == 0 ]]; then
        export PYTHONPATH="$GPU_CHECK_SITE${PYTHONPATH:+:$PYTHONPATH}"
        say "PYTHONPATH=$PYTHONPATH"
    fi
else
    say "" "== wheels: none in '${WHEELS}' (bash scripts/gpu-wheels.sh makes them)"
    record wheels skip 0 0
fi

if [[ "$DRY" == 1 ]] && ! command -v nvidia-smi >/dev/null; then
    [[ ",$SECTIONS," == *",nvidia-smi,"* ]] && record nvidia-smi skip 0 0
else
    run_section nvidia-smi 10 nvidia-smi --query-gpu=name,driver_version,memory.total,memory.used,clocks.sm \
        --format=csv
fi

run_section versions 40 "$PY" scripts/gpu_check_env.py

run_section gpu-tests 150 "$PY" -m pytest tests/model/test_gpu_batching.py -m gpu -q -rs -p no:cacheprovider \
    --junitxml="$RESULTS/gpu-tests.xml"
fail_on_skips gpu-tests

if [[ "$DRY" == 1 ]]; then # the tiny model on the CPU
    batch1=(--device cpu --frames 8)
    concurrency=(--device cpu --frames 8 --concurrency "1,2")
    phases=(--tokens 8)
    phases_env=()
else
    batch1=(--full-size-random --frames 200)
    concurrency=(--full-size-random --frames 100 --concurrency "1,8,16,32")
    phases=(--full-size-random --layers 4 --tokens 60)
    phases_env=(MAX_CONCURRENCY=1)
fi
run_section batch-1 80 "$PY" -m higgs_worker.devtools.bench "${batch1[@]}"
save_json batch-1 bench-batch1.json
run_section concurrency 100 "$PY" -m higgs_worker.devtools.bench "${concurrency[@]}"
save_json concurrency bench-concurrency.json
run_section cold-start 60 env "${phases_env[@]}" "$PY" benchmarks/cold_start.py --phases "${phases[@]}"
save_json cold-start cold-start-phases.json

# -- summary (also $RESULTS/summary.txt): the reply's tail shows it
{
    echo ""
    printf '%-12s %6s %8s %8s  %s\n' section rc seconds limit result
    for i in "${!names[@]}"; do
        case "${rcs[$i]}" in
        0) verdict=ok ;;
        skip) verdict=skipped ;;
        124 | 137) verdict="FAILED (time limit)" ;;
        none) verdict="NOT RUN (no time left)" ;;
        *) verdict=FAILED ;;
        esac
        printf '%-12s %6s %8s %8s  %s\n' "${names[$i]}" "${rcs[$i]}" "${secs[$i]}" "${caps[$i]}" "$verdict"
    done
    echo "total ${SECONDS}s of a ${BUDGET}s budget; ${failed} section(s) failed; log: $LOG"
} | tee "$RESULTS/summary.txt" | tee -a "$LOG"
((failed == 0))

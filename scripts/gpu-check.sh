#!/usr/bin/env bash
# GPU check: the carried wheels and versions first, then every stage in ONE process
# (scripts/gpu_check.py: the private torch parts probed, a one-layer compile smoke, the
# full-size random-weight model built once in bf16 and warmed up once with 4 KV slots of 2048
# positions, then numerics, step cost, attention, batch-1, concurrency 1/4, shares and the mix;
# the warm-volume restart with GPU_CHECK_RESTART=1, the worker's sizes with GPU_CHECK_FULL=1),
# all within GPU_CHECK_BUDGET seconds (default 420; the stages' expected timeline, stage by
# stage: docs/gpu-check.md). Each stage is guarded: one that raises prints its error and the
# next one runs; stages not started by the budget are reported as skipped.
#
# On the lent GPU machine ('nvidia-h200': python3 3.12 with torch 2.11, triton 3.6 and
# transformers 5.17, no pydantic/soundfile, no package registry), from a session that has one:
#   1. here, in the repository root:   bash scripts/gpu-wheels.sh     (~18 MiB into .whl/)
#   2. the device tool's run, with     carry [".whl"], timeout_s 480,
#      command                         bash scripts/gpu-check.sh
#   About 10 of the session's 15 device minutes (start 1-2, the run at most 7, the transfers);
#   call give_back after it unless you rerun at once. The reply's tail holds the summary: one
#   row per section and one per stage, with seconds. $OUT brings back gpu-check.log,
#   stages.jsonl (one JSON line per stage: the figures) and summary.txt.
#
# Versions: the check runs the device's torch and triton (2.11 / 3.6), not our pins (2.9.1 /
# 3.5.1): their wheels (torch ~900 MB with its CUDA libraries) cannot be carried within a
# call's 64 MiB, and the machine reaches no registry. transformers is ours (5.24, carried).
# The versions section and the first stage line say what actually ran.
#
# Sections, in order (each under `timeout`; a section may run until the sum of its own and the
# earlier sections' caps):
#   wheels      (30 s) .whl/*.whl installed with --target into GPU_CHECK_SITE (/tmp/site),
#                      which then heads PYTHONPATH
#   nvidia-smi  (10 s) the GPU as the driver sees it
#   versions    (40 s) python, torch + CUDA, triton, transformers (must be our pin), every carried
#                      package imported from the site, the worker's modules
#   stages   (the rest) python scripts/gpu_check.py; each stage prints a JSON line when done
#   gpu-tests (off; GPU_CHECK_SECTIONS=...,gpu-tests) pytest -m gpu in a second process
# If wheels or versions fail, the check stops there with the reason (nothing after them could
# be trusted). Caps: GPU_CHECK_LIMIT_<SECTION> (e.g. GPU_CHECK_LIMIT_VERSIONS=60); total:
# GPU_CHECK_BUDGET. Exit status: 0 when every section passed, else 1.
#
# GPU_CHECK_DRY=1 runs the same script on a CPU with the tiny model and tiny sizes
# (tests/shipping/test_gpu_check_script.py). Other knobs: PYTHON (default .venv/bin/python, else
# python3), GPU_CHECK_WHEELS (.whl; empty: none), GPU_CHECK_SITE (/tmp/site), OUT (results;
# default out/gpu-check), GPU_CHECK_ARGS (extra arguments for gpu_check.py, e.g. --layers 8).
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
BUDGET=${GPU_CHECK_BUDGET:-420}
SECTIONS=${GPU_CHECK_SECTIONS:-wheels,nvidia-smi,versions,stages}
RESULTS=${OUT:-out/gpu-check}
mkdir -p "$RESULTS"
LOG=$RESULTS/gpu-check.log
STAGES=$RESULTS/stages.jsonl
: >"$LOG"
: >"$STAGES"
PARTS=$(mktemp -d)
trap 'rm -rf "$PARTS"' EXIT

say() { printf '%s\n' "$*" | tee -a "$LOG"; }

names=() rcs=() secs=() caps=()
planned=0 # where the caps of the sections so far add up to, in seconds from the start
failed=0
stopped=""

# run_section NAME CAP CMD...: CMD under timeout, its output to the terminal, the log and
# $PARTS/NAME; records the exit status and the seconds it took. CAP "rest": up to the budget.
run_section() {
    local name=$1 cap=$2 var
    shift 2
    [[ $name == wheels || ",$SECTIONS," == *",$name,"* ]] || return 0 # wheels: always, if any
    if [[ -n "$stopped" ]]; then
        record "$name" none 0 0
        return 0
    fi
    var=GPU_CHECK_LIMIT_${name^^}
    var=${var//-/_}
    [[ $cap == rest ]] && cap=$((BUDGET - planned))
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

# stop_unless_passed NAME WHY: a failed prerequisite stops the check with a clear message.
stop_unless_passed() {
    local i=$((${#names[@]} - 1))
    [[ "${names[$i]:-}" == "$1" && "${rcs[$i]}" != 0 && "${rcs[$i]}" != skip ]] || return 0
    stopped=$1
    say ""
    say "STOPPED: $1 failed ($2); the later sections did not run. The lines above say what failed."
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
    stop_unless_passed wheels "the carried wheels did not install"
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
stop_unless_passed versions "a carried package or the worker does not import, or transformers is not our pin"

# the stages skip what they cannot start before the section's limit (15 s left for the summary)
export GPU_CHECK_TIME_BUDGET=${GPU_CHECK_TIME_BUDGET:-$((BUDGET - SECONDS - 15))}
# shellcheck disable=SC2086 # GPU_CHECK_ARGS: extra arguments, word-split on purpose
run_section stages rest "$PY" scripts/gpu_check.py ${GPU_CHECK_ARGS:-}
[[ -f "$PARTS/stages" ]] && grep '^{"stage"' "$PARTS/stages" >"$STAGES"

run_section gpu-tests 200 "$PY" -m pytest tests/model/test_gpu_batching.py -m gpu -q -rs -p no:cacheprovider \
    --junitxml="$RESULTS/gpu-tests.xml"

# -- summary (also $RESULTS/summary.txt): the reply's tail shows it
{
    echo ""
    printf '%-12s %6s %8s %8s  %s\n' section rc seconds limit result
    for i in "${!names[@]}"; do
        case "${rcs[$i]}" in
        0) verdict=ok ;;
        skip) verdict=skipped ;;
        124 | 137) verdict="FAILED (time limit)" ;;
        none) verdict="NOT RUN" ;;
        *) verdict=FAILED ;;
        esac
        printf '%-12s %6s %8s %8s  %s\n' "${names[$i]}" "${rcs[$i]}" "${secs[$i]}" "${caps[$i]}" "$verdict"
    done
    if [[ -s "$STAGES" ]]; then
        echo ""
        "$PY" - "$STAGES" <<'PY'
import json, sys
print(f"{'stage':<13} {'seconds':>8} {'at':>8}  figure")


def mem(s):
    m = s.get("gpu_memory_gb")
    if not m:
        return ""
    plan = f" (plan {m['predicted']:.1f})" if "predicted" in m else ""
    return f"; reserved {m['reserved']:.1f} GB{plan}"


for line in open(sys.argv[1]):
    s = json.loads(line)
    figure = {
        "setup": lambda: f"torch {s['ran']['torch']}, triton {s['ran']['triton']}, transformers {s['ran']['transformers']}"
        + (f" (pins differ: {', '.join(s['differ_from_pins'])})" if s["differ_from_pins"] else ""),
        "warm-up": lambda: f"compiled buckets {s['compiled_buckets']} of {s['buckets']}, {s['graphs_compiled']} graphs, "
        f"{s['graphs']['cuda_graphs']} CUDA graphs, {s['slots']} x {s['slot_len']} slots, {s['fallbacks']} fallback(s)" + mem(s),
        "numerics": lambda: f"batched vs batch-1 max rel diff {s['teacher_forced_4_at_once']['max_rel_diff']:.2e}, "
        f"top-1 {s['teacher_forced_4_at_once']['min_top1_agreement']:.3f}; greedy = generate() for "
        f"{s['greedy_vs_generate']['leading_rows_equal']}/{s['greedy_vs_generate']['rows']} rows",
        "step-cost": lambda: f"ms/step, {s['slots']} busy (1) by live length: " + ", ".join(
            f"{n}: {v:.2f} ({s['ms_per_step']['one'][n]:.2f})" for n, v in s["ms_per_step"]["all_slots"].items()
        ),
        "attention": lambda: "; ".join(
            f"{mode} at live {h['length']}: packed SDPA {h['packed']:.3f} ms/layer vs repeat_kv over the cache "
            f"{h['before']:.3f}" for mode, h in s["headline"].items()
        ),
        "shares": lambda: "; ".join(
            f"{n}: " + ", ".join(f"{p} {v:.0%}" for p, v in row["share"].items() if v and v >= 0.05)
            for n, row in s["levels"].items()
        ),
        "mix": lambda: f"neighbours x{s['neighbours_ratio']:.2f} beside a long-form chunk "
        f"({s['long_form']['positions']} positions, {s['placed']} lane), total x"
        f"{s['with']['audio_s_per_s'] / s['without']['audio_s_per_s']:.2f}",
        "batch-1": lambda: f"RTF {s['engine']['rtf']:.3f} vs {s['reference']['rtf']:.3f}, first audio "
        f"{s['engine']['time_to_first_audio_s']:.2f}s vs {s['reference']['time_to_first_audio_s']:.2f}s",
        "concurrency": lambda: ", ".join(
            f"{n}: {v['concurrent']['audio_s_per_s']:.1f} audio s/s" for n, v in s["levels"].items()
        )
        + mem(s),
        "restart": lambda: f"2nd warm-up {s['second']['warmup_s']:.1f}s vs {s['first_warmup_s']:.1f}s "
        f"({s['second']['graphs_loaded']} loaded, {s['second']['graphs_compiled']} compiled)",
        "probe": lambda: "private torch parts: "
        + (f"MISSING {', '.join(s['missing'])}" if s["missing"] else f"all {len(s['present'])} present"),
        "compile-smoke": lambda: f"one layer: compiled {s['compiled_sizes']}, {s['fallbacks']} fallback(s), "
        f"warm-up {s['warmup_s']:.1f}s",
        "summary": lambda: ", ".join(f"{n} {r['status']}" for n, r in s["stages"].items()),
    }.get(s["stage"], lambda: "")
    if "error" in s:
        figure = lambda: f"ERROR {s['error'][:200]}"  # noqa: E731
    elif "skipped" in s:
        figure = lambda: f"skipped: {s['skipped']}"  # noqa: E731
    try:
        text = figure()
    except (KeyError, TypeError, ValueError) as exc:
        text = f"(figure not read: {exc!r})"
    print(f"{s['stage']:<13} {s['seconds']:>8} {s['elapsed_s']:>8}  {text}")
PY
    fi
    [[ -n "$stopped" ]] && echo "STOPPED after $stopped"
    echo "total ${SECONDS}s of a ${BUDGET}s budget; ${failed} section(s) failed; log: $LOG"
} | tee "$RESULTS/summary.txt" | tee -a "$LOG"
((failed == 0))

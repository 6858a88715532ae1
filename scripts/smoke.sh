#!/usr/bin/env bash
# The main job, locally: one text-to-speech job through handler.py's handler; the audio
# (and subtitles, when asked for) are written under out/ and a short summary is printed
# (scripts/smoke_summary.py). Without MODEL_PATH/TOKENIZER_PATH it builds and uses a tiny
# random-weight Higgs model (noise, not speech) so that the whole path runs on a CPU with
# no downloads. RunPod's own local mode prints the raw result instead:
#   .venv/bin/python handler.py --test_input '{"input": {"text": "Hello there."}}'
#   bash scripts/smoke.sh '{"input": {"text": "Hello there.", "subtitles": "srt"}}'
set -euo pipefail
cd "$(dirname "$0")/.."
DEFAULT_JOB='{"input": {"text": "Hello there.", "output_format": "mp3"}}'
JOB="${1:-$DEFAULT_JOB}"
bash scripts/setup-dev.sh
if [ -z "${MODEL_PATH:-}" ]; then
    if [ ! -f .tiny-models/model/config.json ]; then
        .venv/bin/python -m higgs_worker.devtools.tiny_model --out .tiny-models
    fi
    export MODEL_PATH="$PWD/.tiny-models/model" TOKENIZER_PATH="$PWD/.tiny-models/tokenizer"
    export VOICES_DIR="${VOICES_DIR:-$PWD/.tiny-models/voices}" DEVICE="${DEVICE:-cpu}"
fi
exec .venv/bin/python -u scripts/smoke_summary.py "$JOB"

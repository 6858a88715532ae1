#!/usr/bin/env bash
# Download into .whl/ (git-ignored) the wheels that scripts/gpu-check.sh needs on the lent
# GPU machine ('nvidia-h200': CPython 3.12 at /opt/torch/.venv with torch 2.11, no package
# registry reachable) and that its image lacks or holds at another version than ours.
# Run it HERE (a machine that reaches PyPI), then name ".whl" in the device call's carry
# (how: the header of scripts/gpu-check.sh). Prints the total size (the working tree plus
# the carried wheels must stay under 64 MiB).
#
# What the image already has and we rely on as it is (checked against transformers
# 5.24.0's Requires-Dist): huggingface_hub 1.33 (>=1.31,<3 wanted), tokenizers 0.23.2
# (>=0.23.1,<0.24), safetensors 0.8.0 (>=0.8.0), accelerate 1.15.0 (our pin), numpy,
# regex, typer, tqdm, pyyaml, packaging, filelock, pytest, aiohttp and requests.
set -euo pipefail
cd "$(dirname "$0")/.."
DEST=${1:-.whl}
PY=${PYTHON:-python3}

# Our pins: the version a requirements file pins (so the device runs what we ship).
pin() {
    local line
    line=$(grep -hiE "^$1==" requirements-runtime.txt requirements-dev.txt | head -n 1)
    [[ -n "$line" ]] || { echo "gpu-wheels: $1 is not pinned in requirements-*.txt" >&2; exit 1; }
    echo "${line%%[[:space:];#]*}"
}

wheels=(
    # transformers: the image has 5.17, we pin 5.24 (HiggsAudioV2 and the cache API we use)
    "$(pin transformers)"
    # settings and the request schema (higgs_worker/contract/config.py, schema.py, output.py)
    "$(pin pydantic)" pydantic-core==2.50.5 "$(pin pydantic-settings)" python-dotenv==1.2.4
    annotated-types==0.8.0 typing-inspection==0.4.5
    # pydantic 2.14 needs typing-extensions>=4.16.0; the image's version is not recorded
    typing-extensions==4.16.0
    # audio encode/decode (higgs_worker/audio/codecs.py, tests/conftest.py): libsndfile is in the wheel
    "$(pin soundfile)" cffi==2.1.1 pycparser==3.12
    # Opus and MP3 (higgs_worker/audio/lossy.py; the cold-start benchmark's jobs write mp3):
    # FFmpeg is in the wheel (abi3: the same file for 3.11 and 3.12, ~36 MB)
    "$(pin av)"
    # 'import runpod' in the start-phases benchmark's worker process, and what that import
    # loads that the image lacks (aiodns/pycares are optional for aiohttp: left out)
    "$(pin runpod)" aiohttp-retry==2.9.1 backoff==2.2.1 paramiko==5.1.0 cryptography==50.0.2
    bcrypt==5.0.0 pynacl==1.6.2 invoke==3.0.3 tomli==2.5.0 tomlkit==0.15.2 tqdm-loggable==0.4.1
)

platforms=()
for tag in manylinux_2_35 manylinux_2_34 manylinux_2_31 manylinux_2_28 manylinux_2_27 manylinux_2_24 \
    manylinux_2_17 manylinux2014 manylinux1; do
    platforms+=(--platform "${tag}_x86_64")
done

mkdir -p "$DEST"
rm -f "$DEST"/*.whl # one version of each: two would stop the install on the device
"$PY" -m pip download --quiet --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    "${platforms[@]}" -d "$DEST" "${wheels[@]}"

count=$(find "$DEST" -maxdepth 1 -type f -name '*.whl' | wc -l)
if ((count != ${#wheels[@]})); then
    echo "gpu-wheels: expected ${#wheels[@]} wheels, found $count in $DEST" >&2
    exit 1
fi
ls -1s --block-size=K "$DEST"/*.whl
echo "gpu-wheels: $count wheels, $(du -ch "$DEST"/*.whl | tail -n 1 | cut -f1) in $DEST"

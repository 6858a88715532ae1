#!/usr/bin/env bash
# Install the Debian packages the tests need (scripts/test-system-packages.txt, or the files given)
# that are not installed yet: with apt-get as root, or through sudo when it works without a
# password; otherwise stop with the list to install. Nothing to do when all are there.
set -euo pipefail
cd "$(dirname "$0")/.."
lists=("$@")
((${#lists[@]})) || lists=(scripts/test-system-packages.txt)
wanted=()
for list in "${lists[@]}"; do
    while read -r line; do
        line=${line%%#*}
        line=${line//[[:space:]]/}
        [[ -z "$line" ]] || wanted+=("$line")
    done <"$list"
done
missing=()
for pkg in "${wanted[@]}"; do
    status=$(dpkg-query -W -f='${db:Status-Status}' "$pkg" 2>/dev/null || true)
    [[ "$status" == installed ]] || missing+=("$pkg")
done
((${#missing[@]})) || exit 0
if [[ $(id -u) == 0 ]]; then
    as_root=()
elif command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then
    as_root=(sudo -n)
else
    echo "install-system-packages: the tests need these Debian packages, not installed here:" >&2
    echo "    ${missing[*]}" >&2
    echo "install them as root, then run the tests again:" >&2
    echo "    sudo apt-get update && sudo apt-get install -y --no-install-recommends ${missing[*]}" >&2
    exit 1
fi
if ! command -v apt-get >/dev/null 2>&1; then
    echo "install-system-packages: no apt-get here; install these packages (Debian names): ${missing[*]}" >&2
    exit 1
fi
echo "install-system-packages: installing ${missing[*]}"
"${as_root[@]}" apt-get update -qq
DEBIAN_FRONTEND=noninteractive "${as_root[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null

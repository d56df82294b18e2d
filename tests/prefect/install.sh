#!/usr/bin/env bash
# Creates a throwaway virtualenv at target/prefect/venv with Prefect 3 pinned,
# for the side-by-side benchmark in tests/prefect/. Quick when already done.
set -euo pipefail

PREFECT_VERSION="3.9.1"

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(cd "$here/../.." && pwd)"
venv="$root/target/prefect/venv"
python="${PYTHON:-python3}"

say() { echo "prefect-install: $*" >&2; }

if [[ -x "$venv/bin/python" ]]; then
    have="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("prefect"))' 2>/dev/null || true)"
    if [[ "$have" == "$PREFECT_VERSION" ]]; then
        say "prefect $have already in $venv; nothing to do"
        exit 0
    fi
    say "found ${have:-no prefect} in $venv; reinstalling"
    rm -rf "$venv"
fi

say "creating $venv with $("$python" --version 2>&1)"
mkdir -p "$(dirname "$venv")"
"$python" -m venv "$venv"
say "installing prefect==$PREFECT_VERSION with the versions in tests/prefect/constraints.txt"
"$venv/bin/python" -m pip install --quiet --disable-pip-version-check \
    -c "$here/constraints.txt" "prefect==$PREFECT_VERSION"
"$venv/bin/python" -c 'import prefect; print("prefect-install: prefect", prefect.__version__, "ok")' >&2

#!/usr/bin/env bash
# Installs the guest toolchains that weft's tests build Python components
# with into target/toolchains/ (idempotent; re-runs only check versions).
#
#   target/toolchains/venv   componentize-py (Python components)
set -euo pipefail

COMPONENTIZE_PY_VERSION=0.25.1

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/target/toolchains"
VENV="$DEST/venv"

die() { echo "toolchains/install.sh: error: $*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 not found (needed for componentize-py)"
mkdir -p "$DEST"

if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed (on Debian: apt-get install python3-venv)"
fi

installed="$("$VENV/bin/componentize-py" --version 2>/dev/null || true)"
if [ "$installed" = "componentize-py $COMPONENTIZE_PY_VERSION" ]; then
  echo "componentize-py $COMPONENTIZE_PY_VERSION: present"
else
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "componentize-py==$COMPONENTIZE_PY_VERSION" || die "pip install componentize-py==$COMPONENTIZE_PY_VERSION failed"
  echo "componentize-py $COMPONENTIZE_PY_VERSION: installed"
fi

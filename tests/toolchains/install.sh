#!/usr/bin/env bash
# Installs the guest toolchains that weft's tests build Python and JavaScript components
# with into target/toolchains/ (idempotent; re-runs only check versions).
#
#   target/toolchains/venv   componentize-py (Python components)
#   target/toolchains/node   componentize-js and esbuild (JavaScript components)
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

# --- Node: componentize-js (JavaScript components) + esbuild (the JS SDK's bundler)
COMPONENTIZE_JS_VERSION=0.23.0
ESBUILD_VERSION=0.28.2
NODE_PREFIX="$DEST/node"
command -v npm >/dev/null 2>&1 || die "npm not found (needed for componentize-js); install Node.js and npm"
nodever() {
  node -e 'try { console.log(require(process.argv[1] + "/package.json").version) } catch { }' \
    "$NODE_PREFIX/node_modules/$1" 2>/dev/null || true
}
if [ "$(nodever @bytecodealliance/componentize-js)" = "$COMPONENTIZE_JS_VERSION" ] \
   && [ "$(nodever esbuild)" = "$ESBUILD_VERSION" ] \
   && [ -d "$NODE_PREFIX/node_modules/@bytecodealliance/preview2-shim" ]; then
  echo "componentize-js $COMPONENTIZE_JS_VERSION, esbuild $ESBUILD_VERSION: present"
else
  mkdir -p "$NODE_PREFIX"
  # One install of both, so that neither prunes the other's dependencies.
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error \
    "@bytecodealliance/componentize-js@$COMPONENTIZE_JS_VERSION" "esbuild@$ESBUILD_VERSION" \
    || die "npm install componentize-js@$COMPONENTIZE_JS_VERSION esbuild@$ESBUILD_VERSION failed"
  echo "componentize-js $COMPONENTIZE_JS_VERSION, esbuild $ESBUILD_VERSION: installed"
fi

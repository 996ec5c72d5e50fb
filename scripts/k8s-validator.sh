#!/usr/bin/env bash
# Schema validation of Kubernetes manifests (what `quiver render` prints, and deploy/kserve) with
# maintained validators from npm: kubernetes-models and its KEDA, Knative and Gateway API
# packages, which check objects against the published schemas. Installed into a project-local
# folder (.cache/node), never globally.
#
#   scripts/k8s-validator.sh --install   install the validators (and npm from Debian if missing)
#   scripts/k8s-validator.sh FILE...     validate YAML/JSON files (multi-document, kind: List);
#                                        prints "ok KIND NAME" per object, exits 1 on any error
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
PREFIX=${QUIVER_NODE_PREFIX:-$ROOT/.cache/node}
# Pinned so that a schema change upstream shows up as a reviewed bump here.
PACKAGES=(
  kubernetes-models@5.1.0
  @kubernetes-models/keda@2.0.0
  @kubernetes-models/knative@4.0.0
  @kubernetes-models/gateway-api@2.0.0
  ajv@8.20.0
  yaml@2.9.1
)

installed() {
  for p in kubernetes-models @kubernetes-models/keda @kubernetes-models/knative \
           @kubernetes-models/gateway-api ajv yaml; do
    [ -f "$PREFIX/node_modules/$p/package.json" ] || return 1
  done
}

install_validators() {
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      echo "k8s-validator.sh: npm is missing; run as root or: apt-get install -y --no-install-recommends npm" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm
  fi
  if ! installed; then
    mkdir -p "$PREFIX"
    npm install --no-audit --no-fund --loglevel=error --prefix "$PREFIX" "${PACKAGES[@]}"
  fi
}

if [ "${1:-}" = "--install" ]; then
  install_validators
  exit 0
fi
if [ $# -lt 1 ]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
installed || install_validators >&2
exec node "$ROOT/scripts/k8s-validate.mjs" "$PREFIX/node_modules" "$@"

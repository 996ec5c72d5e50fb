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
. "$ROOT/scripts/node-packages.sh"
# Pinned so that a schema change upstream shows up as a reviewed bump here.
PACKAGES=(
  kubernetes-models@5.1.0
  @kubernetes-models/keda@2.0.0
  @kubernetes-models/knative@4.0.0
  @kubernetes-models/gateway-api@2.0.0
  ajv@8.20.0
  yaml@2.9.1
)

install_validators() { node_packages_install k8s-validator.sh "${PACKAGES[@]}"; }

if [ "${1:-}" = "--install" ]; then
  install_validators
  exit 0
fi
if [ $# -lt 1 ]; then
  sed -n '2,10p' "$0" >&2
  exit 2
fi
node_packages_installed "${PACKAGES[@]}" || install_validators >&2
exec node "$ROOT/scripts/k8s-validate.mjs" "$NODE_PREFIX/node_modules" "$@"

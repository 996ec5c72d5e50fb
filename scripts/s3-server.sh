#!/usr/bin/env bash
# s3rver (npm package), a real S3-protocol server, for the storage initializer's integration
# tests (tests/integration/test_storage.py). It is installed into a project-local folder, never
# globally.
#
#   scripts/s3-server.sh --install         install s3rver (and npm from Debian if missing)
#   scripts/s3-server.sh DATA_DIR [PORT]   run it on 127.0.0.1 (PORT 0 or absent: any free port);
#                                          prints "S3 server listening on 127.0.0.1:PORT", then
#                                          one JSON line per request: {"method","url","status"}
#
# Credentials: access key S3RVER, secret S3RVER (s3rver's built-in account). s3rver checks the
# access key id and the SigV4 header's form, not the signature itself.
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
. "$ROOT/scripts/node-packages.sh"
S3RVER=s3rver@3.7.1

install_s3rver() { node_packages_install s3-server.sh "$S3RVER"; }

if [ "${1:-}" = "--install" ]; then
  install_s3rver
  exit 0
fi
if [ $# -lt 1 ]; then
  sed -n '2,12p' "$0" >&2
  exit 2
fi
install_s3rver >&2
exec node "$ROOT/scripts/s3-server.js" "$NODE_PREFIX/node_modules/s3rver" "$1" "${2:-0}"

# Sourced by the scripts that run test tools from npm (s3-server.sh, k8s-validator.sh): installs
# pinned packages into a project-local folder, never globally, with Debian's npm when no npm is
# on PATH (a NodeSource node bundles its own, which Debian's package would conflict with).
#
#   NODE_PREFIX                          where they go ($QUIVER_NODE_PREFIX or .cache/node)
#   node_packages_installed PKG@VER...   true when every package is there
#   node_packages_install CALLER PKG@VER...  installs the missing ones; CALLER names the script
#                                            in errors
NODE_PREFIX=${QUIVER_NODE_PREFIX:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/.cache/node}

node_packages_installed() {
  local spec
  for spec in "$@"; do
    # "@scope/name@1.2.3" → "@scope/name"
    [ -f "$NODE_PREFIX/node_modules/${spec%@*}/package.json" ] || return 1
  done
}

node_packages_install() {
  local caller=$1
  shift
  if ! command -v npm >/dev/null 2>&1; then
    if [ "$(id -u)" != 0 ]; then
      echo "$caller: npm is missing; run as root or: apt-get install -y --no-install-recommends npm" >&2
      exit 1
    fi
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends npm
  fi
  if ! node_packages_installed "$@"; then
    mkdir -p "$NODE_PREFIX"
    npm install --no-audit --no-fund --loglevel=error --prefix "$NODE_PREFIX" "$@"
  fi
}

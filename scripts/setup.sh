#!/usr/bin/env bash
# Installs what Quiver needs on Debian 12 (as root), skipping packages already present, then
# configures and builds. Usage: scripts/setup.sh [--test] [--bench] [--no-build]
#   --test   also the packages the test suite uses (pytest, requests, xgboost for Python;
#            prometheus for promtool and a real Prometheus scraping /metrics; s3rver, a real
#            S3-protocol server, from the npm registry into .cache/node, with Debian's npm
#            installed only when no npm is on PATH: a nodejs that bundles npm conflicts with it)
#   --bench  also the load generator and the nginx baseline used by bench/
set -euo pipefail
cd "$(dirname "$0")/.."

build_packages=(cmake ninja-build g++ pkg-config libboost-dev libsimdjson-dev libyaml-cpp-dev
  libspdlog-dev libcli11-dev libgtest-dev libgmock-dev libxgboost-dev libgrpc++-dev libprotobuf-dev
  protobuf-compiler protobuf-compiler-grpc libopencv-dev libtorch-dev libpython3.11-dev
  libcurl4-openssl-dev nlohmann-json3-dev libsqlite3-dev libarchive-dev)
# What models need at serving time: the Python runtime's workers import numpy, and scikit-learn
# models are unpickled with joblib. libcurl4: trace export and payload-log sinks load it on first
# use (the -dev package brings it too; named for the runtime image).
runtime_packages=(python3 python3-numpy python3-sklearn python3-joblib libcurl4)
test_packages=(python3 python3-pytest python3-requests python3-numpy python3-xgboost python3-grpcio
  python3-protobuf python3-torch python3-sklearn python3-joblib python3-yaml curl procps prometheus)
# python3-xgboost/numpy: bench/batching_bench.py's in-process baseline; python3-grpcio/protobuf:
# bench/protocol_bench.py's gRPC answer check; binutils (nm, readelf): its batch-size uprobe.
bench_packages=(wrk nginx-light util-linux curl python3-xgboost python3-numpy python3-grpcio
  python3-protobuf binutils)

want=("${build_packages[@]}" "${runtime_packages[@]}")
build=1
tests=0
for arg in "$@"; do
  case "$arg" in
    --test) want+=("${test_packages[@]}"); tests=1 ;;
    --bench) want+=("${bench_packages[@]}") ;;
    --no-build) build=0 ;;
    *) echo "setup.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done

missing=()
for p in "${want[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "setup.sh: installing ${missing[*]}"
  if [ "$(id -u)" -ne 0 ]; then
    echo "setup.sh: these packages are missing and installing them needs root: ${missing[*]}" >&2
    exit 1
  fi
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

if [ "$tests" = 1 ]; then
  scripts/s3-server.sh --install
  scripts/k8s-validator.sh --install
fi

if [ "$build" = 1 ]; then
  cmake --preset default >/dev/null
  cmake --build --preset default
fi

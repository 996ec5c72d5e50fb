#!/usr/bin/env bash
# Runs every test: installs what is missing, builds, runs the unit and integration suites, then
# the unit tests again under AddressSanitizer+UBSan and ThreadSanitizer.
# Usage: scripts/test.sh [--no-sanitizers]
set -euo pipefail
cd "$(dirname "$0")/.."
sanitizers=1
for arg in "$@"; do
  case "$arg" in
    --no-sanitizers) sanitizers=0 ;;
    *) echo "test.sh: unknown argument '$arg'" >&2; exit 2 ;;
  esac
done
scripts/setup.sh --test
ctest --preset default -j2
if [ "$sanitizers" = 1 ]; then
  for preset in asan tsan; do
    cmake --preset "$preset" >/dev/null
    cmake --build --preset "$preset" --target unit_tests
    ctest --preset "$preset" -j2
  done
fi

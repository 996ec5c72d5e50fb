#!/usr/bin/env bash
# The main job: installs what is missing, builds, starts the local control plane (`quiver up`)
# with KServe's example InferenceServices applied (examples/inferenceservices: sklearn-iris on
# V1, xgboost-iris on V2, a transformer in front of a predictor), waits until they are ready and
# prints curl lines that call them through the gateway on :8080 (or $PORT). Ctrl-C stops the
# daemon, which drains and stops the replicas. State (resources, model cache, replica logs) is
# kept in $QUIVER_STATE_DIR (default ~/.quiver).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
port="${PORT:-8080}"
export QUIVER_STATE_DIR="${QUIVER_STATE_DIR:-$HOME/.quiver}"
quiver=build/bin/quiver

out=$(mktemp)
"$quiver" up --gateway-port "$port" >"$out" &
daemon=$!
trap 'kill -TERM "$daemon" 2>/dev/null; wait "$daemon"; rm -f "$out"' EXIT
trap 'exit 0' INT TERM
for _ in $(seq 300); do
  grep -q "gateway listening" "$out" && break
  kill -0 "$daemon" 2>/dev/null || { cat "$out"; echo "quiver up did not start" >&2; exit 1; }
  sleep 0.1
done
cat "$out"

echo "Waiting for the services to be ready (replica logs: $QUIVER_STATE_DIR/logs) ..."
"$quiver" apply -f examples/inferenceservices/ --wait 300
"$quiver" get isvc

cat <<MSG

Call them through the gateway (by Host header, as with KServe's ingress, or by the path form):
  curl -s -H 'Host: sklearn-iris.default.example.com' -d '{"instances": [[6.8, 2.8, 4.8, 1.4]]}' localhost:${port}/v1/models/sklearn-iris:predict
  curl -s -d @examples/requests/xgboost-iris.json localhost:${port}/serving/default/xgboost-iris/v2/models/xgboost-iris/infer
  curl -s -H 'Host: iris-pipeline.default.example.com' -d '{"instances": [{"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8, "petal_width": 1.4}]}' localhost:${port}/v1/models/iris-pipeline:predict
Inspect them: $quiver get isvc, $quiver describe isvc sklearn-iris, $quiver logs isvc/sklearn-iris
Stop with Ctrl-C.

MSG
wait "$daemon"

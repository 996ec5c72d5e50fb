#!/usr/bin/env bash
# The main job: installs what is missing, builds, and serves the example model repository
# (a model per runtime: XGBoost, TorchScript, ONNX, scikit-learn, custom Python; plus the
# built-in echo, add_sub and sleep) on port 8080 (or $PORT).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh
port="${PORT:-8080}"
cat <<MSG

Serving examples/models on http://localhost:${port}. Try, from another shell:
  curl -s -H 'Content-Type: application/json' -d @examples/requests/xgboost-iris.json http://localhost:${port}/v2/models/xgboost-iris/infer
  curl -s -H 'Content-Type: application/json' -d @examples/requests/add_sub.json http://localhost:${port}/v2/models/add_sub/infer
  curl -s -d '{"instances": [[6.8, 2.8, 4.8, 1.4]]}' http://localhost:${port}/v1/models/sklearn-iris:predict
  curl -s -d '{"instances": [[6.8, 2.8, 4.8, 1.4]]}' http://localhost:${port}/v1/models/custom-example:predict
Stop with Ctrl-C (in-flight requests finish first).

MSG
exec build/bin/quiver serve --model-repository examples/models --http-port "${port}"

"""`quiver up` end to end: the daemon, its API and the CLI, real replicas behind the gateway.

KServe's documentation examples (sklearn-iris on V1, xgboost-iris on V2, a custom Python
predictor, a transformer in front of a predictor) are applied with `quiver apply`, become ready,
and answer through the gateway by Host header and by the path form. Models come from local paths
and from http:// (a real HTTP server started here). Fault tests: a replica killed with kill -9
is replaced, the daemon killed with kill -9 and restarted loses nothing and adopts its replicas,
and a bad file, a missing model and an unreachable URI each end in a clear error or condition
while the other services keep serving.
"""
import http.server
import json
import os
import pathlib
import re
import signal
import tarfile
import threading
import time

import pytest
import requests

from storage_servers import S3RVER_KEY, S3RVER_SECRET, S3rver
from up_helpers import (EXAMPLES, IRIS_ROW, cmdline, condition, daemon,  # noqa: F401 (fixture)
                        isvc_yaml, replica_pids, v2_iris_body)


@pytest.fixture(scope="module")
def http_models(tmp_path_factory):
    """A real HTTP server with the xgboost-iris model as a .tar.gz and a plain file."""
    root = tmp_path_factory.mktemp("http-models")
    with tarfile.open(root / "xgboost-iris.tar.gz", "w:gz") as tar:
        tar.add(EXAMPLES / "models" / "xgboost-iris" / "model.json", arcname="model.json")
    handler = lambda *a, **kw: http.server.SimpleHTTPRequestHandler(  # noqa: E731
        *a, directory=str(root), **kw)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()


def test_kserve_examples_serve_through_the_gateway(daemon):
    d = daemon()
    out = d.cli("apply", "-f", str(EXAMPLES / "inferenceservices" / "sklearn-iris.yaml"),
                "-f", str(EXAMPLES / "inferenceservices" / "xgboost-iris.yaml")).stdout
    assert "inferenceservice.serving.kserve.io/sklearn-iris created" in out
    assert "inferenceservice.serving.kserve.io/xgboost-iris created" in out
    sk = d.wait_ready("sklearn-iris")
    d.wait_ready("xgboost-iris")
    status = sk["status"]
    assert status["url"] == "http://sklearn-iris.default.example.com"
    predictor = status["components"]["predictor"]
    assert predictor["latestReadyRevision"] == "sklearn-iris-predictor-00001"
    assert predictor["traffic"] == [{"revisionName": "sklearn-iris-predictor-00001",
                                     "percent": 100, "latestRevision": True}]
    assert status["modelStatus"]["transitionStatus"] == "UpToDate"

    # V1 through the Host header, as a KServe user calls the ingress.
    r = d.post("sklearn-iris.default.example.com", "/v1/models/sklearn-iris:predict",
               {"instances": [IRIS_ROW, [5.1, 3.5, 1.4, 0.2]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [1, 0]}
    # V2 through the path form.
    r = requests.post(d.gateway + "/serving/default/xgboost-iris/v2/models/xgboost-iris/infer",
                      json=v2_iris_body(), timeout=30)
    assert r.status_code == 200, r.text
    out = r.json()["outputs"][0]
    assert out["shape"][0] == 1 and len(out["data"]) >= 1

    table = d.cli("get", "isvc").stdout
    assert re.search(r"^NAME\s+URL\s+READY", table, re.M), table
    assert re.search(r"^sklearn-iris\s+http://sklearn-iris\.default\.example\.com\s+True",
                     table, re.M), table
    # Unknown service: 404; the API listing has both.
    r = d.post("nope.default.example.com", "/v1/models/nope:predict", {"instances": []})
    assert r.status_code == 404
    listed = json.loads(d.cli("get", "isvc", "-o", "json").stdout)
    assert sorted(i["metadata"]["name"] for i in listed["items"]) == ["sklearn-iris",
                                                                      "xgboost-iris"]


def test_transformer_in_front_of_a_predictor_and_a_custom_predictor(daemon):
    d = daemon()
    d.cli("apply", "-f", str(EXAMPLES / "inferenceservices" / "iris-transformer.yaml"))
    d.cli("apply", "-f", "-", input=isvc_yaml(
        "custom-example", "custom", str(EXAMPLES / "models" / "custom-example")))
    doc = d.wait_ready("iris-pipeline")
    assert condition(doc, "TransformerReady") == "True"
    assert condition(doc, "PredictorReady") == "True"
    r = d.post("iris-pipeline.default.example.com", "/v1/models/iris-pipeline:predict",
               {"instances": [{"sepal_length": 6.8, "sepal_width": 2.8, "petal_length": 4.8,
                               "petal_width": 1.4}]})
    assert r.status_code == 200, r.text + d.log
    assert r.json() == {"predictions": [1], "species": ["versicolor"]}
    # A request the transformer rejects comes back as its error, not the predictor's.
    r = d.post("iris-pipeline.default.example.com", "/v1/models/iris-pipeline:predict",
               {"instances": [{"sepal_length": 6.8}]})
    assert r.status_code == 400 and "missing" in r.text

    d.wait_ready("custom-example")
    r = d.post("custom-example.default.example.com", "/v1/models/custom-example:predict",
               {"instances": [[5.1, 3.5, 1.4, 0.2]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [0], "labels": ["setosa"]}


def test_http_storage_and_a_changed_spec_makes_a_new_revision(daemon, http_models):
    d = daemon()
    out = d.cli("apply", "-f", "-", "--wait", "120", input=isvc_yaml(
        "xgb-http", "xgboost", http_models + "/xgboost-iris.tar.gz", "v2")).stdout
    # --wait shows the progress and ends when the service is ready.
    assert "inferenceservice.serving.kserve.io/xgb-http created" in out
    assert out.rstrip().endswith(
        "inferenceservice.serving.kserve.io/xgb-http ready at "
        "http://xgb-http.default.example.com"), out
    assert condition(d.isvc("xgb-http"), "Ready") == "True"
    r = d.post("xgb-http.default.example.com", "/v2/models/xgb-http/infer", v2_iris_body())
    assert r.status_code == 200, r.text
    # The same URI again is served from the cache (no second download).
    assert any(p.is_dir() for p in (d.state_dir / "models").rglob("*")), "no model cache"

    # A new spec (minReplicas 2) is a new revision; traffic moves once it is ready.
    d.cli("apply", "-f", "-", input=isvc_yaml("xgb-http", "xgboost",
                                               http_models + "/xgboost-iris.tar.gz", "v2",
                                               extra="\n    minReplicas: 2"))
    doc = d.wait_condition(
        "xgb-http",
        lambda doc: doc["status"].get("components", {}).get("predictor", {}).get(
            "latestReadyRevision") == "xgb-http-predictor-00002", "revision 2 ready")
    p = doc["status"]["components"]["predictor"]
    assert p["latestRolledoutRevision"] == "xgb-http-predictor-00002"
    assert p["previousRolledoutRevision"] == "xgb-http-predictor-00001"
    for _ in range(10):
        r = d.post("xgb-http.default.example.com", "/v2/models/xgb-http/infer", v2_iris_body())
        assert r.status_code == 200, r.text
    # Revision 1's replica is drained and stopped; revision 2 has two.
    deadline = time.time() + 60
    while time.time() < deadline:
        cmds = [cmdline(p) for p in replica_pids(d.proc.pid)]
        if len(cmds) == 2:
            break
        time.sleep(0.2)
    assert len(cmds) == 2, cmds


def test_replica_killed_is_replaced_and_daemon_restart_loses_nothing(daemon, tmp_path):
    d = daemon()
    d.cli("apply", "-f", str(EXAMPLES / "inferenceservices" / "sklearn-iris.yaml"))
    before = d.wait_ready("sklearn-iris")
    pids = replica_pids(d.proc.pid)
    assert len(pids) == 1, pids
    os.kill(pids[0], signal.SIGKILL)
    # The supervisor restarts it; the service answers again.
    deadline = time.time() + 60
    ok = False
    while time.time() < deadline:
        new = [p for p in replica_pids(d.proc.pid) if p != pids[0]]
        try:
            r = d.post("sklearn-iris.default.example.com", "/v1/models/sklearn-iris:predict",
                       {"instances": [IRIS_ROW]}, timeout=5)
            ok = new and r.status_code == 200
        except requests.RequestException:
            ok = False
        if ok:
            break
        time.sleep(0.2)
    assert ok, d.log
    events = d.cli("describe", "isvc", "sklearn-iris").stdout
    assert "ReplicaFailed" in events, events

    # kill -9 the daemon: the replica keeps running and the next daemon adopts it.
    replica = replica_pids(d.proc.pid)
    d.kill()
    assert all(pathlib.Path(f"/proc/{p}").exists() for p in replica)
    d2 = daemon(state_dir=d.state_dir)
    after = d2.wait_ready("sklearn-iris")
    assert after["metadata"]["uid"] == before["metadata"]["uid"]
    assert after["metadata"]["creationTimestamp"] == before["metadata"]["creationTimestamp"]
    # The new gateway routes to the adopted replica once its readiness probe passes (the status
    # read back from the store may say Ready a moment before that).
    deadline = time.time() + 30
    while True:
        r = d2.post("sklearn-iris.default.example.com", "/v1/models/sklearn-iris:predict",
                    {"instances": [IRIS_ROW]})
        if r.status_code == 200 or time.time() > deadline:
            break
        time.sleep(0.1)
    assert r.status_code == 200, r.text + d2.log
    assert all(pathlib.Path(f"/proc/{p}").exists() for p in replica), "replica was not adopted"
    assert "adopted replica" in d2.log

    # Deleting the service stops its replica.
    d2.cli("delete", "isvc", "sklearn-iris")
    deadline = time.time() + 60
    while time.time() < deadline and any(pathlib.Path(f"/proc/{p}").exists() and
                                         "sklearn" in cmdline(p) for p in replica):
        time.sleep(0.2)
    assert not any(pathlib.Path(f"/proc/{p}").exists() and "sklearn" in cmdline(p)
                   for p in replica)
    r = d2.post("sklearn-iris.default.example.com", "/v1/models/sklearn-iris:predict",
                {"instances": [IRIS_ROW]})
    assert r.status_code == 404


def test_bad_inputs_fail_clearly_and_others_keep_serving(daemon, tmp_path):
    d = daemon()
    d.cli("apply", "-f", str(EXAMPLES / "inferenceservices" / "sklearn-iris.yaml"))
    d.wait_ready("sklearn-iris")

    bad = tmp_path / "bad.yaml"
    bad.write_text("apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
                   "metadata:\n  name: bad\nspec:\n  predictor:\n    minReplicas: -1\n"
                   "    model: {modelFormat: {name: sklearn}, storageUri: /tmp}\n")
    r = d.cli("apply", "-f", str(bad), check=False)
    assert r.returncode != 0
    assert "spec.predictor.minReplicas" in r.stderr + r.stdout

    broken = tmp_path / "broken.yaml"
    broken.write_text("kind: InferenceService\nmetadata: [unclosed\n")
    r = d.cli("apply", "-f", str(broken), check=False)
    assert r.returncode != 0
    assert "broken.yaml" in r.stderr and "line" in r.stderr, r.stderr

    # A model folder without the model file: the replica cannot load it.
    empty = tmp_path / "empty-model"
    empty.mkdir()
    d.cli("apply", "-f", "-", input=isvc_yaml("missing-model", "sklearn", str(empty)))
    # An unreachable URI: the storage initializer fails and says why.
    d.cli("apply", "-f", "-", input=isvc_yaml("unreachable", "xgboost",
                                               "http://127.0.0.1:1/model.tar.gz", "v2"))
    doc = d.wait_condition(
        "unreachable",
        lambda doc: any(c.get("reason") == "StorageInitializerFailed"
                        for c in doc.get("status", {}).get("conditions", [])),
        "StorageInitializerFailed")
    message = [c for c in doc["status"]["conditions"] if c["type"] == "PredictorReady"][0]
    assert "127.0.0.1:1" in message["message"], message
    doc = d.wait_condition(
        "missing-model",
        lambda doc: doc.get("status", {}).get("modelStatus", {}).get("lastFailureInfo"),
        "a failure recorded")
    assert condition(doc, "Ready") == "False"
    failure = doc["status"]["modelStatus"]["lastFailureInfo"]
    assert "joblib" in failure["message"] or "model" in failure["message"], failure
    r = d.post("missing-model.default.example.com", "/v1/models/missing-model:predict",
               {"instances": [IRIS_ROW]})
    assert r.status_code == 503, r.text
    # The first service never noticed.
    r = d.post("sklearn-iris.default.example.com", "/v1/models/sklearn-iris:predict",
               {"instances": [IRIS_ROW]})
    assert r.status_code == 200


def test_s3_storage_from_a_real_s3_server_is_downloaded_once(daemon):
    s3 = S3rver()
    try:
        status, body = s3.request("PUT", "/models")
        assert status == 200, body
        model = (EXAMPLES / "models" / "xgboost-iris" / "model.json").read_bytes()
        status, body = s3.request("PUT", "/models/xgboost-iris/model.json", model)
        assert status == 200, body
        # KServe's storage reads these variables; `quiver up` passes them to its initializer.
        d = daemon(env={"AWS_ACCESS_KEY_ID": S3RVER_KEY, "AWS_SECRET_ACCESS_KEY": S3RVER_SECRET,
                        "AWS_ENDPOINT_URL": s3.endpoint, "AWS_DEFAULT_REGION": "us-east-1"})
        for name in ("xgb-s3", "xgb-s3-again"):
            d.cli("apply", "-f", "-", input=isvc_yaml(name, "xgboost", "s3://models/xgboost-iris",
                                                        "v2"))
            d.wait_ready(name)
            r = d.post(f"{name}.default.example.com", f"/v2/models/{name}/infer", v2_iris_body())
            assert r.status_code == 200, r.text
        s3.sync()
        gets = [e for e in s3.entries() if e["method"] == "GET" and "list-type=2" not in e["url"]
                and "model.json" in e["url"]]
        assert len(gets) == 1, gets  # the second service used the cache

        # A bucket that does not exist: a clear condition naming it.
        d.cli("apply", "-f", "-", input=isvc_yaml("xgb-nobucket", "xgboost",
                                                   "s3://no-such-bucket/model", "v2"))
        doc = d.wait_condition(
            "xgb-nobucket",
            lambda doc: any(c.get("reason") == "StorageInitializerFailed"
                            for c in doc.get("status", {}).get("conditions", [])),
            "StorageInitializerFailed")
        message = [c for c in doc["status"]["conditions"] if c["type"] == "PredictorReady"][0]
        assert "no-such-bucket" in message["message"], message
    finally:
        s3.stop()

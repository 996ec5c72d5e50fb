"""Canary rollouts, tag routing and request-driven autoscaling in `quiver up`, end to end.

KServe's canary semantics (canaryTrafficPercent, promote by removing it, roll back with 0) are
checked through the gateway with real replicas: two revisions that answer differently (an
sklearn model answers a class, an XGBoost model class probabilities), a 10% split measured over
2,000 requests against the binomial bound, the latest-/prev- tag hosts, and status fields as
KServe writes them. Every transition runs under a steady load from `quiver bench`, which must
see no failed request. Autoscaling: a revision scales up under load and back down without
failing a request, goes to zero when idle, and answers a burst of 50 requests sent to it at zero.
"""
import concurrent.futures
import json
import math
import subprocess
import time

import requests

from conftest import QUIVER_BIN
from up_helpers import EXAMPLES, IRIS_ROW, condition, daemon, replica_pids, cmdline  # noqa: F401

SKLEARN = EXAMPLES / "models" / "sklearn-iris"
XGBOOST = EXAMPLES / "models" / "xgboost-iris"


def isvc(name, model_format, model_dir, canary=None, annotations=None, extra=""):
    meta = ""
    if annotations:
        meta = "\n  annotations:" + "".join(f'\n    {k}: "{v}"' for k, v in annotations.items())
    canary_line = f"\n    canaryTrafficPercent: {canary}" if canary is not None else ""
    return f"""apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}{meta}
spec:
  predictor:{canary_line}{extra}
    model:
      modelFormat:
        name: {model_format}
      storageUri: {model_dir}
"""


def which_revision(response):
    """'sklearn' answers a class, 'xgboost' the class probabilities."""
    assert response.status_code == 200, response.text
    first = response.json()["predictions"][0]
    return "xgboost" if isinstance(first, list) else "sklearn"


def predict(session, gateway, host, name):
    return session.post(f"{gateway}/v1/models/{name}:predict", json={"instances": [IRIS_ROW]},
                        headers={"Host": host}, timeout=60)


def predictor_status(d, name):
    return d.isvc(name).get("status", {}).get("components", {}).get("predictor", {})


def traffic_of(d, name):
    return [(t["revisionName"], t["percent"], t.get("tag")) for t in
            predictor_status(d, name).get("traffic", [])]


class Load:
    """`quiver bench` at a fixed concurrency (closed loop) or request rate (open loop) for a fixed
    number of 1 s windows, in the background; `finish()` waits for it and returns its report."""

    def __init__(self, d, name, tmp_path, seconds, concurrency=4, tag="load", rate=None):
        self.out = tmp_path / f"{tag}.json"
        level = (["--request-rate-range", str(rate)] if rate else
                 ["--concurrency-range", str(concurrency)])
        # -s 0.01: in practice never "stable", so it runs all its windows: a steady load for `seconds`.
        self.proc = subprocess.Popen(
            [QUIVER_BIN, "bench", "-m", name, "-u", f"{d.gateway}/serving/default/{name}",
             *level, "-p", "1000", "-r", str(seconds),
             "-s", "0.01", "--metrics-url", "none", "--request-timeout", "60000",
             "--json", str(self.out)],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def finish(self, d):
        stdout, stderr = self.proc.communicate(timeout=240)
        assert self.proc.returncode == 0, (f"quiver bench exit {self.proc.returncode}\n{stdout}\n"
                                           f"{stderr}\n--- daemon log ---\n{d.log[-6000:]}")
        report = json.loads(self.out.read_text())
        level = report["results"][0]
        assert level["errors"] == 0 and level["requests"] > 0, level
        return level


def binomial_bounds(n, p, z=3.291):
    """Two-sided 99.9% normal-approximation interval for a Binomial(n, p) count."""
    mean = n * p
    sd = math.sqrt(n * p * (1 - p))
    return mean - z * sd, mean + z * sd


def test_canary_promote_rollback_and_tag_routes_under_load(daemon, tmp_path):
    d = daemon()
    name = "iris"
    tags = {"serving.kserve.io/enable-tag-routing": "true"}
    rev1, rev2 = f"{name}-predictor-00001", f"{name}-predictor-00002"
    d.cli("apply", "-f", "-", input=isvc(name, "sklearn", SKLEARN, annotations=tags))
    d.wait_ready(name)
    st = predictor_status(d, name)
    assert st["latestRolledoutRevision"] == rev1
    assert traffic_of(d, name) == [(rev1, 100, "latest")]

    # Canary: 10% to the new revision once it is ready, 90% stays on the rolled-out one.
    load = Load(d, name, tmp_path, seconds=10, tag="canary")
    d.cli("apply", "-f", "-", input=isvc(name, "xgboost", XGBOOST, canary=10, annotations=tags))
    d.wait_condition(name, lambda doc: traffic_of(d, name) == [(rev2, 10, "latest"),
                                                             (rev1, 90, "prev")],
                     "a 10/90 canary split")
    st = predictor_status(d, name)
    assert st["latestCreatedRevision"] == rev2
    assert st["latestReadyRevision"] == rev2
    assert st["latestRolledoutRevision"] == rev1
    urls = {t["tag"]: t["url"] for t in st["traffic"]}
    assert urls == {"latest": f"http://latest-{name}-predictor.default.example.com",
                    "prev": f"http://prev-{name}-predictor.default.example.com"}
    assert [t["latestRevision"] for t in st["traffic"]] == [True, False]
    session = requests.Session()
    host = f"{name}.default.example.com"
    n = 2000
    hits = sum(which_revision(predict(session, d.gateway, host, name)) == "xgboost"
               for _ in range(n))
    low, high = binomial_bounds(n, 0.10)
    assert low <= hits <= high, f"{hits} of {n} requests reached the canary; 99.9% bound " \
                                f"[{low:.0f}, {high:.0f}]"
    # Tag hosts reach their revision directly, whatever the split.
    for _ in range(20):
        assert which_revision(predict(session, d.gateway,
                                      f"latest-{name}-predictor.default.example.com",
                                      name)) == "xgboost"
        assert which_revision(predict(session, d.gateway, f"prev-{name}.default.example.com",
                                      name)) == "sklearn"
    load.finish(d)

    # Promote: without canaryTrafficPercent the latest ready revision takes everything.
    load = Load(d, name, tmp_path, seconds=8, tag="promote")
    d.cli("apply", "-f", "-", input=isvc(name, "xgboost", XGBOOST, annotations=tags))
    d.wait_condition(name, lambda doc: traffic_of(d, name) == [(rev2, 100, "latest")],
                     "100% on the promoted revision")
    st = predictor_status(d, name)
    assert st["latestRolledoutRevision"] == rev2
    assert st["previousRolledoutRevision"] == rev1
    assert all(which_revision(predict(session, d.gateway, host, name)) == "xgboost"
               for _ in range(50))
    load.finish(d)
    r = predict(session, d.gateway, f"prev-{name}.default.example.com", name)
    assert r.status_code == 404, r.text  # no revision is tagged prev any more

    # Roll back: canaryTrafficPercent 0 sends everything to the previous rolled-out revision,
    # which was stopped after the promote and starts again while the gateway holds requests.
    load = Load(d, name, tmp_path, seconds=8, tag="rollback")
    d.cli("apply", "-f", "-", input=isvc(name, "xgboost", XGBOOST, canary=0, annotations=tags))
    d.wait_condition(name, lambda doc: traffic_of(d, name) == [(rev2, 0, "latest"),
                                                             (rev1, 100, "prev")],
                     "the rollback to the previous revision")
    st = predictor_status(d, name)
    assert st["latestRolledoutRevision"] == rev1
    assert all(which_revision(predict(session, d.gateway, host, name)) == "sklearn"
               for _ in range(50))
    # The latest revision stays reachable by its tag at 0%.
    assert which_revision(predict(session, d.gateway, f"latest-{name}.default.example.com",
                                  name)) == "xgboost"
    load.finish(d)
    assert condition(d.isvc(name), "Ready") == "True"
    out = d.cli("get", "isvc", name).stdout
    assert name in out


def replicas_of(d, name):
    """The daemon's replica processes serving model `name` (the only service of its daemon)."""
    return [p for p in replica_pids(d.proc.pid) if f"--model_name={name}" in cmdline(p)]


def wait_replicas(d, name, predicate, what, timeout=90):
    deadline = time.time() + timeout
    counts = []
    while time.time() < deadline:
        n = len(replicas_of(d, name))
        counts.append(n)
        if predicate(n):
            return n
        time.sleep(0.25)
    raise AssertionError(f"{name}: {what} not reached in {timeout} s (replica counts seen: "
                         f"{counts[-40:]})\n--- daemon log ---\n{d.log[-8000:]}")


def test_scales_up_under_load_and_back_down_without_failing_a_request(daemon, tmp_path):
    d = daemon(extra=["--autoscaler-tick", "1s"])
    name = "scaler"
    # target 1 at 70% utilisation: 0.7 requests in flight per replica, so anything from 1.5 in
    # flight at the gateway on up asks for the maximum, 3. (On a busy 2-core machine a client
    # at concurrency 6 keeps only 2 to 4 requests inside the gateway.)
    annotations = {"autoscaling.knative.dev/target": "1", "autoscaling.knative.dev/window": "6s"}
    d.cli("apply", "-f", "-", input=isvc(name, "xgboost", XGBOOST, annotations=annotations,
                                        extra="\n    maxReplicas: 3"))
    d.wait_ready(name)
    assert len(replicas_of(d, name)) == 1
    load = Load(d, name, tmp_path, seconds=15, concurrency=6, tag="up")
    wait_replicas(d, name, lambda n: n == 3, "3 replicas under load")
    load.finish(d)
    # A light steady load (50 requests/s of about 1 ms: ~0.05 in flight → 1 replica) while the
    # extra replicas drain and stop.
    load = Load(d, name, tmp_path, seconds=20, tag="down", rate=50)
    wait_replicas(d, name, lambda n: n == 1, "back to 1 replica")
    level = load.finish(d)
    assert level["errors"] == 0
    assert "draining replica default/scaler/" in d.log


def test_scale_to_zero_then_a_burst_of_50_is_all_answered(daemon):
    d = daemon(extra=["--scale-to-zero-grace-period", "1s", "--autoscaler-tick", "500ms"])
    name = "sleepy"
    annotations = {"autoscaling.knative.dev/window": "6s"}
    d.cli("apply", "-f", "-", input=isvc(name, "xgboost", XGBOOST, annotations=annotations,
                                        extra="\n    minReplicas: 0"))
    d.wait_ready(name)
    host = f"{name}.default.example.com"
    assert which_revision(predict(requests.Session(), d.gateway, host, name)) == "xgboost"
    wait_replicas(d, name, lambda n: n == 0, "zero replicas after the idle window and grace")
    assert condition(d.isvc(name), "Ready") == "True"  # at zero, still ready (as Knative)

    def one(_):
        with requests.Session() as s:
            return predict(s, d.gateway, host, name)

    started = time.time()
    with concurrent.futures.ThreadPoolExecutor(max_workers=50) as pool:
        answers = list(pool.map(one, range(50)))
    took = time.time() - started
    bad = [(a.status_code, a.text) for a in answers if a.status_code != 200]
    assert not bad, f"{len(bad)} of 50 failed: {bad[:3]}\n--- daemon log ---\n{d.log[-6000:]}"
    assert all(which_revision(a) == "xgboost" for a in answers)
    assert len(replicas_of(d, name)) >= 1
    print(f"burst of 50 at zero answered in {took:.3f} s")

"""InferenceGraphs inside `quiver up`: KServe's documentation shapes (a sequence of two services,
a 20/80 splitter, an ensemble of two, a switch on a request field, nested nodes) over real
InferenceServices, reached through the gateway at http://{graph}.{namespace}.{domain}/, with the
graph's status (url, Ready) and `quiver get ig`. The router's semantics in detail are tested
against real model servers in test_router.py; here the point is that the control plane runs
graphs and resolves serviceName to its InferenceServices.
"""
import time

import requests

from up_helpers import EXAMPLES, IRIS_ROW, condition, daemon  # noqa: F401 (fixture)

SKLEARN = EXAMPLES / "models" / "sklearn-iris"
XGBOOST = EXAMPLES / "models" / "xgboost-iris"


def isvc(name, model_format, model_dir):
    return f"""apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: {name}
spec:
  predictor:
    model:
      modelFormat:
        name: {model_format}
      storageUri: {model_dir}
---
"""


GRAPHS = """apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: sequence
spec:
  nodes:
    root:
      routerType: Sequence
      steps:
      - serviceName: sklearn-iris
      - serviceName: xgboost-iris
        data: $request
---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: ensemble
spec:
  nodes:
    root:
      routerType: Ensemble
      steps:
      - serviceName: sklearn-iris
        name: sklearn
      - serviceName: xgboost-iris
        name: xgboost
---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: splitter
spec:
  nodes:
    root:
      routerType: Splitter
      steps:
      - serviceName: sklearn-iris
        weight: 20
      - serviceName: xgboost-iris
        weight: 80
---
apiVersion: serving.kserve.io/v1alpha1
kind: InferenceGraph
metadata:
  name: switch
spec:
  nodes:
    root:
      routerType: Switch
      steps:
      - serviceName: sklearn-iris
        condition: "route.#(model==\\"sklearn\\")"
      - nodeName: nested
        condition: "route.#(model==\\"xgboost\\")"
    nested:
      routerType: Sequence
      steps:
      - serviceName: xgboost-iris
"""


def kind_of(prediction_body):
    """sklearn answers a class, xgboost class probabilities."""
    first = prediction_body["predictions"][0]
    return "xgboost" if isinstance(first, list) else "sklearn"


def test_graphs_run_in_the_gateway_over_real_services(daemon):
    d = daemon()
    d.cli("apply", "-f", "-", input=isvc("sklearn-iris", "sklearn", SKLEARN) +
          isvc("xgboost-iris", "xgboost", XGBOOST))
    d.wait_ready("sklearn-iris")
    d.wait_ready("xgboost-iris")
    d.cli("apply", "-f", "-", input=GRAPHS)
    session = requests.Session()
    body = {"instances": [IRIS_ROW]}

    def call(graph, payload=body):
        return session.post(f"{d.gateway}/", json=payload,
                            headers={"Host": f"{graph}.default.example.com"}, timeout=60)

    for name in ("sequence", "ensemble", "splitter", "switch"):
        doc = d.wait_condition(
            name, lambda doc: condition(doc, "Ready") == "True", "Ready",
            kind="inferencegraphs", version="v1alpha1")
        assert doc["status"]["url"] == f"http://{name}.default.example.com"

    # Sequence: the last step's answer (xgboost, given the original request).
    r = call("sequence")
    assert r.status_code == 200, r.text
    assert kind_of(r.json()) == "xgboost"

    # Ensemble: every step's answer under its name.
    r = call("ensemble")
    assert r.status_code == 200, r.text
    answer = r.json()
    assert set(answer) == {"sklearn", "xgboost"}
    assert kind_of(answer["sklearn"]) == "sklearn" and kind_of(answer["xgboost"]) == "xgboost"

    # Splitter 20/80: both services answer, the second more often (the exact distribution is
    # checked over 2,000 requests in test_router.py).
    kinds = [kind_of(call("splitter").json()) for _ in range(200)]
    assert 0 < kinds.count("sklearn") < kinds.count("xgboost"), kinds.count("sklearn")

    # Switch on a request field, one branch through a nested node; no match is KServe's 404.
    r = call("switch", {**body, "route": [{"model": "sklearn"}]})
    assert r.status_code == 200 and kind_of(r.json()) == "sklearn", r.text
    r = call("switch", {**body, "route": [{"model": "xgboost"}]})
    assert r.status_code == 200 and kind_of(r.json()) == "xgboost", r.text
    r = call("switch", {**body, "route": [{"model": "other"}]})
    assert r.status_code == 404, r.text
    assert r.json()["error"] == "Failed to process request"

    # The path form reaches a graph too, and `quiver get ig` lists them.
    r = session.post(f"{d.gateway}/serving/default/sequence/", json=body, timeout=60)
    assert r.status_code == 200 and kind_of(r.json()) == "xgboost", r.text
    out = d.cli("get", "ig").stdout
    for name in ("sequence", "ensemble", "splitter", "switch"):
        assert name in out
    assert "True" in out

    # A graph naming a service that does not exist fails its requests clearly; deleting a
    # graph removes its host.
    d.cli("apply", "-f", "-", input=GRAPHS.split("---")[0].replace(
        "name: sequence", "name: broken").replace("serviceName: sklearn-iris",
                                                  "serviceName: no-such-service"))
    d.wait_condition("broken", lambda doc: condition(doc, "Ready") == "True", "Ready",
                     kind="inferencegraphs", version="v1alpha1")
    r = call("broken")
    assert r.status_code in (404, 500), r.text
    assert "no-such-service" in r.text
    d.cli("delete", "ig", "broken")
    last = None
    for _ in range(200):
        last = call("broken")
        if last.status_code == 404 and "no InferenceService" in last.text:
            break
        time.sleep(0.05)
    assert last.status_code == 404 and "no InferenceService" in last.text, last.text

"""V1 protocol (TensorFlow-Serving style) and CloudEvents on :predict, against a real
`quiver serve`.

V1: GET /v1/models, GET /v1/models/{m}, POST /v1/models/{m}:predict and :explain, for the built-in
models and an XGBoost model checked against Python xgboost. CloudEvents: binary mode (ce-*
headers) and structured mode (application/cloudevents+json, or a JSON body holding every
required attribute). Expected answers come from KServe's V1 endpoints and tests (test_predict_v1,
test_unknown_model_v1, TestTFHttpServerModelNotReady, TestTFHttpServerCloudEvent;
shared/reference/kserve.md 1.3, 4).
"""
import base64
import datetime
import json
import shutil
import time

import numpy as np
import pytest
import requests

from conftest import EXAMPLES, QuiverServer

BUILTINS = {"echo", "add_sub", "sleep"}
CE_HEADERS = {"ce-specversion": "1.0", "ce-id": "req-1", "ce-source": "test/client",
              "ce-type": "org.example.request", "Content-Type": "application/json"}


# ---------------------------------------------------------------------------------------------
# Helpers


def predict(server, model, body=None, data=None, headers=None, verb="predict"):
    url = f"{server.url}/v1/models/{model}:{verb}"
    if body is not None:
        return requests.post(url, json=body, headers=headers, timeout=10)
    return requests.post(url, data=data, headers=headers, timeout=10)


def assert_error(r, status, *fragments):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    for f in fragments:
        assert f.lower() in body["error"].lower(), f"{f!r} not in error {body['error']!r}"
    return body


def assert_recent_rfc3339(value):
    t = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
    assert t.tzinfo is not None, f"time without a zone: {value!r}"
    now = datetime.datetime.now(datetime.timezone.utc)
    assert abs((now - t).total_seconds()) < 60, f"{value!r} is not now ({now.isoformat()})"


def assert_fresh_id(value, request_id):
    assert isinstance(value, str) and value, value
    assert value != request_id


def structured_event(data=None, **attributes):
    event = {"specversion": "1.0", "id": "evt-1", "source": "test/client",
             "type": "org.example.request"}
    if data is not None:
        event["data"] = data
    event.update(attributes)
    return {k: v for k, v in event.items() if v is not None}


def post_structured(server, model, event, content_type="application/cloudevents+json"):
    payload = event if isinstance(event, bytes) else json.dumps(event).encode()
    return requests.post(f"{server.url}/v1/models/{model}:predict", data=payload,
                         headers={"Content-Type": content_type}, timeout=10)


ROW0 = list(range(16))
ROW1 = [5] * 16
ROW2 = [-(2**31)] + [100] * 15


def add_sub_rows(*pairs):
    return [{"OUTPUT0": (np.array(a, dtype=np.int32) + np.array(b, dtype=np.int32)).tolist(),
             "OUTPUT1": (np.array(a, dtype=np.int32) - np.array(b, dtype=np.int32)).tolist()}
            for a, b in pairs]


def wait_loaded(server, names, timeout=15.0):
    """Waits until none of `names` is LOADING (the server loads models in the background)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        states = [server.get(f"/v2/models/{n}/ready").json().get("state") for n in names]
        if "LOADING" not in states:
            return
        time.sleep(0.02)
    raise RuntimeError(f"models still loading\n{server.log}")


@pytest.fixture(scope="module")
def repo_server(tmp_path_factory):
    """Built-ins plus the example XGBoost iris model and a model that fails to load."""
    repo = tmp_path_factory.mktemp("repo")
    shutil.copytree(EXAMPLES / "xgboost-iris", repo / "iris")
    (repo / "torch").mkdir()
    (repo / "torch" / "config.yaml").write_text("format: pytorch\n")
    s = QuiverServer(["--model-repository", str(repo)])
    try:
        wait_loaded(s, ["iris", "torch"])
        yield s
    finally:
        s.stop()


# ---------------------------------------------------------------------------------------------
# V1 routes


def test_v1_model_list(builtin_server):
    r = builtin_server.get("/v1/models")
    assert r.status_code == 200
    assert r.headers["Content-Type"].startswith("application/json")
    body = r.json()
    assert list(body) == ["models"]
    assert sorted(body["models"]) == sorted(BUILTINS)


def test_v1_model_list_includes_repository_models(repo_server):
    assert sorted(repo_server.get("/v1/models").json()["models"]) == \
        sorted(BUILTINS | {"iris", "torch"})


@pytest.mark.parametrize("model", sorted(BUILTINS))
def test_v1_model_ready(builtin_server, model):
    r = builtin_server.get(f"/v1/models/{model}")
    assert r.status_code == 200
    assert r.json() == {"name": model, "ready": True}


def test_v1_unknown_model_is_404_with_kserve_message(builtin_server):
    body = assert_error(builtin_server.get("/v1/models/InvalidModel"), 404)
    assert body["error"] == "Model with name InvalidModel does not exist."
    for verb in ("predict", "explain"):
        body = assert_error(predict(builtin_server, "InvalidModel", {"instances": [[1]]},
                                    verb=verb), 404)
        assert body["error"] == "Model with name InvalidModel does not exist."


@pytest.mark.parametrize("path", ["/v1/models/echo:classify", "/v1/nope",
                                  "/v1/models/echo/predict"])
def test_v1_unknown_routes_are_404(builtin_server, path):
    r = requests.post(builtin_server.url + path, json={"instances": [[1]]}, timeout=10)
    assert_error(r, 404)


def test_v1_predict_with_get_is_405(builtin_server):
    assert_error(builtin_server.get("/v1/models/echo:predict"), 405)


# ---------------------------------------------------------------------------------------------
# V1 predict through echo


def test_predict_v1_exact_answer(builtin_server):
    # KServe test_predict_v1.
    r = predict(builtin_server, "echo", {"instances": [[1, 2]]})
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    assert r.json() == {"predictions": [[1, 2]]}
    assert not any(h.lower().startswith("ce-") for h in r.headers)


@pytest.mark.parametrize("key", ["instances", "inputs"])
@pytest.mark.parametrize("value", [
    [[1, 2]],
    [[1.5, -2.25e-8], [3, 4]],
    {"a": [1, 2], "b": {"c": None}},
    "plain text é☃",
    [{"x": True, "y": "z"}, None, 7],
    [],
])
def test_echo_returns_instances_unchanged(builtin_server, key, value):
    r = predict(builtin_server, "echo", {key: value})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": value}


def test_echo_predictions_keep_large_integers_exact(builtin_server):
    value = [[9007199254740993, -9223372036854775808, 18446744073709551615]]
    r = predict(builtin_server, "echo", {"instances": value})
    assert r.status_code == 200, r.text
    assert json.loads(r.text) == {"predictions": value}


@pytest.mark.parametrize("body", [
    b"{}", b'{"instance": [[1]]}', b'{"data": [1]}', b"[[1, 2]]", b'"instances"', b"null",
])
def test_predict_without_instances_or_inputs_is_400(builtin_server, body):
    r = predict(builtin_server, "echo", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400)


@pytest.mark.parametrize("body", [b"", b"not json", b'{"instances": [[1, 2]', b"\xff\xfe"])
def test_predict_with_malformed_json_is_400(builtin_server, body):
    r = predict(builtin_server, "echo", data=body, headers={"Content-Type": "application/json"})
    assert_error(r, 400)


def test_explain_is_501_with_a_message(builtin_server):
    r = predict(builtin_server, "echo", {"instances": [[1, 2]]}, verb="explain")
    body = assert_error(r, 501)
    assert "explain" in body["error"].lower()


# ---------------------------------------------------------------------------------------------
# V1 predict on tensor models


def test_add_sub_instances_as_objects(builtin_server):
    body = {"instances": [{"INPUT0": ROW0, "INPUT1": ROW1}, {"INPUT0": ROW1, "INPUT1": ROW2},
                          {"INPUT0": ROW2, "INPUT1": ROW0}]}
    r = predict(builtin_server, "add_sub", body)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"] == "application/json"
    with np.errstate(over="ignore"):
        assert r.json() == {"predictions": add_sub_rows((ROW0, ROW1), (ROW1, ROW2),
                                                        (ROW2, ROW0))}


def test_add_sub_columnar_inputs(builtin_server):
    body = {"inputs": {"INPUT0": [ROW0, ROW2], "INPUT1": [ROW1, ROW1]}}
    r = predict(builtin_server, "add_sub", body)
    assert r.status_code == 200, r.text
    with np.errstate(over="ignore"):
        assert r.json() == {"predictions": add_sub_rows((ROW0, ROW1), (ROW2, ROW1))}


@pytest.mark.parametrize("body,fragment", [
    ({"instances": [ROW0, ROW1]}, "input"),                                  # plain rows
    ({"instances": [{"INPUT0": ROW0}]}, "INPUT1"),                           # missing input
    ({"instances": [{"INPUT0": ROW0, "INPUT1": ROW1[:15]}]}, "INPUT1"),      # short row
    ({"instances": [{"INPUT0": ROW0, "INPUT1": ROW1, "INPUT9": ROW1}]}, "INPUT9"),
    ({"instances": [{"INPUT0": ROW0, "INPUT1": [1.5] * 16}]}, "INPUT1"),     # not INT32
    ({"instances": [{"INPUT0": ROW0, "INPUT1": ROW1}, {"INPUT0": ROW0}]}, "INPUT1"),
    ({"inputs": {"INPUT0": [ROW0, ROW1], "INPUT1": [ROW1]}}, "INPUT"),       # batch mismatch
])
def test_add_sub_bad_v1_instances_are_400(builtin_server, body, fragment):
    assert_error(predict(builtin_server, "add_sub", body), 400, fragment)


def test_sleep_model_v1_instances(builtin_server):
    r = predict(builtin_server, "sleep", {"instances": [[1, 2], [3, 4]]})
    assert r.status_code == 200, r.text
    assert r.json() == {"predictions": [[1, 2], [3, 4]]}
    r = predict(builtin_server, "sleep", {"instances": [[0.5, -1.25, 8]]})
    assert r.json() == {"predictions": [[0.5, -1.25, 8]]}


def test_sleep_model_v1_ragged_instances_are_400(builtin_server):
    assert_error(predict(builtin_server, "sleep", {"instances": [[1, 2], [3]]}), 400)


IRIS_ROWS = [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5, 1.6], [5.1, 3.5, 1.4, 0.2],
             [7.7, 3.0, 6.1, 2.3]]


def xgboost_reference(rows):
    import xgboost as xgb
    booster = xgb.Booster()
    booster.load_model(str(EXAMPLES / "xgboost-iris" / "model.json"))
    return booster.predict(xgb.DMatrix(np.array(rows, dtype=np.float32)))


@pytest.mark.parametrize("rows", [IRIS_ROWS[:2], IRIS_ROWS, IRIS_ROWS[3:]])
@pytest.mark.parametrize("key", ["instances", "inputs"])
def test_xgboost_predictions_match_python_xgboost(repo_server, rows, key):
    r = predict(repo_server, "iris", {key: rows})
    assert r.status_code == 200, r.text
    predictions = r.json()["predictions"]
    expected = xgboost_reference(rows)
    assert np.array(predictions).shape == expected.shape
    np.testing.assert_allclose(np.array(predictions, dtype=np.float64), expected, rtol=0,
                               atol=1e-6)


@pytest.mark.parametrize("instances", [
    [[6.8, 2.8, 4.8, 1.4], [6.0, 3.4, 4.5]],      # ragged
    [[6.8, 2.8, 4.8]],                             # three features for a four-feature model
    [[6.8, 2.8, "x", 1.4]],
    [6.8, 2.8, 4.8, 1.4],                          # a row, not a list of rows
])
def test_xgboost_bad_instances_are_400(repo_server, instances):
    assert_error(predict(repo_server, "iris", {"instances": instances}), 400)


@pytest.mark.parametrize("route", ["ready", "predict", "explain"])
def test_not_ready_model_is_503(repo_server, route):
    if route == "ready":
        r = repo_server.get("/v1/models/torch")
    else:
        r = predict(repo_server, "torch", {"instances": [[1.0]]}, verb=route)
    body = assert_error(r, 503)
    assert "torch" in body["error"]


# ---------------------------------------------------------------------------------------------
# CloudEvents, binary mode


def test_binary_cloudevent_round_trip(builtin_server):
    r = predict(builtin_server, "echo", data=b'{"instances": [[1, 2]]}', headers=CE_HEADERS)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.headers["ce-specversion"] == "1.0"
    assert_fresh_id(r.headers["ce-id"], CE_HEADERS["ce-id"])
    assert r.headers["ce-source"] == "io.kserve.inference.echo"
    assert r.headers["ce-type"] == "io.kserve.inference.response"
    assert_recent_rfc3339(r.headers["ce-time"])
    assert r.json() == {"predictions": [[1, 2]]}


def test_binary_cloudevent_ids_are_new_for_every_response(builtin_server):
    ids = {predict(builtin_server, "echo", data=b'{"instances": [1]}',
                   headers=CE_HEADERS).headers["ce-id"] for _ in range(3)}
    assert len(ids) == 3


def test_binary_cloudevent_on_a_tensor_model(builtin_server):
    body = json.dumps({"instances": [{"INPUT0": ROW0, "INPUT1": ROW1}]}).encode()
    r = predict(builtin_server, "add_sub", data=body, headers=CE_HEADERS)
    assert r.status_code == 200, r.text
    assert r.headers["ce-source"] == "io.kserve.inference.add_sub"
    assert r.json() == {"predictions": add_sub_rows((ROW0, ROW1))}


def test_binary_cloudevent_headers_are_case_insensitive(builtin_server):
    headers = {k.upper() if k.startswith("ce-") else k: v for k, v in CE_HEADERS.items()}
    r = predict(builtin_server, "echo", data=b'{"inputs": "x"}', headers=headers)
    assert r.status_code == 200, r.text
    assert r.headers["ce-specversion"] == "1.0"
    assert r.json() == {"predictions": "x"}


@pytest.mark.parametrize("missing", ["ce-id", "ce-source", "ce-type"])
def test_binary_cloudevent_missing_attribute_is_400(builtin_server, missing):
    headers = {k: v for k, v in CE_HEADERS.items() if k != missing}
    r = predict(builtin_server, "echo", data=b'{"instances": [[1, 2]]}', headers=headers)
    assert_error(r, 400, missing.removeprefix("ce-"))


def test_binary_cloudevent_unknown_specversion_is_400(builtin_server):
    r = predict(builtin_server, "echo", data=b'{"instances": [[1, 2]]}',
                headers={**CE_HEADERS, "ce-specversion": "9.9"})
    assert_error(r, 400, "9.9")


def test_binary_cloudevent_with_invalid_json_is_400(builtin_server):
    r = predict(builtin_server, "echo", data=b'{"instances": [[1, 2]', headers=CE_HEADERS)
    assert_error(r, 400)


# ---------------------------------------------------------------------------------------------
# CloudEvents, structured mode


def check_structured_response(r, model, request_id, predictions):
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/cloudevents+json"), r.headers
    event = r.json()
    assert event["specversion"] == "1.0"
    assert_fresh_id(event["id"], request_id)
    assert event["source"] == f"io.kserve.inference.{model}"
    assert event["type"] == "io.kserve.inference.response"
    assert_recent_rfc3339(event["time"])
    assert event["data"] == {"predictions": predictions}
    return event


def test_structured_cloudevent_round_trip(builtin_server):
    r = post_structured(builtin_server, "echo", structured_event({"instances": [[1, 2]]}))
    check_structured_response(r, "echo", "evt-1", [[1, 2]])


def test_structured_cloudevent_on_a_tensor_model(builtin_server):
    event = structured_event({"inputs": {"INPUT0": [ROW2], "INPUT1": [ROW1]}})
    r = post_structured(builtin_server, "add_sub", event)
    with np.errstate(over="ignore"):
        check_structured_response(r, "add_sub", "evt-1", add_sub_rows((ROW2, ROW1)))


def test_structured_cloudevent_with_data_base64(builtin_server):
    payload = base64.b64encode(json.dumps({"instances": [["b64", 3]]}).encode()).decode()
    r = post_structured(builtin_server, "echo", structured_event(data_base64=payload))
    check_structured_response(r, "echo", "evt-1", [["b64", 3]])


def test_structured_cloudevent_content_type_with_charset(builtin_server):
    r = post_structured(builtin_server, "echo", structured_event({"instances": [1]}),
                        content_type="application/cloudevents+json; charset=utf-8")
    check_structured_response(r, "echo", "evt-1", [1])


@pytest.mark.parametrize("missing", ["id", "source", "type", "specversion"])
def test_structured_cloudevent_missing_attribute_is_400(builtin_server, missing):
    event = structured_event({"instances": [[1]]})
    del event[missing]
    assert_error(post_structured(builtin_server, "echo", event), 400, missing)


@pytest.mark.parametrize("attribute", ["id", "source", "type"])
def test_structured_cloudevent_empty_attribute_is_400(builtin_server, attribute):
    # CloudEvents 1.0: id, source and type are REQUIRED and MUST be non-empty strings; binary
    # mode refuses an empty ce-id header, structured mode must refuse "id": "" alike.
    event = structured_event({"instances": [[1]]}, **{attribute: ""})
    assert_error(post_structured(builtin_server, "echo", event), 400, attribute)


def test_binary_cloudevent_empty_attribute_is_400(builtin_server):
    r = predict(builtin_server, "echo", data=b'{"instances": [[1]]}',
                headers={**CE_HEADERS, "ce-source": ""})
    assert_error(r, 400, "source")


def test_structured_cloudevent_unknown_specversion_is_400(builtin_server):
    event = structured_event({"instances": [[1]]}, specversion="9.9")
    assert_error(post_structured(builtin_server, "echo", event), 400, "9.9")


@pytest.mark.parametrize("payload", [b"not json", b'{"specversion": "1.0", "id": ', b"[]"])
def test_structured_cloudevent_invalid_json_is_400(builtin_server, payload):
    assert_error(post_structured(builtin_server, "echo", payload), 400)


def test_structured_cloudevent_with_bad_base64_is_400(builtin_server):
    event = structured_event(data_base64="***not base64***")
    assert_error(post_structured(builtin_server, "echo", event), 400, "base64")


def test_plain_json_with_every_attribute_is_a_structured_event(builtin_server):
    # KServe's rule: a JSON body holding time, type, source, id, specversion and data is a
    # structured CloudEvent even without its content type. The model sees `data`; the envelope
    # (which has no "instances") would be a 400 from echo.
    event = structured_event({"instances": [[5, 6]]}, time="2024-01-01T00:00:00Z")
    r = post_structured(builtin_server, "echo", event, content_type="application/json")
    check_structured_response(r, "echo", "evt-1", [[5, 6]])


def test_plain_json_missing_one_attribute_is_not_an_event(builtin_server):
    # Without "time" the body is plain V1, so echo looks for instances in the envelope itself.
    event = structured_event({"instances": [[5, 6]]})
    r = post_structured(builtin_server, "echo", event, content_type="application/json")
    assert_error(r, 400)
    event["instances"] = ["top"]
    r = post_structured(builtin_server, "echo", event, content_type="application/json")
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    assert r.json() == {"predictions": ["top"]}


# ---------------------------------------------------------------------------------------------
# CE_TYPE and CE_SOURCE


def test_ce_type_and_source_from_the_environment(start_server):
    s = start_server([], env={"CE_TYPE": "org.example.answer", "CE_SOURCE": "urn:quiver:test"})
    r = predict(s, "echo", data=b'{"instances": [[1]]}', headers=CE_HEADERS)
    assert r.status_code == 200, r.text
    assert r.headers["ce-type"] == "org.example.answer"
    assert r.headers["ce-source"] == "urn:quiver:test"
    r = post_structured(s, "echo", structured_event({"instances": [[2]]}))
    assert r.status_code == 200, r.text
    event = r.json()
    assert event["type"] == "org.example.answer"
    assert event["source"] == "urn:quiver:test"
    assert event["data"] == {"predictions": [[2]]}

"""Model repository extension (POST /v2/repository/index, .../models/{m}/load and /unload) and the
explicit model control mode, against a real `quiver serve`.

Expected answers come from Triton's model repository extension and model management docs (index
of every model in the repository, reload without loss of availability, a failed reload leaves the
loaded model unchanged, --load-model) and KServe's tests (TestTFHttpServerLoadAndUnLoad,
TestTFHttpServerLoadAndUnLoadFailure; shared/reference/kserve.md 1.1, 4).
"""
import concurrent.futures
import json
import shutil
import subprocess
import threading
import time

import pytest
import requests

from conftest import EXAMPLES, QUIVER_BIN

BUILTINS = ["add_sub", "echo", "sleep"]
INDEX_KEYS = {"name", "version", "state", "reason"}


# ---------------------------------------------------------------------------------------------
# Helpers


def write_model(repo, name, config_yaml=None, files=None):
    d = repo / name
    d.mkdir(parents=True, exist_ok=True)
    if config_yaml is not None:
        (d / "config.yaml").write_text(config_yaml)
    for fname, content in (files or {}).items():
        (d / fname).write_text(content)
    return d


def index(server, body=None):
    """POST /v2/repository/index; checks the shape and returns {name: entry}."""
    kw = {} if body is None else {"json": body}
    r = server.post("/v2/repository/index", **kw)
    assert r.status_code == 200, r.text
    assert r.headers["Content-Type"].startswith("application/json")
    entries = r.json()
    assert isinstance(entries, list), entries
    for e in entries:
        assert set(e) == INDEX_KEYS, e
        assert all(isinstance(e[k], str) for k in INDEX_KEYS), e
    names = [e["name"] for e in entries]
    assert len(names) == len(set(names)), f"a model listed twice: {names}"
    return {e["name"]: e for e in entries}


def states(server):
    return {name: e["state"] for name, e in index(server).items()}


def load(server, name, config=None, timeout=30):
    kw = {} if config is None else {"json": {"parameters": {"config": config}}}
    return server.post(f"/v2/repository/models/{name}/load", timeout=timeout, **kw)


def unload(server, name, timeout=30):
    return server.post(f"/v2/repository/models/{name}/unload", timeout=timeout)


def assert_loaded(r, name):
    assert r.status_code == 200, r.text
    assert r.json() == {"name": name, "load": True}


def assert_unloaded(r, name):
    assert r.status_code == 200, r.text
    assert r.json() == {"name": name, "unload": True}


def assert_error(r, status, *fragments):
    assert r.status_code == status, f"expected {status}, got {r.status_code}: {r.text}"
    assert r.headers.get("Content-Type", "").startswith("application/json"), r.headers
    body = r.json()
    assert isinstance(body.get("error"), str) and body["error"], body
    for f in fragments:
        assert f.lower() in body["error"].lower(), f"{f!r} not in error {body['error']!r}"
    return body


def tensor(name, datatype, shape, data):
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


SAMPLE = {
    "echo": {"inputs": [tensor("x", "INT16", [2], [7, -7])]},
    "add_sub": {"inputs": [tensor("INPUT0", "INT32", [1, 16], list(range(16))),
                           tensor("INPUT1", "INT32", [1, 16], [1] * 16)]},
    "sleep": {"inputs": [tensor("INPUT0", "FP32", [1, 2], [1.5, 2.5])]},
}
SAMPLE_OUTPUT = {"echo": [7, -7], "add_sub": list(range(1, 17)), "sleep": [1.5, 2.5]}


def infer(server, name, body=None, timeout=30):
    body = body if body is not None else SAMPLE["sleep"]
    return server.post(f"/v2/models/{name}/infer", json=body, timeout=timeout)


def timed_infer(server, name):
    start = time.monotonic()
    r = infer(server, name)
    assert r.status_code == 200, r.text
    return time.monotonic() - start


def wait_not_loading(server, names, timeout=15.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        current = states(server)
        if all(current.get(n) not in ("LOADING", "UNLOADING", None) for n in names):
            return current
        time.sleep(0.02)
    raise RuntimeError(f"models still loading: {states(server)}\n{server.log}")


def run_quiver(args, timeout=10):
    """Runs `quiver serve args...` to completion (for flag combinations that must exit)."""
    cmd = [QUIVER_BIN, "serve", "--host", "127.0.0.1", "--http-port", "0", "--grpc-port", "0"]
    return subprocess.run(cmd + list(args), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


@pytest.fixture
def repo(tmp_path):
    """A repository with the example XGBoost model, a model that fails and a version 3 echo."""
    shutil.copytree(EXAMPLES / "xgboost-iris", tmp_path / "iris")
    write_model(tmp_path, "torch", "format: pytorch\n")
    write_model(tmp_path, "v3", 'format: echo\nversion: "3"\n')
    return tmp_path


# ---------------------------------------------------------------------------------------------
# Index


def test_index_lists_every_model_with_state_and_reason(start_server, repo):
    s = start_server(["--model-repository", str(repo), "--strict-readiness", "false"])
    wait_not_loading(s, BUILTINS + ["iris", "torch", "v3"])
    entries = index(s)
    assert sorted(entries) == sorted(BUILTINS + ["iris", "torch", "v3"])
    for name in BUILTINS + ["iris"]:
        assert entries[name] == {"name": name, "version": "1", "state": "READY", "reason": ""}
    assert entries["v3"] == {"name": "v3", "version": "3", "state": "READY", "reason": ""}
    assert entries["torch"]["state"] == "FAILED"
    assert "pytorch" in entries["torch"]["reason"].lower()


def test_index_ready_filter(start_server, repo):
    s = start_server(["--model-repository", str(repo), "--strict-readiness", "false"])
    wait_not_loading(s, ["iris", "torch", "v3"])
    assert_unloaded(unload(s, "add_sub"), "add_sub")
    ready = index(s, {"ready": True})
    assert sorted(ready) == ["echo", "iris", "sleep", "v3"]
    assert all(e["state"] == "READY" for e in ready.values())
    everything = index(s, {"ready": False})
    assert sorted(everything) == sorted(BUILTINS + ["iris", "torch", "v3"])
    assert everything["add_sub"]["state"] == "UNLOADED"
    assert index(s, {}) == everything


@pytest.mark.parametrize("body", [b"garbage", b'{"ready": "yes"}', b"[true]"])
def test_index_malformed_body_is_400(builtin_server, body):
    r = builtin_server.post("/v2/repository/index", data=body,
                            headers={"Content-Type": "application/json"})
    assert_error(r, 400)


@pytest.mark.parametrize("path", ["/v2/repository/index", "/v2/repository/models/echo/load",
                                  "/v2/repository/models/echo/unload"])
def test_repository_routes_take_post_only(builtin_server, path):
    r = builtin_server.get(path)
    assert_error(r, 405)
    assert "POST" in r.headers.get("Allow", "")


def test_folder_added_after_start_appears_and_loads(start_server, tmp_path):
    s = start_server(["--model-repository", str(tmp_path)])
    assert "late" not in index(s)
    write_model(tmp_path, "late", "format: echo\n")
    entry = index(s)["late"]
    assert entry["state"] == "UNLOADED"
    assert_error(infer(s, "late", SAMPLE["echo"]), 503)
    assert_loaded(load(s, "late"), "late")
    r = infer(s, "late", SAMPLE["echo"])
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == [7, -7]
    assert index(s)["late"]["state"] == "READY"
    assert s.get("/v2/health/ready").status_code == 200


def test_folder_removed_and_unloaded_leaves_the_index(start_server, tmp_path):
    # The index lists the models available in the repository (Triton); a folder that is gone
    # and no longer loaded is not one of them.
    write_model(tmp_path, "gone", "format: echo\n")
    s = start_server(["--model-repository", str(tmp_path)])
    assert index(s)["gone"]["state"] == "READY"
    shutil.rmtree(tmp_path / "gone")
    assert_unloaded(unload(s, "gone"), "gone")
    assert "gone" not in index(s)


# ---------------------------------------------------------------------------------------------
# Load and unload


def test_unknown_model_load_and_unload_are_404(builtin_server):
    for action in ("load", "unload"):
        body = assert_error(builtin_server.post(f"/v2/repository/models/nope/{action}"), 404)
        assert body["error"] == "Model with name nope does not exist."


def test_load_failure_is_503_with_the_reason(start_server, repo):
    s = start_server(["--model-repository", str(repo), "--strict-readiness", "false"])
    wait_not_loading(s, ["torch"])
    body = assert_error(load(s, "torch"), 503, "torch", "pytorch")
    entry = index(s)["torch"]
    assert entry["state"] == "FAILED"
    assert entry["reason"] and entry["reason"] in body["error"]


@pytest.mark.parametrize("name", BUILTINS)
def test_builtin_model_unloads_and_loads_again(start_server, name):
    s = start_server([])
    assert_unloaded(unload(s, name), name)
    assert index(s)[name]["state"] == "UNLOADED"
    for r in (s.get(f"/v2/models/{name}/ready"), infer(s, name, SAMPLE[name]),
              s.get(f"/v1/models/{name}"),
              s.post(f"/v1/models/{name}:predict", json={"instances": [[1.0, 2.0]]})):
        body = assert_error(r, 503)
        assert body.get("state") in (None, "UNLOADED"), body
    others = [m for m in BUILTINS if m != name]
    for other in others:
        assert infer(s, other, SAMPLE[other]).status_code == 200
    # Unloaded on purpose: the server stays ready.
    r = s.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}

    assert_loaded(load(s, name), name)
    assert s.get(f"/v2/models/{name}/ready").json() == {"name": name, "ready": True}
    r = infer(s, name, SAMPLE[name])
    assert r.status_code == 200, r.text
    assert r.json()["outputs"][0]["data"] == SAMPLE_OUTPUT[name]
    assert index(s)[name]["state"] == "READY"


def test_unload_twice_is_fine(start_server):
    s = start_server([])
    assert_unloaded(unload(s, "echo"), "echo")
    assert_unloaded(unload(s, "echo"), "echo")
    assert index(s)["echo"]["state"] == "UNLOADED"


def test_load_of_a_ready_model_keeps_it_serving(start_server):
    s = start_server([])
    assert_loaded(load(s, "add_sub"), "add_sub")
    r = infer(s, "add_sub", SAMPLE["add_sub"])
    assert r.status_code == 200
    assert r.json()["outputs"][0]["data"] == SAMPLE_OUTPUT["add_sub"]


def test_load_rereads_a_fixed_config(start_server, tmp_path):
    write_model(tmp_path, "fixme", "format: sleep\ninstance_count: 0\n")
    s = start_server(["--model-repository", str(tmp_path), "--strict-readiness", "false"])
    wait_not_loading(s, ["fixme"])
    assert index(s)["fixme"]["state"] == "FAILED"
    assert_error(load(s, "fixme"), 503, "instance_count")
    (tmp_path / "fixme" / "config.yaml").write_text("format: sleep\ninstance_count: 1\n")
    assert_loaded(load(s, "fixme"), "fixme")
    assert index(s)["fixme"] == {"name": "fixme", "version": "1", "state": "READY", "reason": ""}
    r = infer(s, "fixme")
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == [1.5, 2.5]


def test_load_picks_up_a_changed_config_of_a_ready_model(start_server, tmp_path):
    write_model(tmp_path, "nap", "format: sleep\n")
    s = start_server(["--model-repository", str(tmp_path), "--builtin-models", "none"])
    assert timed_infer(s, "nap") < 0.15
    (tmp_path / "nap" / "config.yaml").write_text(
        "format: sleep\nparameters:\n  sleep_us: 200000\n")
    assert timed_infer(s, "nap") < 0.15, "the config changed on disk without a load"
    assert_loaded(load(s, "nap"), "nap")
    assert timed_infer(s, "nap") >= 0.2


def test_load_with_a_json_config_overrides_the_folder(start_server, tmp_path):
    write_model(tmp_path, "nap", "format: sleep\n")
    s = start_server(["--model-repository", str(tmp_path), "--builtin-models", "none"])
    assert timed_infer(s, "nap") < 0.15
    config = json.dumps({"format": "sleep", "parameters": {"sleep_us": "200000"}})
    assert_loaded(load(s, "nap", config), "nap")
    assert timed_infer(s, "nap") >= 0.2
    # A load without a config reads the folder again.
    assert_loaded(load(s, "nap"), "nap")
    assert timed_infer(s, "nap") < 0.15


def test_load_with_a_yaml_config_sets_instance_count(start_server, tmp_path):
    write_model(tmp_path, "nap", "format: sleep\nparameters:\n  sleep_us: 150000\n")
    s = start_server(["--model-repository", str(tmp_path), "--builtin-models", "none"])
    config = "format: sleep\ninstance_count: 4\nparameters:\n  sleep_us: 150000\n"
    assert_loaded(load(s, "nap", config), "nap")
    barrier = threading.Barrier(4)

    def one(_):
        barrier.wait()
        return timed_infer(s, "nap")

    start = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(4) as pool:
        list(pool.map(one, range(4)))
    elapsed = time.monotonic() - start
    # 4 requests x 150 ms: one round on 4 instances, four rounds on the folder's single one.
    assert 0.15 <= elapsed < 0.45, f"4 concurrent requests took {elapsed:.3f}s"


@pytest.mark.parametrize("body", [b"not json", b'{"parameters": {"config": 5}}',
                                  b'{"parameters": []}'])
def test_load_with_a_malformed_body_is_400(start_server, body):
    s = start_server([])
    r = s.post("/v2/repository/models/echo/load", data=body,
               headers={"Content-Type": "application/json"})
    assert_error(r, 400)
    assert infer(s, "echo", SAMPLE["echo"]).status_code == 200


def test_failed_reload_keeps_the_loaded_model_serving(start_server, tmp_path):
    # Triton (model management, explicit mode): "if the reload fails for any reason the already
    # loaded model will be unchanged and will remain loaded".
    write_model(tmp_path, "keep", "format: echo\n")
    s = start_server(["--model-repository", str(tmp_path), "--builtin-models", "none"])
    (tmp_path / "keep" / "config.yaml").write_text("format: {broken\n")
    r = load(s, "keep")
    assert r.status_code in (400, 503), r.text
    assert "config" in r.json()["error"].lower()
    r = infer(s, "keep", SAMPLE["echo"])
    assert r.status_code == 200, f"a failed reload took the model down: {r.text}"
    assert index(s)["keep"]["state"] == "READY"


def test_failed_reload_with_a_config_override_keeps_the_model_serving(start_server):
    s = start_server([])
    r = load(s, "echo", "format: {broken")
    assert r.status_code in (400, 503), r.text
    r = infer(s, "echo", SAMPLE["echo"])
    assert r.status_code == 200, f"a failed reload took the model down: {r.text}"


def test_reload_has_no_gap_in_availability(start_server, repo):
    s = start_server(["--model-repository", str(repo), "--strict-readiness", "false"])
    wait_not_loading(s, ["iris"])
    stop = threading.Event()
    failures = []
    count = [0]

    def hammer():
        with requests.Session() as session:
            while not stop.is_set():
                r = session.post(s.url + "/v1/models/iris:predict", timeout=10,
                                 json={"instances": [[6.8, 2.8, 4.8, 1.4]]})
                count[0] += 1
                if r.status_code != 200:
                    failures.append((r.status_code, r.text[:200]))

    threads = [threading.Thread(target=hammer) for _ in range(4)]
    for t in threads:
        t.start()
    try:
        for _ in range(20):
            assert_loaded(load(s, "iris"), "iris")
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert count[0] > 20
    assert not failures, f"{len(failures)} of {count[0]} requests failed, first: {failures[:3]}"


def test_concurrent_loads_of_one_model_all_succeed(start_server):
    s = start_server(["--model-control-mode", "explicit"])
    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        answers = list(pool.map(lambda _: load(s, "add_sub"), range(6)))
    for r in answers:
        assert_loaded(r, "add_sub")
    assert infer(s, "add_sub", SAMPLE["add_sub"]).status_code == 200


def test_in_flight_request_finishes_while_its_model_unloads(start_server, tmp_path):
    write_model(tmp_path, "slow", "format: sleep\nparameters:\n  sleep_us: 300000\n")
    s = start_server(["--model-repository", str(tmp_path), "--builtin-models", "none"])
    result = {}

    def call():
        result["r"] = infer(s, "slow")
        result["done"] = time.monotonic()

    t = threading.Thread(target=call)
    start = time.monotonic()
    t.start()
    time.sleep(0.1)
    assert t.is_alive(), "the request finished before the unload; cannot test draining"
    r = unload(s, "slow")
    unload_done = time.monotonic()
    t.join(10)
    assert_unloaded(r, "slow")
    assert result["r"].status_code == 200, result["r"].text
    assert result["r"].json()["outputs"][0]["data"] == [1.5, 2.5]
    assert result["done"] - start >= 0.3
    assert unload_done >= result["done"] - 0.02, "the unload answered before the request ended"
    assert_error(infer(s, "slow"), 503)
    assert index(s)["slow"]["state"] == "UNLOADED"


def test_requests_arriving_during_an_unload_are_refused(start_server, tmp_path):
    write_model(tmp_path, "slow", "format: sleep\nparameters:\n  sleep_us: 400000\n")
    s = start_server(["--model-repository", str(tmp_path), "--builtin-models", "none"])
    first = threading.Thread(target=lambda: infer(s, "slow"))
    first.start()
    time.sleep(0.1)
    unloader = threading.Thread(target=lambda: unload(s, "slow"))
    unloader.start()
    time.sleep(0.1)
    assert unloader.is_alive(), "the unload finished while a request was running"
    start = time.monotonic()
    r = infer(s, "slow")
    elapsed = time.monotonic() - start
    first.join(10)
    unloader.join(10)
    assert_error(r, 503)
    assert elapsed < 0.15, f"a request to a model being unloaded waited {elapsed:.3f}s"


# ---------------------------------------------------------------------------------------------
# Explicit model control mode


def test_explicit_mode_loads_only_the_named_model(start_server, repo):
    s = start_server(["--model-repository", str(repo), "--model-control-mode", "explicit",
                      "--load-model", "echo"])
    entries = index(s)
    assert sorted(entries) == sorted(BUILTINS + ["iris", "torch", "v3"])
    assert entries["echo"]["state"] == "READY"
    for name in ("add_sub", "sleep", "iris", "torch", "v3"):
        assert entries[name]["state"] == "UNLOADED", entries[name]
    assert entries["v3"]["version"] == "3"
    assert infer(s, "echo", SAMPLE["echo"]).status_code == 200
    assert_error(infer(s, "add_sub", SAMPLE["add_sub"]), 503, "add_sub")
    r = s.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}
    assert sorted(index(s, {"ready": True})) == ["echo"]
    assert_loaded(load(s, "iris"), "iris")
    r = s.post("/v1/models/iris:predict", json={"instances": [[6.8, 2.8, 4.8, 1.4]]})
    assert r.status_code == 200 and len(r.json()["predictions"][0]) == 3


def test_explicit_mode_without_load_model_loads_nothing(start_server, repo):
    s = start_server(["--model-repository", str(repo), "--model-control-mode", "explicit"])
    assert set(states(s).values()) == {"UNLOADED"}
    assert s.get("/v2/health/ready").status_code == 200
    assert_error(infer(s, "echo", SAMPLE["echo"]), 503)


def test_explicit_mode_load_model_is_repeatable(start_server, repo):
    s = start_server(["--model-repository", str(repo), "--model-control-mode", "explicit",
                      "--load-model", "add_sub", "--load-model", "v3"])
    current = wait_not_loading(s, ["add_sub", "v3"])
    assert {n for n, st in current.items() if st == "READY"} == {"add_sub", "v3"}


def test_explicit_mode_load_model_star_loads_everything(start_server, repo):
    s = start_server(["--model-repository", str(repo), "--model-control-mode", "explicit",
                      "--load-model", "*", "--strict-readiness", "false"])
    current = wait_not_loading(s, BUILTINS + ["iris", "torch", "v3"])
    assert current == {"add_sub": "READY", "echo": "READY", "sleep": "READY", "iris": "READY",
                       "v3": "READY", "torch": "FAILED"}


def test_load_model_naming_an_unknown_model_exits_non_zero(repo):
    p = run_quiver(["--model-repository", str(repo), "--model-control-mode", "explicit",
                    "--load-model", "nope"])
    assert p.returncode != 0
    assert "nope" in p.stderr, p.stderr


def test_load_model_without_explicit_mode_exits_non_zero(repo):
    p = run_quiver(["--model-repository", str(repo), "--load-model", "echo"])
    assert p.returncode != 0
    assert "explicit" in p.stderr.lower(), p.stderr

"""Dynamic batching of a model that declares its executions short (the built-in add_sub, which
may run on I/O threads when it does not batch): Triton's rules hold for it as for slow models.
A lone request waits max_queue_delay and is then answered; requests that arrive during the wait
share its execution; a full batch leaves at once; a queue timeout ends the wait with 503.
Real `quiver serve`, real HTTP client, counts from /metrics."""
import concurrent.futures as cf
import re
import time

import numpy as np
import requests


def adder_repo(tmp_path, config):
    d = tmp_path / "repo" / "adder"
    d.mkdir(parents=True)
    (d / "config.yaml").write_text("format: add_sub\n" + config)
    return tmp_path / "repo"


def add(server, start):
    a = np.arange(16, dtype=np.int32) + start
    b = np.full(16, 7, dtype=np.int32)
    body = {"inputs": [
        {"name": "INPUT0", "shape": [1, 16], "datatype": "INT32", "data": a.tolist()},
        {"name": "INPUT1", "shape": [1, 16], "datatype": "INT32", "data": b.tolist()}]}
    t = time.monotonic()
    r = requests.post(f"{server.url}/v2/models/adder/infer", json=body, timeout=30)
    took = time.monotonic() - t
    if r.status_code == 200:
        out = {o["name"]: o["data"] for o in r.json()["outputs"]}
        assert out["OUTPUT0"] == (a + b).tolist(), r.text
        assert out["OUTPUT1"] == (a - b).tolist(), r.text
    return r, took


def counts(server):
    """(executions, requests) of model adder from /metrics."""
    text = server.get("/metrics").text
    def value(name):
        m = re.search(r'^' + name + r'\{[^}]*model="adder"[^}]*\} (\S+)$', text, re.M)
        assert m, f"{name} for adder not in /metrics:\n{text}"
        return float(m.group(1))
    return value("nv_inference_exec_count"), value("nv_inference_count")


def concurrent(n, fn):
    with cf.ThreadPoolExecutor(n) as ex:
        return list(ex.map(fn, range(n)))


def test_lone_request_waits_the_delay_and_concurrent_ones_share_its_execution(start_server,
                                                                             tmp_path):
    repo = adder_repo(tmp_path, """max_batch_size: 8
dynamic_batching: {max_queue_delay_microseconds: 300000}
""")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"])
    r, took = add(s, 0)
    assert r.status_code == 200, r.text
    assert 0.29 <= took < 3.0, took  # held for max_queue_delay, then answered
    execs, reqs = counts(s)
    assert (execs, reqs) == (1, 1)

    results = concurrent(3, lambda i: add(s, 100 * i))
    assert all(r.status_code == 200 for r, _ in results), [r.text for r, _ in results]
    execs2, reqs2 = counts(s)
    # The first arms the delay; the two that arrive within 300 ms join its execution.
    assert (execs2 - execs, reqs2 - reqs) == (1, 3)

    # A second lone request after a batch: the delay again, one more execution.
    r, took = add(s, 5)
    assert r.status_code == 200 and took >= 0.29, (r.text, took)
    assert counts(s) == (execs2 + 1, reqs2 + 1)


def test_full_batches_leave_without_waiting_for_the_delay(start_server, tmp_path):
    repo = adder_repo(tmp_path, """max_batch_size: 4
dynamic_batching: {max_queue_delay_microseconds: 2000000}
""")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"])
    t = time.monotonic()
    results = concurrent(8, lambda i: add(s, i))
    took = time.monotonic() - t
    assert all(r.status_code == 200 for r, _ in results), [r.text for r, _ in results]
    # 8 one-item requests, batches of 4: two executions, long before the 2 s delay.
    assert took < 1.5, took
    assert counts(s) == (2, 8)


def test_queue_timeout_ends_the_wait_with_503(start_server, tmp_path):
    repo = adder_repo(tmp_path, """max_batch_size: 8
dynamic_batching:
  max_queue_delay_microseconds: 1000000
  default_queue_policy: {default_timeout_microseconds: 100000, timeout_action: REJECT}
""")
    s = start_server(["--model-repository", str(repo), "--builtin-models", "none"])
    r, took = add(s, 0)
    assert r.status_code == 503, r.text
    assert "request to model 'adder' timed out in the queue" in r.json()["error"]
    assert 0.09 <= took < 0.9, took  # the timeout, well before the 1 s delay

"""`quiver bench`, the load generator, against a real `quiver serve` (built-in add_sub) over REST
JSON, REST binary and gRPC, and against a small Triton-like server written here to check the
server-side queue/compute split. Checks what a user reads: the JSON and CSV reports (requests
counted, no errors, ordered percentiles), the open-loop rate, error counting, and the exit
status and message for an unknown model. Windows are short (a few hundred ms) to keep the whole
file well under a minute.
"""
import csv
import http.server
import json
import subprocess
import threading
import time

import pytest

from conftest import QUIVER_BIN

# Short windows: enough requests per window on a busy 2-CPU machine, and quick.
FAST = ["--measurement-interval", "300", "--max-trials", "6"]


def run_bench(args, timeout=60):
    return subprocess.run([QUIVER_BIN, "bench"] + [str(a) for a in args], capture_output=True,
                          text=True, timeout=timeout)


def bench_json(tmp_path, args, expect_status=0):
    out = tmp_path / "result.json"
    r = run_bench(list(args) + ["--json", out])
    assert r.returncode == expect_status, f"exit {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}"
    return json.loads(out.read_text()), r


def grpc_port(server, timeout=5.0):
    deadline = time.time() + timeout
    while server.grpc_port is None and time.time() < deadline:
        time.sleep(0.01)
    assert server.grpc_port is not None, server.log
    return server.grpc_port


def check_clean_level(level, batch=1):
    """A load level that ran without errors and whose statistics are consistent."""
    assert level["requests"] > 0, level
    assert level["errors"] == 0, level
    assert level["error_kinds"] == {}
    assert level["throughput_requests_per_sec"] > 0
    assert level["throughput_infer_per_sec"] == pytest.approx(
        batch * level["throughput_requests_per_sec"], rel=1e-9)
    # Throughput is the requests over the merged windows' length.
    assert level["requests"] / level["seconds"] == pytest.approx(
        level["throughput_requests_per_sec"], rel=1e-6)
    lat = level["latency_us"]
    assert 0 < lat["min"] <= lat["p50"] <= lat["p90"] <= lat["p95"] <= lat["p99"] <= lat["max"], lat
    assert lat["min"] <= lat["avg"] <= lat["max"]
    assert 3 <= level["windows"] <= 6


@pytest.fixture(scope="module")
def server(builtin_server):
    return builtin_server


def test_rest_json_concurrency_sweep(server, tmp_path):
    report, r = bench_json(tmp_path, ["-m", "add_sub", "-u", f"127.0.0.1:{server.port}",
                                      "--concurrency-range", "1:4:x2"] + FAST)
    assert report["model"] == "add_sub"
    assert report["protocol"] == "http" and report["encoding"] == "json"
    assert report["mode"] == "concurrency"
    assert [lvl["concurrency"] for lvl in report["results"]] == [1, 2, 4]
    for level in report["results"]:
        check_clean_level(level)
    # The server-side split comes from quiver serve's own GET /metrics.
    assert report["server_metrics"] == f"http://127.0.0.1:{server.port}/metrics"
    for lvl in report["results"]:
        assert lvl["server_queue_us"] is not None and lvl["server_queue_us"] >= 0, lvl
        # add_sub computes in microseconds: part of, and less than, the client's latency.
        assert 0 < lvl["server_compute_us"] < lvl["latency_us"]["avg"], lvl
    # The table on stdout: a header and one row per level.
    lines = r.stdout.splitlines()
    header = next(i for i, line in enumerate(lines) if "Infer/s" in line)
    assert "Concurrency" in lines[header] and "p99 µs" in lines[header]
    rows = [line.split() for line in lines[header + 1:header + 4]]
    assert [row[0].rstrip("*") for row in rows] == ["1", "2", "4"]
    assert "not available" not in lines[header + 1]
    # Progress goes to stderr, one line per window when stderr is not a terminal.
    assert "[concurrency 1] window 1:" in r.stderr
    assert "\r" not in r.stderr


def test_split_not_available_without_server_metrics(start_server, tmp_path):
    s = start_server(["--allow-metrics", "false", "--enable-grpc", "false"])
    report, r = bench_json(tmp_path, ["-m", "add_sub", "-u", f"127.0.0.1:{s.port}",
                                      "--concurrency-range", "1:2"] + FAST)
    # No /metrics: the split is reported as not available, not made up.
    assert report["server_metrics"] is None
    assert all(lvl["server_queue_us"] is None for lvl in report["results"])
    assert "not available" in r.stdout


def test_rest_binary_with_batches(server, tmp_path):
    report, _ = bench_json(tmp_path, ["-m", "add_sub", "-u", f"http://127.0.0.1:{server.port}",
                                      "--binary", "-b", "4", "--concurrency-range", "2"] + FAST)
    assert report["encoding"] == "binary"
    assert report["batch_size"] == 4
    assert len(report["results"]) == 1
    check_clean_level(report["results"][0], batch=4)


def test_grpc(server, tmp_path):
    report, _ = bench_json(tmp_path, ["-m", "add_sub", "-i", "grpc",
                                      "-u", f"127.0.0.1:{grpc_port(server)}",
                                      "--concurrency-range", "1:2"] + FAST)
    assert report["protocol"] == "grpc"
    assert [lvl["concurrency"] for lvl in report["results"]] == [1, 2]
    for level in report["results"]:
        check_clean_level(level)


@pytest.mark.parametrize("distribution,rate", [("constant", 200), ("poisson", 500)])
def test_open_loop_hits_the_asked_rate(server, tmp_path, distribution, rate):
    report, _ = bench_json(tmp_path, ["-m", "add_sub", "-u", f"127.0.0.1:{server.port}",
                                      "--request-rate-range", rate,
                                      "--request-distribution", distribution,
                                      "--measurement-interval", "1000", "--max-trials", "5"])
    assert report["mode"] == "request_rate"
    (level,) = report["results"]
    assert level["request_rate"] == rate
    assert level["distribution"] == distribution
    check_clean_level(level)
    assert level["throughput_requests_per_sec"] == pytest.approx(rate, rel=0.10), level


def test_unknown_model_is_a_clear_error(server):
    r = run_bench(["-m", "no_such_model", "-u", f"127.0.0.1:{server.port}"])
    assert r.returncode == 1, r
    assert "model 'no_such_model' not found" in r.stderr, r.stderr
    assert f"127.0.0.1:{server.port}" in r.stderr
    assert r.stdout == ""
    r = run_bench(["-m", "no_such_model", "-i", "grpc", "-u", f"127.0.0.1:{grpc_port(server)}"])
    assert r.returncode == 1, r
    assert "model 'no_such_model' not found" in r.stderr, r.stderr


def test_unreachable_server_and_bad_options():
    r = run_bench(["-m", "add_sub", "-u", "127.0.0.1:1"])
    assert r.returncode == 1
    assert "cannot reach the server" in r.stderr, r.stderr
    r = run_bench(["-m", "add_sub", "--concurrency-range", "4:1"])
    assert r.returncode == 2
    assert "END must not be below START" in r.stderr, r.stderr
    r = run_bench(["-m", "add_sub", "-i", "grpc", "--binary"])
    assert r.returncode == 2


def test_csv_file(server, tmp_path):
    out = tmp_path / "bench.csv"
    r = run_bench(["-m", "add_sub", "-u", f"127.0.0.1:{server.port}", "--concurrency-range", "1:2",
                   "--csv", out] + FAST)
    assert r.returncode == 0, r.stderr
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert [row["Concurrency"] for row in rows] == ["1", "2"]
    for row in rows:
        assert float(row["Inferences/Second"]) > 0
        assert float(row["p50 latency"]) <= float(row["p99 latency"])
        assert row["Errors"] == "0"
        assert float(row["Server Queue"]) >= 0  # from quiver serve's /metrics
        assert float(row["Server Compute"]) > 0


def test_failing_requests_are_counted(server, tmp_path):
    # INPUT0 and INPUT1 of different shapes: add_sub answers 400 to every request.
    data = tmp_path / "mismatch.json"
    data.write_text(json.dumps({"data": [{
        "INPUT0": {"content": list(range(16)), "shape": [1, 16]},
        "INPUT1": {"content": list(range(32)), "shape": [2, 16]}}]}))
    report, r = bench_json(tmp_path, ["-m", "add_sub", "-u", f"127.0.0.1:{server.port}",
                                      "--input-data", data, "--concurrency-range", "1:4:x2"] + FAST,
                           expect_status=3)
    (level,) = report["results"]  # the sweep stops at the first level where everything failed
    assert level["requests"] == 0
    assert level["errors"] > 0
    assert level["error_kinds"] == {"HTTP 400": level["errors"]}
    assert "differs from INPUT1 shape" in level["first_error"]
    assert "every request failed" in r.stderr


class FakeTriton(http.server.BaseHTTPRequestHandler):
    """A keep-alive v2 server for one FP32 model, with Triton's cumulative µs counters: each
    request adds 7 µs of queue and 40 + 100 + 3 µs of compute."""
    protocol_version = "HTTP/1.1"
    lock = threading.Lock()
    success = 0

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/json"):
        data = body.encode()
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        if self.path == "/v2/models/fake":
            self.reply(200, json.dumps({
                "name": "fake", "versions": ["1"], "platform": "python",
                "inputs": [{"name": "x", "datatype": "FP32", "shape": [-1, 3]}],
                "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 3]}]}))
        elif self.path == "/metrics":
            with FakeTriton.lock:
                n = FakeTriton.success
            labels = '{model="fake",version="1"}'
            self.reply(200, "\n".join([
                "# TYPE nv_inference_request_success counter",
                f"nv_inference_request_success{labels} {n}",
                f"nv_inference_queue_duration_us{labels} {7 * n}",
                f"nv_inference_compute_input_duration_us{labels} {40 * n}",
                f"nv_inference_compute_infer_duration_us{labels} {100 * n}",
                f"nv_inference_compute_output_duration_us{labels} {3 * n}",
                ""]), "text/plain; version=0.0.4")
        else:
            self.reply(404, json.dumps({"error": "Request for unknown model"}))

    def do_POST(self):
        body = self.rfile.read(int(self.headers["Content-Length"]))
        request = json.loads(body)
        assert request["inputs"][0]["name"] == "x"
        values = request["inputs"][0]["data"]
        assert all(0 < v < 1 for v in values), values  # random floats, never 0
        with FakeTriton.lock:
            FakeTriton.success += 1
        self.reply(200, json.dumps({"model_name": "fake", "outputs": [
            {"name": "y", "datatype": "FP32", "shape": [1, 3], "data": values}]}))


def test_server_side_split_from_triton_metrics(tmp_path):
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), FakeTriton)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        port = httpd.server_address[1]
        report, r = bench_json(tmp_path, ["-m", "fake", "-u", f"127.0.0.1:{port}",
                                          "--concurrency-range", "2", "--measurement-interval",
                                          "300", "--max-trials", "4"])
    finally:
        httpd.shutdown()
        httpd.server_close()
    assert report["server_metrics"] == f"http://127.0.0.1:{port}/metrics"
    (level,) = report["results"]
    check_clean_level(level)
    assert level["server_queue_us"] == pytest.approx(7)
    assert level["server_compute_us"] == pytest.approx(143)
    assert "from http://127.0.0.1" in r.stderr

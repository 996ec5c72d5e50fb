#!/usr/bin/python3
"""Protocol costs side by side (issue #3): gRPC against REST for the smallest request, and REST
JSON, REST binary (the binary tensor data extension) and gRPC raw tensors for large ones.

Cases, all against one `quiver serve` and measured in the same run:
  - `add_sub` (two INT32 [1,16] inputs, random values) over gRPC ModelInfer at 1 and 64
    concurrent streams (one HTTP/2 connection, `quiver bench -i grpc`), and the same over REST
    JSON (one keep-alive connection per concurrent request) for comparison;
  - `echo` with one FP32 tensor of 1x1000 and of 64x1000 values (4,000 and 256,000 bytes),
    sent as REST JSON, REST binary and gRPC raw_input_contents, at concurrency 1 and 16. `echo`
    returns the tensor unchanged, so each answer carries the same bytes back (as JSON for a
    JSON request, binary for a binary one, raw_output_contents over gRPC).

MB/s is tensor payload, request direction only: 4,000 or 256,000 bytes times requests per
second, MB = 10^6 bytes. Responses carry the same tensor back, so request + response is twice
that. "Body MB/s" is the request body as sent (JSON text, or JSON header + raw bytes, or the
protobuf message), also one direction.

Method: the server runs on --server-cpus (default 0) with one HTTP I/O thread (--workers 1; its
gRPC threads share that CPU), `quiver bench` on --client-cpus (default 1), one sender thread.
Each case is one `quiver bench` run of 3 windows of --window-ms, all three merged (--max-trials
3). A warm-up run of every case comes first; then --repeats rounds, each running every case
once, the case order rotated every round (round-robin). Figures are medians over the rounds,
with the min-max spread of requests/s. Server CPU per request is read from /proc/PID/stat
around each run (all threads), load-generator CPU from the child's rusage. Before measuring, the
echo answers are checked against what was sent (REST JSON and binary; gRPC too when protoc and
grpc_python_plugin are installed). The load average is printed before and after.

Usage: /usr/bin/python3 bench/protocol_bench.py [--quiver PATH] [--repeats 5] [--window-ms 2000]
           [--concurrency-small 1,64] [--concurrency-large 1,16] [--server-cpus 0]
           [--client-cpus 1] [--nice N] [--markdown FILE]
The quiver binary: --quiver, else $QUIVER, else build/bin/quiver of this checkout. Needs taskset
(scripts/setup.sh --bench). Prints a Markdown report on stdout (and to --markdown FILE);
progress on stderr. Exit status 0, or 1 when some request failed.
"""
import argparse
import json
import os
import pathlib
import random
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent / "lib"))
import bench_harness as h  # noqa: E402

PROG = "protocol_bench"
ROWS = (1, 64)
COLS = 1000


def echo_body(rows, seed):
    rng = random.Random(seed)
    # Six significant digits survive the float32 round trip exactly enough to compare.
    data = [round(rng.uniform(-1, 1), 6) for _ in range(rows * COLS)]
    return {"inputs": [{"name": "INPUT0", "shape": [rows, COLS], "datatype": "FP32",
                        "data": data}]}


def check_echo_rest(server, body):
    """The echo model answers REST JSON and binary requests with the same FP32 values."""
    import array
    want = array.array("f", body["inputs"][0]["data"])
    req = urllib.request.Request(f"http://{server.http}/v2/models/echo/infer",
                                 data=json.dumps(body).encode(),
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=30) as r:
        out = json.loads(r.read())["outputs"][0]
    got = array.array("f", out["data"])
    if out["shape"] != body["inputs"][0]["shape"] or got != want:
        raise SystemExit(f"{PROG}: echo over REST JSON did not return the tensor")
    header = json.dumps({"inputs": [{"name": "INPUT0", "shape": body["inputs"][0]["shape"],
                                     "datatype": "FP32",
                                     "parameters": {"binary_data_size": len(want) * 4}}],
                         "outputs": [{"name": "output-0",
                                      "parameters": {"binary_data": True}}]}).encode()
    req = urllib.request.Request(
        f"http://{server.http}/v2/models/echo/infer", data=header + want.tobytes(),
        headers={"Content-Type": "application/octet-stream",
                 "Inference-Header-Content-Length": str(len(header))})
    with urllib.request.urlopen(req, timeout=30) as r:
        n = int(r.headers["Inference-Header-Content-Length"])
        raw = r.read()
    if raw[n:] != want.tobytes():
        raise SystemExit(f"{PROG}: echo over REST binary did not return the tensor bytes")


def check_echo_grpc(server, body, work):
    """The same over gRPC raw contents, when protoc and grpc_python_plugin exist."""
    plugin = "/usr/bin/grpc_python_plugin"
    if not shutil.which("protoc") or not os.path.exists(plugin):
        return "not checked (no protoc / grpc_python_plugin)"
    try:
        import grpc
    except ImportError:
        return "not checked (no python3-grpcio)"
    proto_dir = h.ROOT / "proto"
    out = pathlib.Path(work) / "stubs"
    out.mkdir(exist_ok=True)
    subprocess.run(["protoc", f"--python_out={out}", f"--grpc_out={out}",
                    f"--plugin=protoc-gen-grpc={plugin}", f"-I{proto_dir}",
                    str(proto_dir / "grpc_predict_v2.proto")], check=True, capture_output=True)
    sys.path.insert(0, str(out))
    import grpc_predict_v2_pb2 as pb2
    import grpc_predict_v2_pb2_grpc as pb2_grpc
    raw = struct.pack(f"<{len(body['inputs'][0]['data'])}f", *body["inputs"][0]["data"])
    req = pb2.ModelInferRequest(model_name="echo")
    t = req.inputs.add()
    t.name, t.datatype = "INPUT0", "FP32"
    t.shape.extend(body["inputs"][0]["shape"])
    req.raw_input_contents.append(raw)
    opts = [("grpc.max_receive_message_length", 64 << 20)]
    with grpc.insecure_channel(server.grpc, options=opts) as ch:
        resp = pb2_grpc.GRPCInferenceServiceStub(ch).ModelInfer(req, timeout=30)
    if list(resp.raw_output_contents) != [raw]:
        raise SystemExit(f"{PROG}: echo over gRPC did not return the tensor bytes")
    return "checked"


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quiver", default=h.DEFAULT_QUIVER)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--window-ms", type=int, default=2000)
    ap.add_argument("--concurrency-small", default="1,64", help="add_sub concurrencies")
    ap.add_argument("--concurrency-large", default="1,16", help="echo tensor concurrencies")
    ap.add_argument("--server-cpus", default="0")
    ap.add_argument("--client-cpus", default="1")
    ap.add_argument("--nice", type=int, default=0)
    ap.add_argument("--markdown", help="also write the report to this file")
    a = ap.parse_args()

    if not os.access(a.quiver, os.X_OK):
        h.die(PROG, f"no quiver binary at {a.quiver} (build it, or give --quiver / $QUIVER)")
    for tool in ("taskset", "nice"):
        if not shutil.which(tool):
            h.die(PROG, f"missing {tool} (scripts/setup.sh --bench)")
    h.check_cpu(a.server_cpus)
    h.check_cpu(a.client_cpus)
    h.install_cleanup()
    prefix = h.priority_prefix(a.nice)
    small = [int(c) for c in a.concurrency_small.split(",")]
    large = [int(c) for c in a.concurrency_large.split(",")]

    work = tempfile.mkdtemp(prefix="quiver-protocol-bench.")
    try:
        return run(a, prefix, small, large, work)
    finally:
        h.stop_all()
        shutil.rmtree(work, ignore_errors=True)


def run(a, prefix, small, large, work):
    load_before = h.loadavg()
    busy = h.cpu_busy()
    start = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    h.note(PROG, f"{start}; {h.machine()}; load average {load_before}; busy {busy}")

    bodies = {}
    for rows in ROWS:
        bodies[rows] = echo_body(rows, seed=rows)
        path = pathlib.Path(work) / f"echo_{rows}x{COLS}.json"
        path.write_text(json.dumps(bodies[rows]))
        bodies[rows]["_path"] = path

    server_args = ["--workers", "1", "--builtin-models", "add_sub,echo",
                   "--grpc-max-receive-message-length", str(64 << 20),
                   "--grpc-max-send-message-length", str(64 << 20)]
    server = h.Server(a.quiver, server_args, a.server_cpus, prefix, work)
    h.note(PROG, f"server pid {server.pid}: HTTP {server.http}, gRPC {server.grpc}")
    for rows in ROWS:
        body = {k: v for k, v in bodies[rows].items() if k != "_path"}
        check_echo_rest(server, body)
        grpc_check = check_echo_grpc(server, body, work)
    h.note(PROG, f"echo answers: REST JSON and binary checked; gRPC {grpc_check}")

    # (label, model, protocol, binary, concurrency, rows or None)
    cases = []
    for c in small:
        cases.append(("add_sub gRPC", "add_sub", "grpc", False, c, None))
        cases.append(("add_sub REST JSON", "add_sub", "http", False, c, None))
    for rows in ROWS:
        for c in large:
            cases.append((f"echo {rows}x{COLS} REST JSON", "echo", "http", False, c, rows))
            cases.append((f"echo {rows}x{COLS} REST binary", "echo", "http", True, c, rows))
            cases.append((f"echo {rows}x{COLS} gRPC raw", "echo", "grpc", False, c, rows))

    def one(case, window_ms, windows):
        label, model, proto, binary, c, rows = case
        data = bodies[rows]["_path"] if rows else None
        return h.run_quiver_bench(a.quiver, server, model, c, window_ms, windows,
                                  a.client_cpus, prefix, work, protocol=proto, binary=binary,
                                  input_data=data)

    h.note(PROG, f"warm-up: {len(cases)} cases x 3 x 300 ms")
    for case in cases:
        one(case, 300, 3)
    results = {case: [] for case in cases}
    for rep in range(a.repeats):
        for case in h.rotated(cases, rep):
            r = one(case, a.window_ms, 3)
            results[case].append(r)
            h.note(PROG, f"round {rep + 1}/{a.repeats} {case[0]:<26} c={case[4]:<3} "
                         f"{r['rps']:9.1f} req/s p50 {r['p50']:8.0f} p99 {r['p99']:8.0f} µs "
                         f"server {r['server_us']:8.1f} µs/req errors {r['errors']}")
    load_after = h.loadavg()
    server.stop()

    errors = sum(r["errors"] for rs in results.values() for r in rs)
    unstable = sum(not r["stable"] for rs in results.values() for r in rs)
    cmd = " ".join(["bench/protocol_bench.py"] + sys.argv[1:])
    out = []
    out.append(f"### Run of {start}\n")
    out.append(f"- Command: `/usr/bin/python3 {cmd}` ({a.repeats} rounds, 3 x {a.window_ms} ms "
               f"windows per case, round-robin, nice {a.nice})")
    out.append(f"- Machine: {h.machine()}; load average before {load_before}, after "
               f"{load_after}; CPUs busy just before: {busy}")
    out.append(f"- quiver: {h.binary_facts(a.quiver)}; checkout commit {h.commit()}")
    out.append(f"- Server: `quiver serve {' '.join(server_args)}` pinned to CPU "
               f"{a.server_cpus}; `quiver bench` (one sender thread) pinned to CPU "
               f"{a.client_cpus}; echo answers: REST JSON and binary checked, gRPC {grpc_check}")
    out.append("")
    out.append("add_sub (two INT32 [1,16] in, two out), requests/s and client latency:\n")
    rows_md = []
    for c in small:
        for label in ("add_sub gRPC", "add_sub REST JSON"):
            case = next(x for x in cases if x[0] == label and x[4] == c)
            rs = results[case]
            lo, hi = h.spread([r["rps"] for r in rs])
            rows_md.append([c, label.replace("add_sub ", ""), h.fmt(h.median([r["rps"] for r in rs])),
                            f"{h.fmt(lo)}–{h.fmt(hi)}", h.fmt(h.median([r["p50"] for r in rs])),
                            h.fmt(h.median([r["p99"] for r in rs])),
                            h.fmt(h.median([r["server_us"] for r in rs]), 1),
                            h.fmt(h.median([r["client_us"] for r in rs]), 1),
                            f"{h.median([r['client_cpu'] for r in rs]) * 100:.0f}%",
                            sum(r["errors"] for r in rs)])
    out.append(h.table(["conc.", "protocol", "req/s (median)", "min–max", "p50 µs", "p99 µs",
                        "server CPU µs/req", "client CPU µs/req", "client CPU", "errors"],
                       rows_md, "rlrrrrrrrr"))
    out.append("")
    for c in small:
        g = h.median([r["rps"] for r in results[next(x for x in cases if x[0] == "add_sub gRPC" and x[4] == c)]])
        j = h.median([r["rps"] for r in results[next(x for x in cases if x[0] == "add_sub REST JSON" and x[4] == c)]])
        out.append(f"- add_sub c={c}: gRPC ÷ REST JSON = **{g / j:.2f}×** requests/s (medians)")
    out.append("")
    out.append(f"echo, one FP32 tensor of {' and '.join(f'{r}x{COLS}' for r in ROWS)}; MB/s = tensor bytes x requests/s, request "
               "direction only (MB = 10^6 B; the answer carries the same tensor back, so "
               "request + response is 2x); body = request body as sent:\n")
    rows_md = []
    for rows in ROWS:
        for c in large:
            for enc in ("REST JSON", "REST binary", "gRPC raw"):
                case = next(x for x in cases if x[0] == f"echo {rows}x{COLS} {enc}" and x[4] == c)
                rs = results[case]
                rps = h.median([r["rps"] for r in rs])
                lo, hi = h.spread([r["rps"] for r in rs])
                tensor = rows * COLS * 4
                body = rs[0]["body_bytes"] or 0
                rows_md.append([f"{rows}x{COLS}", c, enc, h.fmt(rps), f"{h.fmt(lo)}–{h.fmt(hi)}",
                                h.fmt(rps * tensor / 1e6, 1), h.fmt(body), h.fmt(rps * body / 1e6, 1),
                                h.fmt(h.median([r["p50"] for r in rs])),
                                h.fmt(h.median([r["p99"] for r in rs])),
                                h.fmt(h.median([r["server_us"] for r in rs]), 0),
                                h.fmt(h.median([r["client_us"] for r in rs]), 0),
                                sum(r["errors"] for r in rs)])
    out.append(h.table(["tensor", "conc.", "encoding", "req/s (median)", "min–max",
                        "tensor MB/s", "body B", "body MB/s", "p50 µs", "p99 µs",
                        "server CPU µs/req", "client CPU µs/req", "errors"],
                       rows_md, "lrlrrrrrrrrrr"))
    out.append("")
    for rows in ROWS:
        for c in large:
            med = {enc: h.median([r["rps"] for r in results[next(
                x for x in cases if x[0] == f"echo {rows}x{COLS} {enc}" and x[4] == c)]])
                for enc in ("REST JSON", "REST binary", "gRPC raw")}
            out.append(f"- {rows}x{COLS}, c={c}: REST binary ÷ JSON **{med['REST binary'] / med['REST JSON']:.1f}×**, "
                       f"gRPC raw ÷ JSON **{med['gRPC raw'] / med['REST JSON']:.1f}×**, "
                       f"gRPC raw ÷ REST binary **{med['gRPC raw'] / med['REST binary']:.2f}×** (requests/s, medians)")
    out.append("")
    out.append(f"- Errors: {errors} failed requests in {sum(len(v) for v in results.values())} runs"
               + ("." if not errors else " — those figures are not valid."))
    out.append(f"- Runs not stable within 10% over their 3 windows: {unstable} (reported anyway; "
               "the spread column shows the noise between rounds)")
    report = "\n".join(out) + "\n"
    print(report)
    if a.markdown:
        pathlib.Path(a.markdown).write_text(report)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

"""Local HTTP endpoints for the telemetry tests: an OTLP/HTTP (JSON) trace receiver and a
payload-log sink. Both are Python http.server instances on 127.0.0.1, port 0, in a thread,
recording every POST they get."""
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

ADD_SUB_BODY = json.dumps({"inputs": [
    {"name": "INPUT0", "datatype": "INT32", "shape": [1, 16], "data": list(range(16))},
    {"name": "INPUT1", "datatype": "INT32", "shape": [1, 16], "data": [1] * 16},
]}).encode()

SLEEP_BODY = json.dumps({"inputs": [
    {"name": "INPUT0", "datatype": "FP32", "shape": [1, 4], "data": [1, 2, 3, 4]},
]}).encode()


class Received:
    def __init__(self, path, headers, body):
        self.path = path
        self.headers = headers  # lower-case names
        self.body = body

    def json(self):
        return json.loads(self.body)


class HttpReceiver:
    """Records POSTs. `delay` seconds pass before each answer (a slow sink); `status` is the
    answer's status."""

    def __init__(self, delay=0.0, status=200):
        self.delay = delay
        self.status = status
        self.received = []
        self._cond = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as the server's client expects

            def do_POST(self):
                n = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(n)
                headers = {k.lower(): v for k, v in self.headers.items()}
                with receiver._cond:
                    receiver.received.append(Received(self.path, headers, body))
                    receiver._cond.notify_all()
                if receiver.delay:
                    time.sleep(receiver.delay)
                out = b"{}"
                self.send_response(receiver.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(out)))
                self.end_headers()
                self.wfile.write(out)

            def log_message(self, *args):
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.port = self._server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()

    def wait_for(self, predicate, timeout=10.0):
        """Waits until predicate(received) is true; returns the received list either way."""
        deadline = time.time() + timeout
        with self._cond:
            while not predicate(self.received):
                left = deadline - time.time()
                if left <= 0:
                    break
                self._cond.wait(left)
            return list(self.received)

    def wait_count(self, n, timeout=10.0):
        return self.wait_for(lambda r: len(r) >= n, timeout)

    def close(self):
        self._server.shutdown()
        self._server.server_close()


def attributes(obj):
    """The OTLP attribute list of a span or resource as a dict of plain values."""
    out = {}
    for a in obj.get("attributes", []):
        (kind, value), = a["value"].items()
        out[a["key"]] = int(value) if kind == "intValue" else value
    return out


def spans_of(received):
    """Every span in the OTLP/JSON export requests received, each with its resource attributes
    under "_resource"."""
    spans = []
    for r in received:
        doc = r.json()
        for rs in doc["resourceSpans"]:
            res = attributes(rs["resource"])
            for ss in rs["scopeSpans"]:
                for s in ss["spans"]:
                    s["_resource"] = res
                    s["_attrs"] = attributes(s)
                    spans.append(s)
    return spans

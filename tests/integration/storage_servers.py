"""Servers for test_storage.py: a static HTTP server with a request log, s3rver (a real
S3-protocol server from npm, run through scripts/s3-server.sh), and a small S3 endpoint that
verifies AWS Signature Version 4 itself (s3rver checks the key id but not the signature).
"""
import datetime
import hashlib
import hmac
import http.server
import json
import os
import pathlib
import subprocess
import tempfile
import threading
import urllib.parse

ROOT = pathlib.Path(__file__).resolve().parents[2]
S3RVER_KEY = "S3RVER"
S3RVER_SECRET = "S3RVER"


def storage_fetch_bin():
    """The storage_fetch test tool, beside the quiver binary CTest names in $QUIVER_BIN."""
    explicit = os.environ.get("STORAGE_FETCH_BIN")
    if explicit:
        return explicit
    quiver = pathlib.Path(os.environ.get("QUIVER_BIN", str(ROOT / "build" / "bin" / "quiver")))
    return str(quiver.parent / "storage_fetch")


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


class StaticServer:
    """Python's http.server serving `directory` on 127.0.0.1:<free port>; `requests` records
    (method, path) of every request."""

    def __init__(self, directory):
        self.requests = []
        log = self.requests

        class Handler(_QuietHandler):
            def __init__(self, *a, **kw):
                super().__init__(*a, directory=str(directory), **kw)

            def send_head(self):
                log.append((self.command, self.path))
                return super().send_head()

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    def url(self, path):
        return f"http://127.0.0.1:{self.port}/{path.lstrip('/')}"

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()


class S3rver:
    """s3rver on 127.0.0.1:<free port>, installed on first use by scripts/s3-server.sh.
    `log` holds one dict per answered request: method, url, status."""

    def __init__(self):
        subprocess.run([str(ROOT / "scripts" / "s3-server.sh"), "--install"], check=True,
                       stdout=subprocess.DEVNULL)
        self.data = tempfile.TemporaryDirectory(prefix="quiver-s3rver-")
        self.proc = subprocess.Popen([str(ROOT / "scripts" / "s3-server.sh"), self.data.name, "0"],
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if "listening on" not in line:
            self.proc.kill()
            raise RuntimeError("s3rver did not start: " + line + self.proc.stderr.read())
        self.port = int(line.rsplit(":", 1)[1])
        self.endpoint = f"http://127.0.0.1:{self.port}"
        self.log = []
        self._lock = threading.Condition()
        self._sentinels = 0
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.proc.stdout:
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            with self._lock:
                self.log.append(entry)
                self._lock.notify_all()

    def entries(self):
        """Every request answered so far, in order. Call after sync() to include all requests
        of a finished client: s3rver prints each line after answering, so one may still be in
        flight."""
        with self._lock:
            return [e for e in self.log if "__sentinel_" not in e["url"]]

    def sync(self, timeout=10.0):
        """Makes one marker request and waits until its log line arrives: every request answered
        before it is then in the log."""
        self._sentinels += 1
        marker = f"/models/__sentinel_{self._sentinels}"
        self.request("GET", marker)
        with self._lock:
            if not self._lock.wait_for(lambda: any(e["url"] == marker for e in self.log), timeout):
                raise RuntimeError("s3rver's request log did not show " + marker)

    def request(self, method, path, data=None, key=S3RVER_KEY, secret=S3RVER_SECRET):
        """A SigV4-signed request made by curl (--aws-sigv4); returns (status, body)."""
        cmd = ["curl", "-sS", "-X", method, "--aws-sigv4", "aws:amz:us-east-1:s3",
               "--user", f"{key}:{secret}", "-H", "x-amz-content-sha256: UNSIGNED-PAYLOAD",
               "-o", "-", "-w", "\n%{http_code}", self.endpoint + path]
        if data is not None:
            cmd[1:1] = ["--data-binary", "@-"]
        out = subprocess.run(cmd, input=data, capture_output=True, check=True).stdout
        body, _, status = out.rpartition(b"\n")
        return int(status), body

    def stop(self):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.data.cleanup()


def _sign(key, msg):
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


class SigV4CheckingS3:
    """A minimal S3 endpoint (ListObjectsV2 and GET object, path style) that verifies each
    request's AWS Signature Version 4 as AWS does, with its own code, and answers 403
    SignatureDoesNotMatch otherwise. `objects` maps "bucket/key" to bytes."""

    def __init__(self, key_id, secret, region, objects):
        self.verified = []
        outer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def _reply(self, status, body, ctype="application/xml"):
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(body)

            def do_GET(self):
                error = outer._verify(self, key_id, secret, region)
                if error:
                    self._reply(403, (f"<Error><Code>SignatureDoesNotMatch</Code><Message>{error}"
                                      "</Message></Error>").encode())
                    return
                outer.verified.append(self.path)
                path, _, query = self.path.partition("?")
                bucket, _, key = urllib.parse.unquote(path.lstrip("/")).partition("/")
                params = urllib.parse.parse_qs(query)
                if not key and params.get("list-type") == ["2"]:
                    prefix = params.get("prefix", [""])[0]
                    items = "".join(
                        f"<Contents><Key>{k.partition('/')[2]}</Key><ETag>\"{hashlib.md5(v).hexdigest()}\""
                        f"</ETag><Size>{len(v)}</Size></Contents>"
                        for k, v in sorted(objects.items())
                        if k.startswith(bucket + "/" + prefix))
                    self._reply(200, (f"<ListBucketResult><Name>{bucket}</Name>{items}"
                                      "<IsTruncated>false</IsTruncated></ListBucketResult>").encode())
                    return
                body = objects.get(f"{bucket}/{key}")
                if body is None:
                    self._reply(404, b"<Error><Code>NoSuchKey</Code></Error>")
                    return
                self._reply(200, body, "application/octet-stream")

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    @staticmethod
    def _verify(handler, key_id, secret, region):
        auth = handler.headers.get("Authorization", "")
        if not auth.startswith("AWS4-HMAC-SHA256 "):
            return "not signed with AWS4-HMAC-SHA256"
        fields = dict(part.strip().split("=", 1) for part in auth[len("AWS4-HMAC-SHA256 "):].split(","))
        cred_key, date, cred_region, service, terminal = fields["Credential"].split("/")
        if cred_key != key_id or cred_region != region or service != "s3" or terminal != "aws4_request":
            return f"bad credential scope {fields['Credential']}"
        amz_date = handler.headers.get("x-amz-date", "")
        stamp = datetime.datetime.strptime(amz_date, "%Y%m%dT%H%M%SZ").replace(tzinfo=datetime.timezone.utc)
        if abs((datetime.datetime.now(datetime.timezone.utc) - stamp).total_seconds()) > 900:
            return "x-amz-date too far from now"
        signed = fields["SignedHeaders"].split(";")
        path, _, query = handler.path.partition("?")
        pairs = sorted(tuple((p.split("=", 1) + [""])[:2]) for p in query.split("&") if p)
        canonical_query = "&".join(f"{k}={v}" for k, v in pairs)
        canonical_headers = "".join(
            f"{h}:{' '.join(handler.headers.get(h, '').split())}\n" for h in signed)
        payload = handler.headers.get("x-amz-content-sha256", hashlib.sha256(b"").hexdigest())
        canonical = "\n".join([handler.command, path, canonical_query, canonical_headers,
                               fields["SignedHeaders"], payload])
        scope = f"{date}/{region}/s3/aws4_request"
        to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                             hashlib.sha256(canonical.encode()).hexdigest()])
        k = _sign(("AWS4" + secret).encode(), date)
        k = _sign(_sign(_sign(k, region), "s3"), "aws4_request")
        expected = hmac.new(k, to_sign.encode(), hashlib.sha256).hexdigest()
        if not hmac.compare_digest(expected, fields["Signature"]):
            return "signature mismatch"
        return None

    def stop(self):
        self.httpd.shutdown()
        self.httpd.server_close()

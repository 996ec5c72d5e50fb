"""The control plane: `quiver up` with its Kubernetes-shaped API, driven by the CLI verbs and by
`requests`, with durable state that survives kill -9."""
import json
import os
import pathlib
import re
import signal
import sqlite3
import subprocess
import threading

import pytest
import requests

from conftest import QUIVER_BIN

API = "/apis/serving.kserve.io/v1beta1/namespaces/default/inferenceservices"

ISVC_YAML = """\
apiVersion: serving.kserve.io/v1beta1
kind: InferenceService
metadata:
  name: sklearn-iris
  labels:
    team: ml
spec:
  predictor:
    minReplicas: {min_replicas}
    model:
      modelFormat:
        name: sklearn
      storageUri: gs://kfserving-examples/models/sklearn/1.0/model
"""

RUNTIME_YAML = """\
apiVersion: serving.kserve.io/v1alpha1
kind: ServingRuntime
metadata:
  name: kserve-sklearnserver
spec:
  supportedModelFormats:
    - name: sklearn
      version: "1"
      autoSelect: true
      priority: 1
  protocolVersions: [v1, v2]
  containers:
    - name: kserve-container
      image: kserve/sklearnserver:latest
      args: ["--model_name={{.Name}}", "--model_dir=/mnt/models", "--http_port=8080"]
"""

LISTEN_RE = re.compile(r"quiver control plane API listening on (http://\S+)")


class Daemon:
    """A `quiver up` child process on port 0; its stderr is collected in `log`."""

    def __init__(self, state_dir, args=()):
        self.state_dir = pathlib.Path(state_dir)
        self.proc = subprocess.Popen(
            # The API and the state only: these tests write status themselves, which the
            # reconciler would otherwise own (tests/integration/test_up.py runs it all).
            [QUIVER_BIN, "up", "--state-dir", str(state_dir), "--api-port", "0",
             "--controllers", "false", *args],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.log_lines = []
        threading.Thread(target=self._drain_stderr, daemon=True).start()
        line = self.proc.stdout.readline()
        m = LISTEN_RE.search(line)
        if not m:
            self.proc.kill()
            self.proc.wait()
            raise RuntimeError(f"quiver up did not start: {line!r}\n{self.log}")
        self.url = m.group(1)

    def _drain_stderr(self):
        for line in self.proc.stderr:
            self.log_lines.append(line)

    @property
    def log(self):
        return "".join(self.log_lines)

    def stop(self, sig=signal.SIGTERM):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        return self.proc.returncode


@pytest.fixture
def daemons():
    started = []

    def start(state_dir, args=()):
        d = Daemon(state_dir, args)
        started.append(d)
        return d

    yield start
    for d in started:
        d.stop(signal.SIGKILL)


def cli(state_dir, *args, stdin=None, env=None):
    """Runs a CLI verb against the daemon of `state_dir` (found through api.addr)."""
    return subprocess.run(
        [QUIVER_BIN, *args], input=stdin, capture_output=True, text=True, timeout=60,
        env={**os.environ, "QUIVER_STATE_DIR": str(state_dir), **(env or {})})


def write(path, text):
    path.write_text(text)
    return str(path)


def table(stdout):
    """A kubectl-style table as a list of dicts keyed by header (cells split on 3+ spaces)."""
    lines = [l for l in stdout.splitlines() if l.strip()]
    header_line = lines[0]
    fields = list(re.finditer(r"\S+", header_line))
    names = [f.group(0) for f in fields]
    starts = [f.start() for f in fields]
    rows = []
    for line in lines[1:]:
        cells = []
        for i, s in enumerate(starts):
            end = starts[i + 1] if i + 1 < len(starts) else len(line)
            cells.append(line[s:end].strip())
        rows.append(dict(zip(names, cells)))
    return rows


def test_cli_apply_get_describe_delete(tmp_path, daemons):
    state = tmp_path / "state"
    d = daemons(state)
    assert (state / "api.addr").read_text().strip() == d.url

    manifests = tmp_path / "manifests"
    manifests.mkdir()
    write(manifests / "isvc.yaml", ISVC_YAML.format(min_replicas=1))
    write(manifests / "runtime.yaml", RUNTIME_YAML)
    r = cli(state, "apply", "-f", str(manifests))
    assert r.returncode == 0, r.stderr
    assert r.stdout.splitlines() == [
        "inferenceservice.serving.kserve.io/sklearn-iris created",
        "servingruntime.serving.kserve.io/kserve-sklearnserver created",
    ]

    r = cli(state, "apply", "-f", str(manifests / "isvc.yaml"))
    assert r.stdout.strip() == "inferenceservice.serving.kserve.io/sklearn-iris unchanged"
    r = cli(state, "apply", "-f", "-", stdin=ISVC_YAML.format(min_replicas=2))
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == "inferenceservice.serving.kserve.io/sklearn-iris configured"
    obj = requests.get(d.url + API + "/sklearn-iris", timeout=10).json()
    assert obj["metadata"]["generation"] == 2
    assert obj["spec"]["predictor"]["minReplicas"] == 2

    # What the reconciler will write; the table shows it in KServe's print columns.
    status = {
        "url": "http://sklearn-iris.default.example.com",
        "conditions": [{"type": "Ready", "status": "True",
                        "lastTransitionTime": "2026-01-01T00:00:00Z"}],
        "components": {"predictor": {"traffic": [
            {"revisionName": "sklearn-iris-predictor-00002", "percent": 90,
             "latestRevision": True},
            {"revisionName": "sklearn-iris-predictor-00001", "percent": 10, "tag": "prev",
             "latestRevision": False}]}},
    }
    r = requests.put(d.url + API + "/sklearn-iris/status", json={"status": status}, timeout=10)
    assert r.status_code == 200, r.text

    r = cli(state, "get", "isvc")
    assert r.returncode == 0, r.stderr
    assert r.stdout.split("\n")[0].split() == [
        "NAME", "URL", "READY", "PREV", "LATEST", "PREVROLLEDOUTREVISION",
        "LATESTREADYREVISION", "AGE"]
    [row] = table(r.stdout)
    assert row["NAME"] == "sklearn-iris"
    assert row["URL"] == "http://sklearn-iris.default.example.com"
    assert row["READY"] == "True"
    assert row["PREV"] == "10" and row["LATEST"] == "90"
    assert row["PREVROLLEDOUTREVISION"] == "sklearn-iris-predictor-00001"
    assert row["LATESTREADYREVISION"] == "sklearn-iris-predictor-00002"
    assert re.fullmatch(r"\d+s", row["AGE"])

    r = cli(state, "get", "inferenceservices", "-A")
    assert table(r.stdout)[0]["NAMESPACE"] == "default"
    r = cli(state, "get", "servingruntimes")
    [rt] = table(r.stdout)
    assert rt["NAME"] == "kserve-sklearnserver"
    assert rt["MODELTYPE"] == "sklearn" and rt["CONTAINERS"] == "kserve-container"

    r = cli(state, "get", "isvc", "sklearn-iris", "-o", "json")
    assert json.loads(r.stdout)["metadata"]["labels"] == {"team": "ml"}
    r = cli(state, "get", "isvc", "sklearn-iris", "-o", "yaml")
    assert "name: sklearn-iris" in r.stdout and "storageUri:" in r.stdout
    assert r.stdout.endswith("\n")  # so that a shell prompt does not follow on the line
    r = cli(state, "get", "isvc", "-n", "prod")
    assert r.returncode == 0 and "No resources found in prod namespace." in r.stderr

    r = cli(state, "describe", "isvc", "sklearn-iris")
    assert r.returncode == 0, r.stderr
    assert re.search(r"^Name:\s+sklearn-iris$", r.stdout, re.M)
    assert re.search(r"^Labels:\s+team=ml$", r.stdout, re.M)
    assert re.search(r"^  Generation:\s+2$", r.stdout, re.M)
    assert re.search(r"predictor\s+sklearn-iris-predictor-00001\s+10\s+prev", r.stdout)
    assert "Events:       <none>" in r.stdout

    r = cli(state, "delete", "isvc", "sklearn-iris")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == 'inferenceservice.serving.kserve.io "sklearn-iris" deleted'
    r = cli(state, "get", "isvc", "sklearn-iris")
    assert r.returncode == 1
    assert r.stderr.strip() == (
        'Error from server (NotFound): inferenceservices.serving.kserve.io "sklearn-iris" '
        'not found')
    r = cli(state, "delete", "-f", str(manifests / "runtime.yaml"))
    assert r.stdout.strip() == 'servingruntime.serving.kserve.io "kserve-sklearnserver" deleted'


def test_cli_rejects_bad_manifests_before_sending(tmp_path, daemons):
    state = tmp_path / "state"
    daemons(state)
    bad = write(tmp_path / "bad.yaml",
                ISVC_YAML.format(min_replicas=-1) + "---\n" + RUNTIME_YAML)
    r = cli(state, "apply", "-f", bad)
    assert r.returncode == 1
    assert "bad.yaml" in r.stderr and "spec.predictor.minReplicas" in r.stderr
    # Nothing was sent, not even the valid second document.
    r = cli(state, "get", "servingruntimes")
    assert "No resources found" in r.stderr

    broken = write(tmp_path / "broken.yaml", "kind: InferenceService\nmetadata: [\n")
    r = cli(state, "apply", "-f", broken)
    assert r.returncode == 1 and "broken.yaml" in r.stderr and "line" in r.stderr

    r = cli(state, "get", "pods")
    assert r.returncode == 1 and 'resource type "pods"' in r.stderr


def test_api_with_requests(tmp_path, daemons):
    d = daemons(tmp_path / "state")
    assert requests.get(d.url + "/healthz", timeout=10).text == "ok"

    body = ISVC_YAML.format(min_replicas=1)
    r = requests.post(d.url + API, data=body, headers={"Content-Type": "application/yaml"},
                      timeout=10)
    assert r.status_code == 201, r.text
    created = r.json()
    assert created["metadata"]["generation"] == 1
    uid = created["metadata"]["uid"]
    assert re.fullmatch(r"[0-9a-f-]{36}", uid)

    r = requests.post(d.url + API, data=body, headers={"Content-Type": "application/yaml"},
                      timeout=10)
    assert r.status_code == 409 and r.json()["reason"] == "AlreadyExists"

    lst = requests.get(d.url + API, timeout=10).json()
    assert lst["kind"] == "InferenceServiceList"
    assert [i["metadata"]["name"] for i in lst["items"]] == ["sklearn-iris"]
    assert lst["metadata"]["resourceVersion"] == created["metadata"]["resourceVersion"]
    across = requests.get(d.url + "/apis/serving.kserve.io/v1beta1/inferenceservices",
                          timeout=10).json()
    assert len(across["items"]) == 1

    # Replace with the version we read, then again with the now stale one.
    obj = dict(created)
    obj["spec"]["predictor"]["minReplicas"] = 3
    r = requests.put(d.url + API + "/sklearn-iris", json=obj, timeout=10)
    assert r.status_code == 200, r.text
    assert r.json()["metadata"]["generation"] == 2
    obj["spec"]["predictor"]["minReplicas"] = 4
    r = requests.put(d.url + API + "/sklearn-iris", json=obj, timeout=10)
    assert r.status_code == 409
    status = r.json()
    assert status["kind"] == "Status" and status["reason"] == "Conflict"
    assert "has been modified" in status["message"]

    invalid = ISVC_YAML.format(min_replicas=-1).replace("sklearn-iris", "bad")
    r = requests.post(d.url + API, data=invalid, headers={"Content-Type": "application/yaml"},
                      timeout=10)
    assert r.status_code == 422, r.text
    assert r.json()["reason"] == "Invalid"
    assert "spec.predictor.minReplicas" in r.json()["message"]

    unknown = ISVC_YAML.format(min_replicas=1).replace("minReplicas", "minReplica").replace(
        "sklearn-iris", "typo")
    r = requests.post(d.url + API, data=unknown, headers={"Content-Type": "application/yaml"},
                      timeout=10)
    assert r.status_code == 422
    assert "spec.predictor.minReplica" in r.json()["message"]

    r = requests.get(d.url + API.replace("v1beta1", "v1alpha1"), timeout=10)
    assert r.status_code == 404 and "v1beta1" in r.json()["message"]

    r = requests.get(d.url + API + "/missing", timeout=10)
    assert r.status_code == 404
    assert r.json() == {
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": 'inferenceservices.serving.kserve.io "missing" not found',
        "reason": "NotFound",
        "details": {"name": "missing", "group": "serving.kserve.io",
                    "kind": "inferenceservices"},
        "code": 404}

    r = requests.delete(d.url + API + "/sklearn-iris", timeout=10)
    assert r.status_code == 200 and r.json()["metadata"]["uid"] == uid
    assert requests.get(d.url + API + "/sklearn-iris", timeout=10).status_code == 404


def test_non_loopback_listen_requires_token(tmp_path, daemons):
    state = tmp_path / "state"
    d = daemons(state, ["--api-address", "0.0.0.0"])
    token_file = state / "api.token"
    assert oct(token_file.stat().st_mode & 0o777) == "0o600"
    token = token_file.read_text().strip()
    assert len(token) >= 32

    assert requests.get(d.url + "/healthz", timeout=10).status_code == 200
    r = requests.get(d.url + API, timeout=10)
    assert r.status_code == 401 and r.json()["reason"] == "Unauthorized"
    r = requests.get(d.url + API, headers={"Authorization": "Bearer wrong"}, timeout=10)
    assert r.status_code == 401
    r = requests.get(d.url + API, headers={"Authorization": f"Bearer {token}"}, timeout=10)
    assert r.status_code == 200

    # The CLI on this machine finds the token in the state dir; a wrong one is refused.
    isvc = write(tmp_path / "isvc.yaml", ISVC_YAML.format(min_replicas=1))
    r = cli(state, "apply", "-f", isvc)
    assert r.returncode == 0, r.stderr
    r = cli(state, "get", "isvc", env={"QUIVER_TOKEN": "nope"})
    assert r.returncode == 1 and "Error from server (Unauthorized)" in r.stderr
    d.stop()

    # An explicit token (from a file) replaces the generated one.
    secret = tmp_path / "secret"
    secret.write_text("my-own-token\n")
    d = daemons(state, ["--api-address", "0.0.0.0", "--api-token-file", str(secret)])
    r = requests.get(d.url + API, headers={"Authorization": "Bearer my-own-token"}, timeout=10)
    assert r.status_code == 200 and len(r.json()["items"]) == 1


def test_state_survives_kill_9(tmp_path, daemons):
    state = tmp_path / "state"
    d = daemons(state)
    for i in range(3):
        text = ISVC_YAML.format(min_replicas=i).replace("sklearn-iris", f"model-{i}")
        r = cli(state, "apply", "-f", "-", stdin=text)
        assert r.returncode == 0, r.stderr
    r = cli(state, "apply", "-f", "-", stdin=RUNTIME_YAML)
    assert r.returncode == 0, r.stderr
    requests.put(d.url + API + "/model-1/status", json={"status": {"url": "http://m1"}},
                 timeout=10).raise_for_status()
    before = requests.get(d.url + API, timeout=10).json()

    d.stop(signal.SIGKILL)
    assert d.proc.returncode == -signal.SIGKILL
    d2 = daemons(state)  # the lock died with the process
    after = requests.get(d2.url + API, timeout=10).json()
    assert [(i["metadata"]["name"], i["metadata"]["uid"], i["metadata"]["resourceVersion"])
            for i in after["items"]] == [
        (i["metadata"]["name"], i["metadata"]["uid"], i["metadata"]["resourceVersion"])
        for i in before["items"]]
    assert after["items"][1]["status"]["url"] == "http://m1"
    assert after["metadata"]["resourceVersion"] == before["metadata"]["resourceVersion"]
    r = cli(state, "get", "servingruntime", "kserve-sklearnserver", "-o", "json")
    assert r.returncode == 0, r.stderr

    # A second daemon on the same state dir is refused while the first runs.
    second = subprocess.run([QUIVER_BIN, "up", "--state-dir", str(state), "--api-port", "0"],
                            capture_output=True, text=True, timeout=30)
    assert second.returncode == 1 and "another `quiver up`" in second.stderr

    assert d2.stop() == 0
    assert not (state / "api.addr").exists()


def test_logs_read_the_replica_files_the_store_records(tmp_path, daemons):
    state = tmp_path / "state"
    daemons(state)
    r = cli(state, "apply", "-f", "-", stdin=ISVC_YAML.format(min_replicas=1))
    assert r.returncode == 0, r.stderr
    r = cli(state, "logs", "isvc/sklearn-iris")
    assert r.returncode == 1 and "has no predictor replicas" in r.stderr

    # Stand in for the supervisor: record a revision and a replica with its log file.
    log = tmp_path / "replica-0.log"
    log.write_text("model sklearn-iris loaded\nlistening on 8080\n")
    db = sqlite3.connect(state / "state.db")
    key = "isvc/default/sklearn-iris/predictor"
    with db:
        db.execute("INSERT INTO revisions VALUES (?, 1, 'sklearn-iris-predictor-00001', 'fp',"
                   " '{}', '2026-01-01T00:00:00Z', '{}')", (key,))
        db.execute("INSERT INTO replicas VALUES (?, 'sklearn-iris-predictor-00001', 0, 1, 1,"
                   " '[8080]', ?, 'Ready')", (key, str(log)))
    db.close()
    r = cli(state, "logs", "isvc/sklearn-iris", "--component", "predictor")
    assert r.returncode == 0, r.stderr
    assert r.stdout == "model sklearn-iris loaded\nlistening on 8080\n"
    r = cli(state, "describe", "isvc", "sklearn-iris")
    assert re.search(r"predictor\s+sklearn-iris-predictor-00001\s+\S+\s+1\s+1", r.stdout)

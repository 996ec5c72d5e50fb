"""`quiver render` as a user runs it: KServe's documentation examples rendered to Kubernetes
objects, compared byte for byte with reviewed files under tests/golden/render/expected, and every
object (and deploy/kserve's ClusterServingRuntimes) validated against the published schemas by
scripts/k8s-validator.sh. Also `quiver storage-initializer`, which the rendered init containers
run.

A renderer change shows up as a diff of the expected files. To accept one after reviewing it:
    QUIVER_UPDATE_GOLDEN=1 QUIVER_BIN=build/bin/quiver /usr/bin/python3 -m pytest tests/integration/test_render.py
"""
import http.server
import io
import json
import os
import pathlib
import subprocess
import tarfile
import threading

import pytest
import yaml

from conftest import QUIVER_BIN, ROOT

GOLDEN = ROOT / "tests" / "golden" / "render"
INPUTS = GOLDEN / "inputs"
EXPECTED = GOLDEN / "expected"
VALIDATOR = ROOT / "scripts" / "k8s-validator.sh"
IMAGE = "registry.example.com/quiver:0.1.0"
UPDATE = os.environ.get("QUIVER_UPDATE_GOLDEN") == "1"

# (input, mode, extra flags): one expected file each, named <input>.<mode>.yaml.
CASES = [
    ("sklearn", "standard", []),
    ("sklearn", "knative", []),
    ("xgboost", "standard", []),
    ("xgboost", "knative", []),
    ("canary", "knative", ["--previous-revision",
                           "sklearn-iris-predictor=sklearn-iris-predictor-1f2e3d4c"]),
    ("canary-standard", "standard", []),
    ("transformer", "standard", []),
    ("transformer", "knative", []),
    ("graph", "standard", []),
    ("graph", "knative", []),
    ("scaling", "standard", []),
    ("scaling", "knative", []),
]


def render(*args, stdin=None):
    return subprocess.run([QUIVER_BIN, "render", *args], input=stdin, capture_output=True,
                          text=True, timeout=60)


def render_case(name, mode, extra, output="yaml"):
    result = render("-f", str(INPUTS / f"{name}.yaml"), "--mode", mode, "--image", IMAGE,
                    "-o", output, *extra)
    assert result.returncode == 0, result.stderr
    return result.stdout


def validate(*files):
    result = subprocess.run([str(VALIDATOR), *map(str, files)], capture_output=True, text=True,
                            timeout=300)
    return result.returncode, result.stdout + result.stderr


@pytest.fixture(scope="module")
def validator_ready():
    installed = ROOT / ".cache" / "node" / "node_modules" / "kubernetes-models" / "package.json"
    if not installed.exists():
        pytest.fail("the schema validators are not installed: run scripts/k8s-validator.sh "
                    "--install (scripts/setup.sh --test does)")


@pytest.mark.parametrize("name,mode,extra", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_golden(name, mode, extra):
    out = render_case(name, mode, extra)
    expected = EXPECTED / f"{name}.{mode}.yaml"
    if UPDATE:
        EXPECTED.mkdir(parents=True, exist_ok=True)
        expected.write_text(out)
    assert expected.exists(), f"{expected} is missing; run with QUIVER_UPDATE_GOLDEN=1 and review"
    assert out == expected.read_text(), (
        f"quiver render differs from {expected.relative_to(ROOT)}; if the change is intended, "
        "rerun with QUIVER_UPDATE_GOLDEN=1 and review the diff")


def test_every_expected_file_is_a_case():
    names = {f"{n}.{m}.yaml" for n, m, _ in CASES}
    assert {p.name for p in EXPECTED.glob("*.yaml")} == names


def test_same_input_same_bytes_and_json_holds_the_same_objects():
    for name, mode, extra in CASES:
        text = render_case(name, mode, extra)
        assert render_case(name, mode, extra) == text
        docs = [d for d in yaml.safe_load_all(text) if d is not None]
        listed = json.loads(render_case(name, mode, extra, output="json"))
        assert listed["kind"] == "List"
        assert listed["items"] == docs


def test_labels_let_kubectl_delete_everything_of_one_service():
    for name, mode, extra in CASES:
        for doc in yaml.safe_load_all(render_case(name, mode, extra)):
            labels = doc["metadata"]["labels"]
            assert labels["app.kubernetes.io/managed-by"] == "quiver", doc["metadata"]["name"]
            owner = labels.get("serving.kserve.io/inferenceservice") or \
                labels.get("serving.kserve.io/inferencegraph")
            assert owner and doc["metadata"]["name"].startswith(owner), doc["metadata"]
            # Pods carry the same labels, so `kubectl get pods -l` finds them too.
            template = doc.get("spec", {}).get("template", {}).get("metadata")
            if template:
                assert template["labels"]["app.kubernetes.io/managed-by"] == "quiver"


def test_rendered_objects_pass_the_published_schemas(validator_ready, tmp_path):
    files = sorted(EXPECTED.glob("*.yaml"))
    assert files
    # -o json goes through the same check (a kind: List is expanded).
    json_file = tmp_path / "sklearn.json"
    json_file.write_text(render_case("sklearn", "standard", [], output="json"))
    rc, out = validate(*files, json_file)
    assert rc == 0, out
    kinds = {line.split()[1] for line in out.splitlines() if line.startswith("ok ")}
    assert kinds >= {"Deployment", "Service", "HorizontalPodAutoscaler", "ScaledObject",
                     "HTTPRoute", "ConfigMap"}, kinds


def test_kserve_runtimes_pass_the_schemas(validator_ready):
    files = sorted((ROOT / "deploy" / "kserve").glob("quiver-*.yaml"))
    assert len(files) == 5
    rc, out = validate(*files)
    assert rc == 0, out
    assert out.count("ok ClusterServingRuntime") == 5


def test_the_validator_rejects_invalid_objects(validator_ready, tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: x}\n"
        "spec: {replicas: two, selector: {}, template: {spec: {containers: []}}}\n"
        "---\n"
        "apiVersion: gateway.networking.k8s.io/v1\nkind: HTTPRoute\nmetadata: {name: r}\n"
        "spec: {rules: [{backendRefs: [{name: s, port: 80, weight: -1}]}]}\n"
        "---\n"
        "apiVersion: serving.kserve.io/v1alpha1\nkind: ClusterServingRuntime\n"
        "metadata: {name: r}\n"
        "spec: {supportedModelFormats: [{name: sklearn, priority: 0}], containers: "
        "[{name: c, image: i, ports: [{containerPort: http}]}]}\n"
        "---\n"
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n")
    rc, out = validate(bad)
    assert rc == 1
    assert "Deployment x" in out and "replicas" in out, out
    assert "HTTPRoute r" in out and "weight" in out, out
    assert "ClusterServingRuntime r" in out and "priority" in out, out
    assert "no validator for example.com/v1/Widget" in out, out
    assert not any(line.startswith("ok ") for line in out.splitlines()), out


def test_stdin_and_directories_are_read(tmp_path):
    text = (INPUTS / "sklearn.yaml").read_text()
    from_stdin = render("-f", "-", "--mode", "standard", "--image", IMAGE, stdin=text)
    assert from_stdin.returncode == 0, from_stdin.stderr
    assert from_stdin.stdout == render_case("sklearn", "standard", [])
    (tmp_path / "a.yaml").write_text(text)
    (tmp_path / "b.yaml").write_text((INPUTS / "xgboost.yaml").read_text())
    from_dir = render("-f", str(tmp_path), "--mode", "standard", "--image", IMAGE)
    assert from_dir.returncode == 0, from_dir.stderr
    assert from_dir.stdout == render_case("sklearn", "standard", []) + "---\n" + \
        render_case("xgboost", "standard", [])


def test_errors_name_the_document_and_the_field(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\n"
        "metadata: {name: ok-one}\n"
        "spec: {predictor: {model: {modelFormat: {name: sklearn}, storageUri: s3://b/m}}}\n"
        "---\n"
        "apiVersion: serving.kserve.io/v1beta1\nkind: InferenceService\nmetadata: {name: bad}\n"
        "spec: {predictor: {minReplicas: -2, model: {modelFormat: {name: sklearn}, "
        "storageUri: s3://b/m}}}\n"
        "---\n"
        "apiVersion: apps/v1\nkind: Deployment\nmetadata: {name: d}\n")
    result = render("-f", str(bad))
    assert result.returncode == 1
    assert result.stdout == ""  # nothing half-rendered to pipe into kubectl
    assert f"{bad}, document 2 (InferenceService bad): spec.predictor.minReplicas: must be >= 0" \
        in result.stderr, result.stderr
    assert f"{bad}, document 3 (Deployment d): kind: unknown kind" in result.stderr, result.stderr

    result = render("-f", str(INPUTS / "canary.yaml"), "--mode", "standard")
    assert result.returncode == 1
    assert "spec.predictor.canaryTrafficPercent" in result.stderr

    result = render("-f", str(INPUTS / "sklearn.yaml"), "--mode", "serverful")
    assert result.returncode == 2
    assert "--mode: expected standard or knative" in result.stderr

    result = render("-f", str(tmp_path / "missing.yaml"))
    assert result.returncode == 1 and "does not exist" in result.stderr


# ---- quiver storage-initializer: what the rendered init containers run ----


def test_storage_initializer_copies_a_local_model(tmp_path):
    source = tmp_path / "model"
    (source / "sub").mkdir(parents=True)
    (source / "model.bst").write_bytes(b"\x00\x01model")
    (source / "sub" / "config.yaml").write_text("format: xgboost\n")
    dest = tmp_path / "mnt" / "models"
    result = subprocess.run([QUIVER_BIN, "storage-initializer", f"file://{source}", str(dest)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (dest / "model.bst").read_bytes() == b"\x00\x01model"
    assert (dest / "sub" / "config.yaml").read_text() == "format: xgboost\n"
    assert source.exists()  # a local source is copied, never moved
    assert sorted(p.name for p in dest.iterdir()) == ["model.bst", "sub"]

    # A single file lands inside the destination folder.
    single = tmp_path / "single"
    result = subprocess.run([QUIVER_BIN, "storage-initializer", str(source / "model.bst"),
                             str(single)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert (single / "model.bst").read_bytes() == b"\x00\x01model"


def test_storage_initializer_downloads_and_unpacks_http(tmp_path):
    archive = io.BytesIO()
    with tarfile.open(fileobj=archive, mode="w:gz") as tar:
        data = b"weights" * 1000
        info = tarfile.TarInfo("model.pt")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    body = archive.getvalue()

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            if self.path != "/m.tar.gz":
                self.send_error(404)
                return
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_HEAD(self):
            self.send_response(200 if self.path == "/m.tar.gz" else 404)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        url = f"http://127.0.0.1:{server.server_address[1]}"
        dest = tmp_path / "models"
        result = subprocess.run([QUIVER_BIN, "storage-initializer", f"{url}/m.tar.gz", str(dest)],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 0, result.stderr
        assert (dest / "model.pt").read_bytes() == b"weights" * 1000
        assert sorted(p.name for p in dest.iterdir()) == ["model.pt"]  # no cache left behind

        result = subprocess.run([QUIVER_BIN, "storage-initializer", "--attempts", "1",
                                 f"{url}/missing.tar.gz", str(tmp_path / "other")],
                                capture_output=True, text=True, timeout=60)
        assert result.returncode == 1
        assert "missing.tar.gz" in result.stderr
    finally:
        server.shutdown()

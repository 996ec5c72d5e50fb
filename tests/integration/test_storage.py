"""The storage initializer from outside: the storage_fetch tool (built beside quiver) downloads
models from Python's http.server and from s3rver, a real S3-protocol server, into a cache."""
import io
import os
import pathlib
import subprocess
import tarfile
import zipfile

import pytest

from storage_servers import (S3RVER_KEY, S3RVER_SECRET, S3rver, SigV4CheckingS3, StaticServer,
                             storage_fetch_bin)

BIN = storage_fetch_bin()


def fetch(uri, cache, env=None, attempts=2):
    """Runs storage_fetch; returns (returncode, model dir or "", stderr)."""
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("AWS_", "S3_"))}
    proc = subprocess.run(
        [BIN, "--cache-dir", str(cache), "--attempts", str(attempts), "--backoff-ms", "50", uri],
        env={**clean, **(env or {})}, capture_output=True, text=True, timeout=120)
    return proc.returncode, proc.stdout.strip(), proc.stderr


def files_under(directory):
    root = pathlib.Path(directory)
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


@pytest.fixture(scope="module", autouse=True)
def _tool_exists():
    assert os.access(BIN, os.X_OK), f"{BIN} is missing: build the storage_fetch target"


# ---- http(s) ----

@pytest.fixture
def site(tmp_path):
    root = tmp_path / "site"
    root.mkdir()
    server = StaticServer(root)
    yield root, server
    server.stop()


def test_http_file_is_downloaded_then_served_from_the_cache(site, tmp_path):
    root, server = site
    weights = os.urandom(300_000)
    (root / "model.bst").write_bytes(weights)
    rc, model_dir, err = fetch(server.url("model.bst"), tmp_path / "cache")
    assert rc == 0, err
    assert files_under(model_dir) == {"model.bst": weights}
    assert "from_cache=0" in err
    assert sorted(m for m, _ in server.requests) == ["GET", "HEAD"]

    rc, again, err = fetch(server.url("model.bst"), tmp_path / "cache")
    assert rc == 0, err
    assert again == model_dir
    assert "from_cache=1" in err
    assert [m for m, _ in server.requests].count("GET") == 1  # only a HEAD the second time


def test_http_archives_are_unpacked(site, tmp_path):
    root, server = site
    with tarfile.open(root / "model.tar.gz", "w:gz") as tar:
        for name, data in {"model.bst": b"tree", "cfg/config.yaml": b"format: xgboost\n"}.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    with zipfile.ZipFile(root / "model.zip", "w") as z:
        z.writestr("model.onnx", b"graph")
        z.writestr("labels/classes.txt", b"a\nb\n")
    rc, tgz_dir, err = fetch(server.url("model.tar.gz"), tmp_path / "cache")
    assert rc == 0, err
    assert files_under(tgz_dir) == {"model.bst": b"tree", "cfg/config.yaml": b"format: xgboost\n"}
    rc, zip_dir, err = fetch(server.url("model.zip"), tmp_path / "cache")
    assert rc == 0, err
    assert files_under(zip_dir) == {"model.onnx": b"graph", "labels/classes.txt": b"a\nb\n"}


def test_http_archive_escaping_its_folder_is_refused(site, tmp_path):
    root, server = site
    with tarfile.open(root / "evil.tgz", "w:gz") as tar:
        info = tarfile.TarInfo("../../evil.txt")
        info.size = 5
        tar.addfile(info, io.BytesIO(b"pwned"))
    rc, _, err = fetch(server.url("evil.tgz"), tmp_path / "cache")
    assert rc == 1
    assert "'../../evil.txt'" in err
    assert not list(tmp_path.rglob("evil.txt"))


def test_http_missing_file_is_a_clear_404(site, tmp_path):
    _, server = site
    url = server.url("nope/model.bst")
    rc, _, err = fetch(url, tmp_path / "cache", attempts=4)
    assert rc == 1
    assert "NOT_FOUND" in err and url in err and "HTTP 404" in err
    assert len(server.requests) == 1  # a 404 is not retried


def test_connection_refused_names_the_host(tmp_path):
    server = StaticServer(tmp_path)
    port = server.port
    server.stop()
    rc, _, err = fetch(f"http://127.0.0.1:{port}/m.bin", tmp_path / "cache")
    assert rc == 1
    assert f"could not connect to '127.0.0.1:{port}'" in err


def test_unsupported_scheme_is_named(tmp_path):
    rc, _, err = fetch("gs://kfserving-examples/models/sklearn/iris", tmp_path / "cache")
    assert rc == 1
    assert "UNIMPLEMENTED" in err and "'gs://'" in err


def test_local_path_is_used_in_place(tmp_path):
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "model.bst").write_bytes(b"x")
    rc, model_dir, err = fetch("file://" + str(tmp_path / "m"), tmp_path / "cache")
    assert rc == 0, err
    assert model_dir == str(tmp_path / "m")
    rc, _, err = fetch(str(tmp_path / "missing"), tmp_path / "cache")
    assert rc == 1 and str(tmp_path / "missing") in err


# ---- s3:// against s3rver ----

OBJECTS = {
    "iris/model.bst": os.urandom(200_000),
    "iris/config.yaml": b"format: xgboost\n",
    "iris/sub/vocab.txt": b"setosa versicolor virginica\n",
    "iris2/other.bin": b"belongs to another model",
}


@pytest.fixture(scope="module")
def s3():
    server = S3rver()
    status, body = server.request("PUT", "/models")
    assert status == 200, body
    for key, data in OBJECTS.items():
        status, body = server.request("PUT", f"/models/{key}", data)
        assert status == 200, body
    yield server
    server.stop()


def s3_env(s3, **overrides):
    env = {"AWS_ACCESS_KEY_ID": S3RVER_KEY, "AWS_SECRET_ACCESS_KEY": S3RVER_SECRET,
           "AWS_ENDPOINT_URL": s3.endpoint, "AWS_DEFAULT_REGION": "us-east-1"}
    env.update(overrides)
    return {k: v for k, v in env.items() if v is not None}


def object_gets(entries):
    return [e for e in entries if e["method"] == "GET" and "list-type=2" not in e["url"]]


def test_s3_prefix_downloads_every_object_then_hits_the_cache(s3, tmp_path):
    s3.sync()
    before = len(s3.entries())
    rc, model_dir, err = fetch("s3://models/iris", tmp_path / "cache", s3_env(s3))
    assert rc == 0, err
    assert files_under(model_dir) == {
        "model.bst": OBJECTS["iris/model.bst"],
        "config.yaml": OBJECTS["iris/config.yaml"],
        "sub/vocab.txt": OBJECTS["iris/sub/vocab.txt"],
    }
    s3.sync()
    first = s3.entries()[before:]
    assert len(object_gets(first)) == 3
    assert all(e["status"] == 200 for e in first)

    middle = len(s3.entries())
    rc, again, err = fetch("s3://models/iris", tmp_path / "cache", s3_env(s3))
    assert rc == 0, err
    assert again == model_dir and "from_cache=1" in err
    s3.sync()
    second = s3.entries()[middle:]
    assert object_gets(second) == []  # validated by one listing, nothing downloaded
    assert [e["method"] for e in second] == ["GET"] and "list-type=2" in second[0]["url"]


def test_s3_kserve_style_endpoint_and_single_object(s3, tmp_path):
    env = s3_env(s3, AWS_ENDPOINT_URL=None, S3_ENDPOINT=s3.endpoint.removeprefix("http://"),
                 S3_USE_HTTPS="0")
    rc, model_dir, err = fetch("s3://models/iris/config.yaml", tmp_path / "cache", env)
    assert rc == 0, err
    assert files_under(model_dir) == {"config.yaml": OBJECTS["iris/config.yaml"]}


def test_s3_wrong_key_is_a_clear_error(s3, tmp_path):
    rc, _, err = fetch("s3://models/iris", tmp_path / "cache",
                       s3_env(s3, AWS_ACCESS_KEY_ID="WRONGKEY"), attempts=4)
    assert rc == 1
    assert "HTTP 403" in err and "InvalidAccessKeyId" in err and "s3://models/iris" in err
    assert err.count("listing objects") == 1  # not retried


def test_s3_missing_bucket_is_named(s3, tmp_path):
    rc, _, err = fetch("s3://no-such-bucket/iris", tmp_path / "cache", s3_env(s3))
    assert rc == 1
    assert "NOT_FOUND" in err and "bucket 'no-such-bucket' does not exist" in err


def test_s3_empty_prefix_is_named(s3, tmp_path):
    rc, _, err = fetch("s3://models/absent", tmp_path / "cache", s3_env(s3))
    assert rc == 1
    assert "no objects under prefix 'absent' in bucket 'models'" in err


# ---- SigV4 checked by an independent implementation ----

def test_s3_requests_carry_a_valid_sigv4_signature(tmp_path):
    objects = {"bkt/m/model.bst": b"signed bytes", "bkt/m/a b+c.txt": b"odd key"}
    server = SigV4CheckingS3("AKIDCHECK", "s3cr3t/key", "eu-central-1", objects)
    try:
        env = {"AWS_ACCESS_KEY_ID": "AKIDCHECK", "AWS_SECRET_ACCESS_KEY": "s3cr3t/key",
               "AWS_REGION": "eu-central-1", "AWS_ENDPOINT_URL": server.endpoint}
        rc, model_dir, err = fetch("s3://bkt/m", tmp_path / "cache", env)
        assert rc == 0, err
        assert files_under(model_dir) == {"model.bst": b"signed bytes", "a b+c.txt": b"odd key"}
        assert len(server.verified) == 3  # the listing and two objects

        rc, _, err = fetch("s3://bkt/m", tmp_path / "cache2",
                           {**env, "AWS_SECRET_ACCESS_KEY": "wrong"}, attempts=1)
        assert rc == 1
        assert "SignatureDoesNotMatch" in err and "HTTP 403" in err
    finally:
        server.stop()

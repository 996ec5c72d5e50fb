"""The container image's runtime stage must hold every shared library Quiver loads.

deploy/Dockerfile installs deploy/runtime-packages.txt (with --no-install-recommends) into
debian:12-slim. This checks that list against the built binary, its runtime plugins and the
Python worker: every library `ldd` resolves must belong to a listed package or to a package apt
pulls in for one (Depends/Pre-Depends, read from this Debian 12 machine's dpkg database), and so
must the libraries Quiver dlopens on first use (libcurl, libarchive), which ldd cannot see.
There is no Docker daemon here, so the image itself is not built; this is what keeps it honest.
"""
import functools
import os
import pathlib
import re
import subprocess

import pytest

from conftest import QUIVER_BIN, ROOT

PACKAGE_LIST = ROOT / "deploy" / "runtime-packages.txt"
DOCKERFILE = ROOT / "deploy" / "Dockerfile"
PLUGINS = ["quiver-xgboost.so", "quiver-onnx.so", "quiver-torchscript.so", "quiver-python.so",
           "quiver-python-worker"]


def listed_packages(text=None):
    text = PACKAGE_LIST.read_text() if text is None else text
    return [line.split("#", 1)[0].strip() for line in text.splitlines()
            if line.split("#", 1)[0].strip()]


@functools.lru_cache(maxsize=None)
def installed():
    """Installed packages here: name -> (dependency names, provided virtual names), read with one
    dpkg-query call (one per package would take minutes)."""
    out = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package}\t${db:Status-Abbrev}\t${Depends}, ${Pre-Depends}"
         "\t${Provides}\n"], capture_output=True, text=True, check=True).stdout
    packages = {}
    for line in out.splitlines():
        name, status, depends, provides = (line.split("\t") + ["", "", ""])[:4]
        if not status.startswith("ii"):
            continue
        deps = set()
        for group in depends.split(","):
            for alternative in group.split("|"):
                dep = re.sub(r"\(.*?\)|\[.*?\]", "", alternative).strip().split(":")[0]
                if dep:
                    deps.add(dep)
        provided = {re.sub(r"\(.*?\)", "", p).strip() for p in provides.split(",") if p.strip()}
        packages[name] = (deps, provided)
    return packages


def dependency_closure(packages):
    """Installed packages apt installs for `packages`: Depends and Pre-Depends, recursively.
    Of alternatives (a | b) every installed one is followed; virtual names resolve to what
    provides them here."""
    db = installed()
    providers = {}
    for name, (_, provided) in db.items():
        for virtual in provided:
            providers.setdefault(virtual, set()).add(name)
    seen, stack = set(), list(packages)
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        if name not in db:
            stack.extend(providers.get(name, ()))
            continue
        seen.add(name)
        stack.extend(db[name][0])
    return seen


@functools.lru_cache(maxsize=None)
def file_owners():
    """Path -> package, from dpkg's file lists (both sides of the /usr merge)."""
    owners = {}
    for listing in pathlib.Path("/var/lib/dpkg/info").glob("*.list"):
        package = listing.name[:-len(".list")].split(":")[0]
        for path in listing.read_text(errors="replace").splitlines():
            if ".so" in path:
                owners.setdefault(path, package)
    return owners


def owner_of(path):
    """The Debian package that ships `path`."""
    owners = file_owners()
    for p in (os.path.realpath(path), path):
        for candidate in (p, p[4:] if p.startswith("/usr/") else "/usr" + p):
            if candidate in owners:
                return owners[candidate]
    return None


def ldd_libraries(binary):
    out = subprocess.run(["ldd", str(binary)], capture_output=True, text=True, check=True).stdout
    missing = [line.strip() for line in out.splitlines() if "not found" in line]
    assert not missing, f"{binary}: unresolved libraries on the build machine: {missing}"
    libs = []
    for line in out.splitlines():
        m = re.search(r"=>\s+(/\S+)", line) or re.match(r"\s*(/\S+)\s+\(", line)
        if m:
            libs.append(m.group(1))
    return libs


def dlopened_libraries():
    """Sonames Quiver passes to dlopen, as written in its sources, resolved with ldconfig."""
    names = set()
    for source in (ROOT / "src").rglob("*.cc"):
        if source.name.endswith("_test.cc"):
            continue
        text = source.read_text(errors="replace")
        if "dlopen" in text:
            names.update(re.findall(r'"(lib[\w+.-]+\.so\.\d+)"', text))
    cache = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, check=True).stdout
    resolved = {}
    for name in sorted(names):
        m = re.search(r"^\s*" + re.escape(name) + r" \(.*x86-64.*\) => (\S+)$", cache, re.M) or \
            re.search(r"^\s*" + re.escape(name) + r" .*=> (\S+)$", cache, re.M)
        assert m, f"{name} (dlopened by Quiver) is not installed on the build machine"
        resolved[name] = m.group(1)
    return resolved


def binaries():
    quiver = pathlib.Path(QUIVER_BIN)
    found = [quiver]
    runtimes = quiver.parent / "runtimes"
    for plugin in PLUGINS:
        if (runtimes / plugin).exists():
            found.append(runtimes / plugin)
    return found


def uncovered(packages):
    """Libraries Quiver loads whose package the image would not have: [(library, package)]."""
    closure = dependency_closure(packages)
    problems = []
    libraries = {lib for binary in binaries() for lib in ldd_libraries(binary)}
    libraries.update(dlopened_libraries().values())
    for lib in sorted(libraries):
        package = owner_of(lib)
        if package is None:
            problems.append((lib, "no Debian package ships it"))
        elif package not in closure:
            problems.append((lib, package))
    return problems


def test_every_loaded_library_comes_with_the_runtime_packages():
    found = binaries()
    names = [b.name for b in found]
    # The image ships every plugin; a build without one cannot vouch for the list.
    assert names == ["quiver"] + PLUGINS, f"build the runtime plugins first; found {names}"
    assert uncovered(listed_packages()) == []


def test_the_check_notices_a_missing_package():
    # Without the XGBoost and libtorch packages their plugins' libraries are reported: the check
    # above is not vacuous.
    packages = [p for p in listed_packages() if p not in ("libxgboost0", "libtorch1.13")]
    reported = {package for _, package in uncovered(packages)}
    assert {"libxgboost0", "libtorch1.13"} <= reported, reported


def test_dlopened_libraries_are_found():
    assert set(dlopened_libraries()) >= {"libcurl.so.4", "libarchive.so.13"}


def test_listed_packages_exist_in_debian_12():
    for package in listed_packages():
        assert package in installed(), \
            f"{package} from {PACKAGE_LIST.name} is not a Debian 12 package installed here"


def test_runtime_packages_of_the_setup_are_in_the_image():
    setup = (ROOT / "scripts" / "setup.sh").read_text()
    m = re.search(r"runtime_packages=\(([^)]*)\)", setup)
    assert m, "scripts/setup.sh has no runtime_packages list"
    assert set(m.group(1).split()) <= set(listed_packages())


def test_dockerfile_installs_the_list_and_runs_quiver_serve_as_non_root():
    text = DOCKERFILE.read_text()
    stages = re.findall(r"^FROM (\S+)", text, re.M)
    assert stages == ["debian:12", "debian:12-slim"], stages
    runtime = text.split("FROM debian:12-slim", 1)[1]
    assert "COPY deploy/runtime-packages.txt" in runtime
    assert "--no-install-recommends" in runtime
    # Only the package list is installed in the runtime stage: no other apt-get install.
    assert runtime.count("apt-get install") == 1
    assert "scripts/setup.sh --no-build" in text.split("FROM debian:12-slim", 1)[0]
    user = re.search(r"^USER (\d+)", runtime, re.M)
    assert user and int(user.group(1)) != 0
    assert re.search(r'^ENTRYPOINT \["quiver", "serve"\]', runtime, re.M)
    assert re.search(r"^EXPOSE 8080 8081$", runtime, re.M)
    for plugin in ("quiver_runtime_xgboost", "quiver_runtime_onnx", "quiver_runtime_torchscript",
                   "quiver_runtime_python"):
        assert plugin in text

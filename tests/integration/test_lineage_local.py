"""Nothing lost, locally: the bucket folder keeps one version of each file, so `flowers restore` can put nothing back;
it says which files differ from the run's manifest, in one line, and exits 1. Manifests are written once here too."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chalicelib import settings
from chalicelib.adapters.local.objects import LocalObjectStore
from chalicelib.pipeline import manifest
from chalicelib.pipeline.dataset_version import listing
from data_fixtures import ROOT

VERSION = "0123456789abcdef"


def _home(tmp_path: Path) -> tuple[Path, LocalObjectStore]:
    home = tmp_path / "home"
    for name, body in (("daisy/a.jpg", b"a"), ("daisy/b.jpg", b"b"), ("roses/c.jpg", b"c")):
        (home / "bucket" / name).parent.mkdir(parents=True, exist_ok=True)
        (home / "bucket" / name).write_bytes(body)
    store = LocalObjectStore({"bucket": home / "bucket", "artifacts": home / "artifacts"})
    record = manifest.record("s3://bucket/", VERSION, listing(store, "s3://bucket/"))
    assert store.write_once(f"s3://artifacts/manifests/{VERSION}.json", record) is True
    return home, store


def _restore(home: Path) -> subprocess.CompletedProcess[str]:
    # None of the pipeline's settings from this process (an in-process synth leaves the Lambdas' in os.environ).
    named = {variable.name for variable in settings.SCHEMA.values()}
    env = {k: v for k, v in os.environ.items() if k not in named and not k.startswith("FLOWERS_")}
    return subprocess.run([sys.executable, "-m", "flowers_cli.main", "restore", VERSION, "--home", str(home)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)


def test_a_manifest_is_written_once_locally(tmp_path):
    home, store = _home(tmp_path)
    uri = f"s3://artifacts/manifests/{VERSION}.json"
    first = store.read(uri)
    assert store.write_once(uri, b"another writer's") is False and store.read(uri) == first
    assert [p.name for p in (home / "artifacts" / "manifests").iterdir()] == [f"{VERSION}.json"]  # no partial file left
    assert store.lock("s3://artifacts/models/", 365) == 0  # nothing to lock: one version of each file


def test_restore_locally_says_what_cannot_come_back(tmp_path):
    home, _store = _home(tmp_path)
    done = _restore(home)
    assert done.returncode == 0, done.stderr
    assert "restored 0 file(s), 3 as recorded" in done.stdout

    (home / "bucket" / "daisy" / "b.jpg").unlink()
    (home / "bucket" / "roses" / "c.jpg").write_bytes(b"replaced")
    done = _restore(home)
    assert done.returncode == 1
    (line,) = done.stderr.strip().splitlines()
    assert line == ("error: 2 file(s) changed or gone since the run cannot be restored: the manifest names no version of them "
                    "(local mode keeps no earlier versions of a file, nor does a bucket without versioning): daisy/b.jpg, roses/c.jpg")
    assert (home / "bucket" / "roses" / "c.jpg").read_bytes() == b"replaced"  # nothing changed

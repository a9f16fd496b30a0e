"""Helpers for the local-mode tests: `flowers up` as a real process, HTTP calls, a tiny data set.

TINY_UP trains tiny_cnn on 32 px photos in a few seconds; the quiet period is 1 s and the
gate approves any accuracy, so a run goes from upload to served model in ~15 s on 2 cores.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from data_fixtures import PHOTOS, ROOT

TINY_UP = ["--preset", "tiny_cnn", "--quiet-period", "1", "--min-accuracy", "0", "--min-test-images", "0", "--quantize", "fp32",
           "-H", "image_size=32", "-H", "epochs=1", "-H", "head_epochs=2", "-H", "batch_size=8", "-H", "min_images_per_class=2"]
CLASSES = ("daisy", "roses", "sunflowers")


def cli_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "FLOWERS_", "DATASET_", "ARTIFACT_", "STATE_",
                                                                         "TRAINING_", "SAGEMAKER_", "QUIET_", "PRESET", "MIN_"))}
    env.update(FLOWERS_HOME=str(home), PYTHONPATH=str(ROOT), TF_CPP_MIN_LOG_LEVEL="2", CUDA_VISIBLE_DEVICES="", PYTHONUNBUFFERED="1")
    return env


def flowers(home: Path, *args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    """Run the `flowers` command (python -m flowers_cli.main) on a home."""
    return subprocess.run([sys.executable, "-m", "flowers_cli.main", *args], cwd=ROOT, env=cli_env(home),
                          capture_output=True, text=True, timeout=timeout)


def modelarts_photos(target: Path, per_class: int, start: int = 0, classes=CLASSES) -> list[Path]:
    """Real photos in the ModelArts layout: name.jpg beside name.txt holding the label."""
    target.mkdir(parents=True, exist_ok=True)
    written = []
    for label in classes:
        for photo in sorted((PHOTOS / label).glob("*.jpg"))[start : start + per_class]:
            shutil.copyfile(photo, target / f"{label}_{photo.name}")
            (target / f"{label}_{photo.stem}.txt").write_text(label + "\n")
            written.append(target / f"{label}_{photo.name}")
    return written


@dataclass
class Http:
    status: int
    headers: dict
    body: bytes

    def json(self):
        return json.loads(self.body)


def http(url: str, method: str = "GET", body: bytes | None = None, content_type: str | None = None, timeout: float = 30,
         accept: str = "*/*", headers: dict[str, str] | None = None) -> Http:
    headers = {**({"Content-Type": content_type, "Accept": accept} if content_type else {"Accept": accept}), **(headers or {})}
    request = urllib.request.Request(url, data=body, method=method, headers=headers)
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return Http(response.status, dict(response.headers), response.read())
    except urllib.error.HTTPError as error:
        return Http(error.code, dict(error.headers), error.read())


class Up:
    """`flowers up` on a home, as a real process on a free port (the OS picks it: --port 0)."""

    def __init__(self, home: Path, *args: str):
        self.home = Path(home)
        self.log_path = self.home.parent / f"up-{time.monotonic_ns()}.log"
        self.home.mkdir(parents=True, exist_ok=True)
        self._log = open(self.log_path, "w")
        self.proc = subprocess.Popen([sys.executable, "-m", "flowers_cli.main", "up", "--home", str(home), "--port", "0", *args],
                                     cwd=ROOT, env=cli_env(self.home), stdout=self._log, stderr=subprocess.STDOUT)
        self.url = self._wait_url()

    def _wait_url(self, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        server = self.home / "server.json"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"flowers up exited with {self.proc.returncode}:\n{self.log()}")
            if server.exists():
                try:
                    document = json.loads(server.read_text())
                    if document["pid"] == self.proc.pid:
                        return document["url"]
                except (ValueError, KeyError):
                    pass
            time.sleep(0.05)
        raise TimeoutError(f"flowers up did not start:\n{self.log()}")

    def log(self) -> str:
        self._log.flush()
        return self.log_path.read_text()

    @property
    def token(self) -> str:
        """The home's operator token (HOME/operator-token, written by `flowers up`)."""
        return (self.home / "operator-token").read_text().strip()

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    # get and post send the operator token, as the CLI does: tests of the refusals send none (http() directly)
    def get(self, path: str, accept: str = "*/*") -> Http:
        return http(self.url + path.lstrip("/"), accept=accept, headers=self.auth)

    def post(self, path: str, body: bytes | None = None, content_type: str | None = None) -> Http:
        return http(self.url + path.lstrip("/"), "POST", body, content_type, headers=self.auth)

    def wait_for(self, predicate, timeout: float, what: str, every: float = 0.25):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate()
            if value:
                return value
            if self.proc.poll() is not None:
                raise RuntimeError(f"flowers up exited with {self.proc.returncode} while waiting for {what}:\n{self.log()}")
            time.sleep(every)
        raise TimeoutError(f"no {what} after {timeout}s:\n{self.log()[-6000:]}")

    def kill9(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._log.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        if not self._log.closed:
            self._log.close()


def seed_approved_model(home: Path, model_folder: Path, version: str = "00000000000000a1") -> str:
    """Register a converted model folder as approved in a local home (as the pipeline does), without training."""
    from chalicelib.adapters.local.wiring import LocalAdapters
    from chalicelib.pipeline.records import ModelEntry
    from chalicelib.settings import from_environ

    settings = from_environ({"FLOWERS_MODE": "local", "FLOWERS_HOME": str(home)})
    adapters = LocalAdapters(settings)
    target = adapters.artifact_folder / "models" / version
    shutil.copytree(model_folder, target)
    metadata = json.loads((target / "metadata.json").read_text())
    prefix = f"s3://{settings.artifact_bucket}/models/{version}/"
    # Its run's manifest, as a launch writes it (chalicelib/pipeline/manifest.py): the photos it "was trained on".
    from chalicelib.contract import bucket_layout
    from chalicelib.pipeline import manifest
    from chalicelib.pipeline.records import ObjectInfo

    listed = [ObjectInfo(f"{label}/{i}.jpg", f"{i:032x}", 1000 + i) for label in ("daisy", "roses") for i in range(3)]
    record = manifest.record(settings.dataset_uri, version, listed)
    record_uri = bucket_layout.manifest_record(settings.artifact_bucket, version)
    adapters.objects.write(record_uri, record)
    adapters.registry.register(ModelEntry(version, "pending", 0, model_uri=prefix + "model.tflite", labels_uri=prefix + "labels.txt",
                                          metadata_uri=prefix + "metadata.json", sha256=metadata["model"]["sha256"],
                                          size_bytes=metadata["model"]["size_bytes"], test_accuracy=1.0, dataset_version=version,
                                          manifest_uri=record_uri, manifest_sha256=manifest.sha256(record)), metadata)
    adapters.registry.set_status(version, "approved", "seeded by the test")
    adapters.db.close()
    return version

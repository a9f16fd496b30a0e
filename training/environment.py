"""Where a training job reads and writes: SageMaker's container contract, read once at start-up.

Every path has the `/opt/ml/...` default SageMaker uses and an `SM_*` variable that
overrides it (chalicelib/contract/vocabulary.py: ContainerPath, ContainerVariable), so local
mode runs the same entrypoint with folders of its own.
"""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from chalicelib.contract.training_job import MANIFEST_SHA256_ENV, MANIFEST_URI_ENV
from chalicelib.contract.vocabulary import ContainerPath as Default
from chalicelib.contract.vocabulary import ContainerVariable as Variable


class EnvironmentError_(ValueError):
    pass


@dataclass(frozen=True)
class JobEnvironment:
    input_config_dir: Path
    training_dir: Path
    model_dir: Path
    output_dir: Path
    output_data_dir: Path
    tensorboard_dir: Path
    checkpoint_dir: Path
    job_name: str
    hosts: tuple[str, ...]
    current_host: str
    cpu_devices: int = 0  # FLOWERS_CPU_DEVICES: split the CPU into N devices (MirroredStrategy without GPUs)
    manifest_uri: str = ""  # the run's manifest (chalicelib/pipeline/manifest.py): the photos in training_dir
    manifest_sha256: str = ""

    @property
    def failure_file(self) -> Path:
        return self.output_dir / "failure"

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> "JobEnvironment":
        env = os.environ if env is None else env
        config_dir = Path(env.get(Variable.INPUT_CONFIG_DIR, Default.INPUT_CONFIG_DIR))
        output_dir = Path(env.get(Variable.OUTPUT_DIR, Default.OUTPUT_DIR))
        output_data_dir = Path(env.get(Variable.OUTPUT_DATA_DIR, str(output_dir / "data")))
        hosts, current = _cluster(env, config_dir)
        return cls(
            input_config_dir=config_dir,
            training_dir=Path(env.get(Variable.CHANNEL_TRAINING, Default.CHANNEL_TRAINING)),
            model_dir=Path(env.get(Variable.MODEL_DIR, Default.MODEL_DIR)),
            output_dir=output_dir,
            output_data_dir=output_data_dir,
            tensorboard_dir=_tensorboard_dir(env, config_dir, output_data_dir),
            checkpoint_dir=Path(env.get(Variable.CHECKPOINT_DIR, Default.CHECKPOINT_DIR)),
            job_name=env.get("TRAINING_JOB_NAME", env.get("FLOWERS_JOB_NAME", "local")),
            hosts=hosts,
            current_host=current,
            cpu_devices=int(env.get("FLOWERS_CPU_DEVICES", "0") or 0),
            manifest_uri=env.get(MANIFEST_URI_ENV, ""),
            manifest_sha256=env.get(MANIFEST_SHA256_ENV, ""),
        )

    def hyperparameters(self) -> dict:
        path = self.input_config_dir / "hyperparameters.json"
        if not path.exists():
            return {}
        try:
            values = json.loads(path.read_text() or "{}")
        except json.JSONDecodeError as exc:
            raise EnvironmentError_(f"{path} is not valid JSON: {exc}") from None
        if not isinstance(values, dict):
            raise EnvironmentError_(f"{path} must hold a JSON object")
        return values


def _tensorboard_dir(env: Mapping[str, str], config_dir: Path, output_data_dir: Path) -> Path:
    """SageMaker's TensorBoardOutputConfig.LocalPath when the job has one (it is uploaded live)."""
    if env.get("FLOWERS_TENSORBOARD_DIR"):
        return Path(env["FLOWERS_TENSORBOARD_DIR"])
    config = config_dir / "tensorboardoutputconfig.json"
    if config.exists():
        try:
            local = json.loads(config.read_text()).get("LocalPath")
        except (json.JSONDecodeError, AttributeError):
            local = None
        if local:
            return Path(local)
    return output_data_dir / "tensorboard"


def _cluster(env: Mapping[str, str], config_dir: Path) -> tuple[tuple[str, ...], str]:
    """Hosts of the job: SM_HOSTS / SM_CURRENT_HOST, else resourceconfig.json, else one local host."""
    if env.get(Variable.HOSTS):
        return tuple(json.loads(env[Variable.HOSTS])), env.get(Variable.CURRENT_HOST, "")
    resource = config_dir / "resourceconfig.json"
    if resource.exists():
        data = json.loads(resource.read_text())
        return tuple(data.get("hosts", [])), data.get("current_host", "")
    return (), ""

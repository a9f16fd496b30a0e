"""Every setting the Lambdas read, in one typed, frozen object validated once at start-up.

This is the only module that reads `os.environ`. Loading is lazy (the first handler call
does it), so `import app` for `chalice package` or the CDK needs no variables at all.
A missing or malformed variable raises SettingsError naming it, instead of a KeyError
deep inside a handler on the first upload.
"""
from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from chalicelib.contract.training_job import PRESET_NAMES

MODES = ("aws", "local")
# Variables without which the aws mode cannot work (the CDK sets them all on every function).
AWS_REQUIRED = ("DATASET_BUCKET", "ARTIFACT_BUCKET", "STATE_TABLE", "TRAINING_IMAGE_URI", "SAGEMAKER_ROLE_ARN")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/.+$")
_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
QUANTIZE_MODES = ("auto", "fp32", "fp16", "dynamic", "int8")  # training.convert's --quantize
# Local mode: one machine, no AWS. Its "buckets" are folders under FLOWERS_HOME
# (chalicelib/adapters/local/objects.py maps s3://bucket/ and s3://artifacts/ onto them). These
# defaults apply only where the variable is not set.
LOCAL_DEFAULTS = {
    "dataset_bucket": "bucket", "artifact_bucket": "artifacts", "dataset_prefix": "", "state_table": "state.sqlite3",
    "preset": "mobilenet_v2", "quiet_period": 5, "model_refresh_seconds": 1, "retry_backoff": 5,
}
# Fields only local mode reads: the Lambdas never get these variables.
LOCAL_ONLY = ("home", "port", "extra_hyperparameters", "quantize", "watch")
WATCH_MODES = ("notify", "poll")  # flowers up's bucket watcher (chalicelib/local_stack/watcher.py)


class SettingsError(ValueError):
    """The environment does not describe a working deployment; the message names every bad variable."""


@dataclass(frozen=True)
class Settings:
    mode: str = "aws"
    dataset_bucket: str = ""
    dataset_prefix: str = "datasets/flowers/"
    artifact_bucket: str = ""
    state_table: str = ""
    model_package_group: str = "flowers"
    training_image_uri: str = ""
    sagemaker_role_arn: str = ""
    training_instance_type: str = "ml.g5.xlarge"
    conversion_instance_type: str = "ml.m5.xlarge"
    use_spot: bool = False
    preset: str = "resnet_v1_50"
    max_training_time: int = 3600  # seconds; the job's MaxRuntimeInSeconds and the training budget
    quiet_period: int = 600  # seconds without uploads before a run starts
    min_new_images: int = 1  # changed objects needed before a run starts
    min_accuracy: float = 0.80  # promotion gate: lowest test accuracy approved automatically
    min_test_images: int = 50  # promotion gate: fewer test photos than this and a person decides
    max_class_drop: float = 0.10  # promotion gate: largest fall of any class's recall below production's
    max_attempts: int = 3  # jobs that fail for a transient reason: attempts in all, per stage
    retry_backoff: int = 300  # seconds before the second attempt; each later one waits twice as long
    listing_check_seconds: int = 3600  # when idle, how often the data set is listed to heal lost S3 events
    model_refresh_seconds: int = 60  # how often a prediction container looks for a newer approved model
    # Every N-th run starts from ImageNet; the others warm-start from production when its classes are the
    # data set's (chalicelib/contract/warm_start.py). 1: every run is a full one.
    full_retrain_every: int = 5
    service_name: str = "flowers"
    metrics_namespace: str = "Flowers"
    # training hyperparameters for every run (README's table), under training.json's (chalicelib/contract/hyperparameters.py)
    hyperparameters: dict[str, str] = field(default_factory=dict)
    event_bus_name: str = ""  # the EventBridge bus of the domain events (chalicelib/pipeline/domain_events.py); "": none sent
    # local mode only
    home: str = ""  # FLOWERS_HOME: bucket/, artifacts/, the SQLite state; default ~/.flowers
    port: int = 8000  # where `flowers up` serves the API and the web page (127.0.0.1)
    # FLOWERS_HYPERPARAMETERS (flowers up -H), a JSON object: a run's last hyperparameter layer (chalicelib/pipeline/job_specs.py)
    extra_hyperparameters: dict[str, str] = field(default_factory=dict)
    quantize: str = "auto"  # the local conversion's --quantize
    # FLOWERS_WATCH: notify (file-system notifications, a full rescan every minute or more) or poll (a full
    # rescan every 0.5 s: for a bucket folder on a network file system, where other machines' writes notify nothing)
    watch: str = "notify"

    @property
    def dataset_uri(self) -> str:
        return f"s3://{self.dataset_bucket}/{self.dataset_prefix}"

    @property
    def dataset_id(self) -> str:
        """Names the data set in the state store: a deployment may train on more than one prefix."""
        return f"{self.dataset_bucket}/{self.dataset_prefix}"


def _text(value: str) -> str:
    return value.strip()


def _prefix(value: str) -> str:
    value = value.strip().lstrip("/")
    return value if not value or value.endswith("/") else value + "/"


def _bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes", "on"):
        return True
    if lowered in ("false", "0", "no", "off", ""):
        return False
    raise ValueError("expected true or false")


def _int(low: int, high: int) -> Callable[[str], int]:
    def parse(value: str) -> int:
        number = int(value.strip())
        if not low <= number <= high:
            raise ValueError(f"must be between {low} and {high}")
        return number

    return parse


def _accuracy(value: str) -> float:
    number = float(value.strip())
    if not 0.0 <= number <= 1.0:
        raise ValueError("must be a fraction between 0 and 1")
    return number


def _pattern(regex: re.Pattern[str], what: str) -> Callable[[str], str]:
    def parse(value: str) -> str:
        value = value.strip()
        if value and not regex.match(value):
            raise ValueError(f"is not {what}")
        return value

    return parse


def _choice(options: Sequence[str]) -> Callable[[str], str]:
    def parse(value: str) -> str:
        value = value.strip()
        if value not in options:
            raise ValueError(f"must be one of {', '.join(options)}")
        return value

    return parse


def _checked_hyperparameters(source: str) -> Callable[[str], dict[str, str]]:
    """A parser of a JSON object of hyperparameters; `source` names it in the problems found."""

    def parse(value: str) -> dict[str, str]:
        from chalicelib.contract.hyperparameters import check

        return check(json.loads(value), source)  # HyperparameterProblem is a ValueError: named with the rest

    return parse


# field name -> (environment variable, parser)
_VARIABLES: dict[str, tuple[str, Callable[[str], object]]] = {
    "mode": ("FLOWERS_MODE", _choice(MODES)),
    "dataset_bucket": ("DATASET_BUCKET", _pattern(_BUCKET, "an S3 bucket name")),
    "dataset_prefix": ("DATASET_PREFIX", _prefix),
    "artifact_bucket": ("ARTIFACT_BUCKET", _pattern(_BUCKET, "an S3 bucket name")),
    "state_table": ("STATE_TABLE", _text),
    "model_package_group": ("MODEL_PACKAGE_GROUP", _pattern(_GROUP, "a model package group name (letters, digits, hyphens)")),
    "training_image_uri": ("TRAINING_IMAGE_URI", _text),
    "sagemaker_role_arn": ("SAGEMAKER_ROLE_ARN", _pattern(_ROLE_ARN, "an IAM role ARN")),
    "training_instance_type": ("TRAINING_INSTANCE_TYPE", _pattern(_INSTANCE_TYPE, "a SageMaker instance type like ml.g5.xlarge")),
    "conversion_instance_type": ("CONVERSION_INSTANCE_TYPE", _pattern(_INSTANCE_TYPE, "a SageMaker instance type like ml.m5.xlarge")),
    "use_spot": ("USE_SPOT", _bool),
    "preset": ("PRESET", _choice(PRESET_NAMES)),
    "max_training_time": ("MAX_TRAINING_TIME", _int(60, 28 * 24 * 3600)),
    "quiet_period": ("QUIET_PERIOD", _int(0, 7 * 24 * 3600)),
    "min_new_images": ("MIN_NEW_IMAGES", _int(1, 10_000_000)),
    "min_accuracy": ("MIN_ACCURACY", _accuracy),
    "min_test_images": ("MIN_TEST_IMAGES", _int(0, 10_000_000)),
    "max_class_drop": ("MAX_CLASS_DROP", _accuracy),
    "max_attempts": ("MAX_ATTEMPTS", _int(1, 10)),
    "retry_backoff": ("RETRY_BACKOFF", _int(0, 24 * 3600)),
    "listing_check_seconds": ("LISTING_CHECK_SECONDS", _int(60, 7 * 24 * 3600)),
    "model_refresh_seconds": ("MODEL_REFRESH_SECONDS", _int(1, 24 * 3600)),
    "full_retrain_every": ("FULL_RETRAIN_EVERY", _int(1, 1000)),
    "service_name": ("POWERTOOLS_SERVICE_NAME", _text),
    "metrics_namespace": ("POWERTOOLS_METRICS_NAMESPACE", _text),
    "event_bus_name": ("EVENT_BUS_NAME", _text),
    "hyperparameters": ("HYPERPARAMETERS", _checked_hyperparameters("HYPERPARAMETERS")),
    "home": ("FLOWERS_HOME", _text),
    "port": ("FLOWERS_PORT", _int(0, 65535)),  # 0: any free port
    # flowers up -H: checked as the deployment's are, since the job specs carry them (chalicelib/pipeline/job_specs.py)
    "extra_hyperparameters": ("FLOWERS_HYPERPARAMETERS", _checked_hyperparameters("flowers up -H")),
    "quantize": ("FLOWERS_QUANTIZE", _choice(QUANTIZE_MODES)),
    "watch": ("FLOWERS_WATCH", _choice(WATCH_MODES)),
}


def from_environ(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate; raise SettingsError listing every missing or bad variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}  # field name -> its value: each parser returns its field's type
    problems: list[str] = []
    for name, (variable, parse) in _VARIABLES.items():
        raw = environ.get(variable)
        if raw is None or (raw.strip() == "" and name != "dataset_prefix"):
            continue
        try:
            values[name] = parse(raw)
        except ValueError as exc:
            problems.append(f"{variable}={raw!r} {exc}")
    if "mode" not in values:
        # Inside Lambda the default is the cloud; anywhere else it is the laptop.
        values["mode"] = "aws" if environ.get("AWS_LAMBDA_FUNCTION_NAME") else "local"
    if values["mode"] == "aws":
        for variable in AWS_REQUIRED:
            name = next(n for n, (v, _) in _VARIABLES.items() if v == variable)
            if not values.get(name) and not any(p.startswith(variable + "=") for p in problems):
                problems.append(f"{variable} is required when FLOWERS_MODE=aws")
        if not values.get("dataset_prefix", Settings.dataset_prefix):
            problems.append("DATASET_PREFIX must not be empty: the pipeline watches a prefix, not a whole bucket")
    if values["mode"] == "local":
        for name, value in LOCAL_DEFAULTS.items():
            values.setdefault(name, value)
        values["home"] = str(Path(values.get("home") or Path.home() / ".flowers").expanduser().resolve())
    if problems:
        raise SettingsError("bad settings: " + "; ".join(problems))
    return Settings(**values)


def variables() -> dict[str, str]:
    """Field name -> environment variable (for docs and the CDK); local-only settings left out."""
    return {f.name: _VARIABLES[f.name][0] for f in fields(Settings) if f.name not in LOCAL_ONLY}


def child_environment(extra: Mapping[str, str]) -> dict[str, str]:
    """This process's environment plus `extra`: what a local job's subprocess runs with."""
    return {**os.environ, **extra}


_cached: Settings | None = None


def get() -> Settings:
    """The process's settings, read on first use."""
    global _cached
    if _cached is None:
        _cached = from_environ()
    return _cached


def reset() -> None:
    """Forget the cached settings (tests change the environment between cases)."""
    global _cached
    _cached = None

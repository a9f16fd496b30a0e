"""Every setting the Lambdas read, in one typed, frozen object validated once at start-up.

This is the only module that reads `os.environ`. Loading is lazy (the first handler call
does it), so `import app` for `chalice package` or the CDK needs no variables at all.
A missing or malformed variable raises SettingsError naming it, instead of a KeyError
deep inside a handler on the first upload.

Each Settings field carries its environment variable and parser beside its type and default
(`_setting`): the one place a variable is named. What writes variables for the pipeline to read
(infra's Lambda environment, the CLI's flags) goes through `environment()` and `variable()`.
"""
from __future__ import annotations

import copy
import json
import os
import re
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence, TypeVar

from chalicelib.contract.hyperparameters import BY_NAME, TRAINING_TIME, check
from chalicelib.contract.training_job import PRESET_NAMES
from chalicelib.contract.vocabulary import Mode, Quantization, WatchMode, values

T = TypeVar("T")
MODES = tuple(values(*Mode))
# Settings without which the aws mode cannot work (the CDK sets them all on every function).
AWS_REQUIRED = ("dataset_bucket", "artifact_bucket", "state_table", "training_image_uri", "sagemaker_role_arn",
                "conversion_role_arn")
_INSTANCE_TYPE = re.compile(r"^ml\.[a-z0-9]+\.[a-z0-9]+$")
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.\-]{1,61}[a-z0-9]$")
_ROLE_ARN = re.compile(r"^arn:aws[a-z\-]*:iam::\d{12}:role/.+$")
_GROUP = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")
QUANTIZE_MODES = tuple(values(*Quantization))  # training.convert's --quantize
# Local mode: one machine, no AWS. Its "buckets" are folders under FLOWERS_HOME
# (chalicelib/adapters/local/objects.py maps s3://bucket/ and s3://artifacts/ onto them). These
# defaults apply only where the variable is not set.
LOCAL_DEFAULTS = {
    "dataset_bucket": "bucket", "artifact_bucket": "artifacts", "dataset_prefix": "", "state_table": "state.sqlite3",
    "preset": BY_NAME["preset"].default, "quiet_period": 5, "model_refresh_seconds": 1, "retry_backoff": 5,
}
WATCH_MODES = tuple(values(*WatchMode))  # flowers up's bucket watcher (chalicelib/local_stack/watcher.py)


class SettingsError(ValueError):
    """The environment does not describe a working deployment; the message names every bad variable."""


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
        return check(json.loads(value), source)  # HyperparameterProblem is a ValueError: named with the rest

    return parse


@dataclass(frozen=True)
class Variable:
    """How a setting comes from the environment: its variable's name and the parser that checks the text and
    gives the field's type. `local_only`: only local mode reads it, so the Lambdas never get it."""

    name: str
    parse: Callable[[str], object]
    local_only: bool = False


def _setting(variable: str, parse: Callable[[str], T], default: T, *, local_only: bool = False) -> T:
    """A Settings field: its type, default, environment variable and parser, on one line of the class."""
    metadata = {"variable": Variable(variable, parse, local_only)}
    if isinstance(default, dict):  # mutable: every Settings gets its own
        return field(default_factory=lambda: copy.copy(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass(frozen=True)
class Settings:
    """Every setting: the field's type and default, its environment variable and its parser (the schema the
    Lambdas, the CDK's environment for them and the CLI's flags all use: see `variable` and `environment`)."""

    mode: str = _setting("FLOWERS_MODE", _choice(MODES), Mode.AWS.value)
    dataset_bucket: str = _setting("DATASET_BUCKET", _pattern(_BUCKET, "an S3 bucket name"), "")
    dataset_prefix: str = _setting("DATASET_PREFIX", _prefix, "datasets/flowers/")
    artifact_bucket: str = _setting("ARTIFACT_BUCKET", _pattern(_BUCKET, "an S3 bucket name"), "")
    state_table: str = _setting("STATE_TABLE", _text, "")
    model_package_group: str = _setting(
        "MODEL_PACKAGE_GROUP", _pattern(_GROUP, "a model package group name (letters, digits, hyphens)"), "flowers")
    training_image_uri: str = _setting("TRAINING_IMAGE_URI", _text, "")
    # The jobs' execution roles (infra/flowers_infra/stack.py): the training jobs' (reads the data set, writes
    # training outputs) and the conversion jobs' (reads a training output, writes models/). Local mode has none.
    sagemaker_role_arn: str = _setting("SAGEMAKER_ROLE_ARN", _pattern(_ROLE_ARN, "an IAM role ARN"), "")
    conversion_role_arn: str = _setting("CONVERSION_ROLE_ARN", _pattern(_ROLE_ARN, "an IAM role ARN"), "")
    training_instance_type: str = _setting(
        "TRAINING_INSTANCE_TYPE", _pattern(_INSTANCE_TYPE, "a SageMaker instance type like ml.g5.xlarge"), "ml.g5.xlarge")
    conversion_instance_type: str = _setting(
        "CONVERSION_INSTANCE_TYPE", _pattern(_INSTANCE_TYPE, "a SageMaker instance type like ml.m5.xlarge"), "ml.m5.xlarge")
    use_spot: bool = _setting("USE_SPOT", _bool, False)
    preset: str = _setting("PRESET", _choice(PRESET_NAMES), BY_NAME["preset"].default)
    # seconds; the job's MaxRuntimeInSeconds and the training budget, within the hyperparameter's bounds
    max_training_time: int = _setting("MAX_TRAINING_TIME", _int(TRAINING_TIME.low, TRAINING_TIME.high), 3600)
    quiet_period: int = _setting("QUIET_PERIOD", _int(0, 7 * 24 * 3600), 600)  # seconds without uploads before a run starts
    min_new_images: int = _setting("MIN_NEW_IMAGES", _int(1, 10_000_000), 1)  # changed objects needed before a run starts
    # promotion gate: lowest test accuracy approved automatically
    min_accuracy: float = _setting("MIN_ACCURACY", _accuracy, 0.80)
    # promotion gate: fewer test photos than this and a person decides
    min_test_images: int = _setting("MIN_TEST_IMAGES", _int(0, 10_000_000), 50)
    # promotion gate: largest fall of any class's recall below production's
    max_class_drop: float = _setting("MAX_CLASS_DROP", _accuracy, 0.10)
    # promotion gate: largest share of the photos shared with production's data set that may change label
    # (chalicelib/pipeline/relabel.py); more, or other classes, and a person decides
    max_relabel_share: float = _setting("MAX_RELABEL_SHARE", _accuracy, 0.05)
    # jobs that fail for a transient reason: attempts in all, per stage
    max_attempts: int = _setting("MAX_ATTEMPTS", _int(1, 10), 3)
    # seconds before the second attempt; each later one waits twice as long
    retry_backoff: int = _setting("RETRY_BACKOFF", _int(0, 24 * 3600), 300)
    # when idle, how often the data set is listed to heal lost S3 events
    listing_check_seconds: int = _setting("LISTING_CHECK_SECONDS", _int(60, 7 * 24 * 3600), 3600)
    # how often a prediction container looks for a newer approved model
    model_refresh_seconds: int = _setting("MODEL_REFRESH_SECONDS", _int(1, 24 * 3600), 60)
    # Every N-th run starts from ImageNet; the others warm-start from production when its classes are the
    # data set's (chalicelib/contract/warm_start.py). 1: every run is a full one.
    full_retrain_every: int = _setting("FULL_RETRAIN_EVERY", _int(1, 1000), 5)
    service_name: str = _setting("POWERTOOLS_SERVICE_NAME", _text, "flowers")
    metrics_namespace: str = _setting("POWERTOOLS_METRICS_NAMESPACE", _text, "Flowers")
    # training hyperparameters for every run (README's table), under training.json's (chalicelib/contract/hyperparameters.py)
    hyperparameters: dict[str, str] = _setting("HYPERPARAMETERS", _checked_hyperparameters("HYPERPARAMETERS"), {})
    # the EventBridge bus of the domain events (chalicelib/pipeline/domain_events.py); "": none sent
    event_bus_name: str = _setting("EVENT_BUS_NAME", _text, "")
    # Days a run's manifest and a registered model's files stay locked (S3 Object Lock, governance mode) in the
    # artifact bucket (chalicelib/pipeline/lineage.py); 0: none locked (local mode, a stack that keeps no data).
    lineage_lock_days: int = _setting("LINEAGE_LOCK_DAYS", _int(0, 36500), 0)
    # local mode only (local_only: the Lambdas never get these variables)
    # bucket/, artifacts/, the SQLite state; default ~/.flowers
    home: str = _setting("FLOWERS_HOME", _text, "", local_only=True)
    # where `flowers up` serves the API and the web page (127.0.0.1); 0: any free port
    port: int = _setting("FLOWERS_PORT", _int(0, 65535), 8000, local_only=True)
    # flowers up -H, a JSON object: a run's last hyperparameter layer (chalicelib/pipeline/job_specs.py)
    extra_hyperparameters: dict[str, str] = _setting("FLOWERS_HYPERPARAMETERS", _checked_hyperparameters("flowers up -H"), {}, local_only=True)
    # the local conversion's --quantize
    quantize: str = _setting("FLOWERS_QUANTIZE", _choice(QUANTIZE_MODES), Quantization.AUTO.value, local_only=True)
    # how the bucket folder is watched: notify or poll (vocabulary.WatchMode says when to choose which)
    watch: str = _setting("FLOWERS_WATCH", _choice(WATCH_MODES), WatchMode.NOTIFY.value, local_only=True)

    @property
    def dataset_uri(self) -> str:
        return f"s3://{self.dataset_bucket}/{self.dataset_prefix}"

    @property
    def dataset_id(self) -> str:
        """Names the data set in the state store: a deployment may train on more than one prefix."""
        return f"{self.dataset_bucket}/{self.dataset_prefix}"


# field name -> how it comes from the environment, in the order of the fields
SCHEMA: dict[str, Variable] = {f.name: f.metadata["variable"] for f in fields(Settings)}
# Fields only local mode reads: the Lambdas never get these variables.
LOCAL_ONLY = tuple(name for name, v in SCHEMA.items() if v.local_only)


def variable(name: str) -> str:
    """The environment variable of the setting `name` (a Settings field)."""
    return SCHEMA[name].name


def environment(by_name: Mapping[str, object]) -> dict[str, str]:
    """Settings as the environment variables that carry them, in the order given: {field name: value} ->
    {variable: text from_environ reads back as that value}. For the Lambdas' environment (infra) and `flowers`' flags."""
    return {variable(name): _text_of(value) for name, value in by_name.items()}


def _text_of(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


def from_environ(environ: Mapping[str, str] | None = None) -> Settings:
    """Parse and validate; raise SettingsError listing every missing or bad variable."""
    environ = os.environ if environ is None else environ
    values: dict[str, Any] = {}  # field name -> its value: each parser returns its field's type
    problems: list[str] = []
    for name, source in SCHEMA.items():
        raw = environ.get(source.name)
        if raw is None or (raw.strip() == "" and name != "dataset_prefix"):
            continue
        try:
            values[name] = source.parse(raw)
        except ValueError as exc:
            problems.append(f"{source.name}={raw!r} {exc}")
    if "mode" not in values:
        # Inside Lambda the default is the cloud; anywhere else it is the laptop.
        values["mode"] = Mode.AWS.value if environ.get("AWS_LAMBDA_FUNCTION_NAME") else Mode.LOCAL.value
    if values["mode"] == Mode.AWS:
        for name in AWS_REQUIRED:
            if not values.get(name) and not any(p.startswith(variable(name) + "=") for p in problems):
                problems.append(f"{variable(name)} is required when {variable('mode')}={Mode.AWS}")
        if not values.get("dataset_prefix", Settings.dataset_prefix):
            problems.append(f"{variable('dataset_prefix')} must not be empty: the pipeline watches a prefix, not a whole bucket")
    if values["mode"] == Mode.LOCAL:
        for name, value in LOCAL_DEFAULTS.items():
            values.setdefault(name, value)
        values["home"] = str(Path(values.get("home") or Path.home() / ".flowers").expanduser().resolve())
    if problems:
        raise SettingsError("bad settings: " + "; ".join(problems))
    return Settings(**values)


def variables() -> dict[str, str]:
    """Field name -> environment variable (for docs and the CDK); local-only settings left out."""
    return {name: v.name for name, v in SCHEMA.items() if not v.local_only}


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

"""Deployment settings: CDK context values (`cdk.json`, or `-c name=value`) with the defaults below.

The pipeline's own settings end up as the Lambdas' environment variables, named as
chalicelib/settings.py reads them (a test keeps the two in step).
"""
from __future__ import annotations

import json
from dataclasses import dataclass, fields
from typing import Any, Callable, Mapping

from chalicelib import settings
from chalicelib.api.client_keys import KeyPolicy, Limits, limits_problem
from chalicelib.contract.vocabulary import Mode
from chalicelib.settings import Settings

# The pipeline's defaults live in one place, chalicelib/settings.py.
_PIPELINE = Settings()
# At least a year (issue 27, "Nothing lost"; "Who did what"): a smaller context value is refused, not rounded up.
LINEAGE_FLOOR_DAYS = 365
ACCESS_LOG_FLOOR_DAYS = 365
WAF_RATE_FLOOR, WAF_RATE_CEILING = 10, 2_000_000_000  # what a WAF rate-based rule takes


@dataclass(frozen=True)
class FlowersConfig:
    # The pipeline (Lambda environment, see chalicelib/settings.py) --------------------------------
    dataset_prefix: str = _PIPELINE.dataset_prefix
    # SageMaker's group and job names are per account and region: from_context makes the stack
    # name the default, so that a second stack gets a registry (and job names) of its own.
    model_package_group: str = _PIPELINE.model_package_group
    training_instance_type: str = _PIPELINE.training_instance_type
    conversion_instance_type: str = _PIPELINE.conversion_instance_type
    use_spot: bool = True  # unlike a bare Settings(): the stack gives jobs a checkpoint path to resume from
    preset: str = _PIPELINE.preset
    max_training_time: int = _PIPELINE.max_training_time
    quiet_period: int = _PIPELINE.quiet_period
    min_new_images: int = _PIPELINE.min_new_images
    min_accuracy: float = _PIPELINE.min_accuracy
    min_test_images: int = _PIPELINE.min_test_images
    max_class_drop: float = _PIPELINE.max_class_drop
    max_relabel_share: float = _PIPELINE.max_relabel_share
    max_attempts: int = _PIPELINE.max_attempts
    retry_backoff: int = _PIPELINE.retry_backoff
    listing_check_seconds: int = _PIPELINE.listing_check_seconds
    model_refresh_seconds: int = _PIPELINE.model_refresh_seconds
    full_retrain_every: int = _PIPELINE.full_retrain_every  # every N-th run from ImageNet, the others warm-started
    # Training hyperparameters for every run (the README's table), as a JSON object: -c 'hyperparameters={"epochs": 8}'
    # or an object in cdk.json; a data set's training.json overrides them (chalicelib/contract/hyperparameters.py).
    hyperparameters: str = "{}"
    # Operations ---------------------------------------------------------------------------------
    log_retention_days: int = 30
    api_rate_limit: float = 20.0  # requests per second, steady: the stage (every caller together) and the web page's key
    api_burst_limit: int = 40
    api_quota_per_day: int = 50_000  # the web page's key
    # A key per client (`flowers keys create NAME`, chalicelib/api/client_keys.py): the limits a key gets when none are
    # given, at most the stage's. They reach the CLI as the stack's output ClientKeyLimits.
    client_key_rate_limit: float = 5.0
    client_key_burst_limit: int = 10
    client_key_quota_per_day: int = 10_000
    # WAF (infra/flowers_infra/waf.py): requests one IP address may send in any 5 minutes before it gets 429, whatever
    # key it uses (WAF's rate-based rule, 10 at least). 1,000 is about 3 a second, kept up for 5 minutes.
    waf_rate_per_5min: int = 1_000
    # The API function's reserved concurrency: the most it may run at once, which also keeps the rest of the account's
    # Lambda concurrency for the pipeline's functions (tick, SageMaker events, uploads). 0: none (an account whose
    # concurrency limit is too small to reserve any). At least api_burst_limit, so the stage's throttle (429) bites
    # before Lambda's (a 5xx).
    api_reserved_concurrency: int = 50
    alarm_email: str = ""  # subscribed to the alarm topic when set
    # Keep buckets, table and model group when the stack is deleted (data outlives stacks). The access logs are kept
    # whatever this says (access_log_retention_days).
    retain_data: bool = True
    # Nothing lost (README "Nothing lost", chalicelib/pipeline/lineage.py): days the earlier versions of the data set's
    # files, of models/ and of manifests/ are kept, and the days a run's manifest and a registered model stay locked
    # (Object Lock, governance mode). At least LINEAGE_FLOOR_DAYS: a manifest names the photo versions it trained on, and
    # a model must be rebuildable from them for a year at least.
    lineage_retention_days: int = 365
    # API Gateway's access log group and the S3 server access log bucket: days kept, at least ACCESS_LOG_FLOOR_DAYS, and
    # one of CloudWatch Logs' retention values (365, 400, 545, 731, 1096, ...). Both outlive the stack (RETAIN).
    access_log_retention_days: int = 365
    # API Gateway needs an account-level CloudWatch role for access logs. Turn off when the account
    # already has one (Settings of the API Gateway console) that you don't want replaced.
    apigateway_cloudwatch_role: bool = True

    def __post_init__(self) -> None:
        for name, floor in (("lineage_retention_days", LINEAGE_FLOOR_DAYS), ("access_log_retention_days", ACCESS_LOG_FLOOR_DAYS)):
            if getattr(self, name) < floor:
                raise ValueError(f"CDK context value {name}={getattr(self, name)}: at least {floor} (a year: nothing lost, "
                                 "README \"Nothing lost\")")
        problem = limits_problem(self.client_key_limits, self.api_rate_limit, self.api_burst_limit)
        if problem:  # the same rule `flowers keys create` applies to a key's limits
            raise ValueError("CDK context values client_key_rate_limit, client_key_burst_limit, client_key_quota_per_day "
                             f"(a key's default --rate, --burst, --quota): {problem}")
        if not WAF_RATE_FLOOR <= self.waf_rate_per_5min <= WAF_RATE_CEILING:
            raise ValueError(f"CDK context value waf_rate_per_5min={self.waf_rate_per_5min}: WAF takes {WAF_RATE_FLOOR} "
                             f"to {WAF_RATE_CEILING:,}")
        if self.api_reserved_concurrency < 0:
            raise ValueError(f"CDK context value api_reserved_concurrency={self.api_reserved_concurrency}: 0 or more")
        if self.api_reserved_concurrency and self.api_reserved_concurrency < self.api_burst_limit:
            raise ValueError(f"CDK context value api_reserved_concurrency={self.api_reserved_concurrency}: 0 (none) or at "
                             f"least api_burst_limit={self.api_burst_limit}, or bursts the stage lets through fail "
                             "in Lambda (5xx) instead of 429")

    @property
    def client_key_limits(self) -> Limits:
        return Limits(self.client_key_rate_limit, self.client_key_burst_limit, self.client_key_quota_per_day)

    @property
    def client_key_policy(self) -> KeyPolicy:
        """What `flowers keys create` reads from the stack (output ClientKeyLimits): defaults and the stage's ceilings."""
        return KeyPolicy(self.client_key_limits, self.api_rate_limit, self.api_burst_limit)

    @property
    def lineage_lock_days(self) -> int:
        """What the Lambdas lock manifests and models for (LINEAGE_LOCK_DAYS): none in a stack that keeps no data, whose
        buckets are emptied when it is deleted (a locked version would make that deletion fail)."""
        return self.lineage_retention_days if self.retain_data else 0

    @classmethod
    def from_context(cls, get: Callable[[str], Any], *, stack_name: str | None = None) -> "FlowersConfig":
        """`get(name)` returns a context value or None (App.node.try_get_context). With a stack name,
        `model_package_group` defaults to it."""
        values: dict[str, Any] = {}
        if stack_name:
            values["model_package_group"] = stack_name
        for field in fields(cls):
            raw = get(field.name)
            if raw is None:
                continue
            if field.name == "hyperparameters":
                values[field.name] = _hyperparameters(raw)
                continue
            values[field.name] = _coerce(field.type, raw, field.name)
        return cls(**values)

    def lambda_environment(self) -> Mapping[str, str]:
        """Settings the Lambdas read, except the names of resources (the stack adds those), as
        chalicelib/settings.py's schema names and writes them."""
        pipeline = {f.name: getattr(self, f.name) for f in fields(self) if f.name in settings.SCHEMA}  # named as Settings' fields
        pipeline["lineage_lock_days"] = self.lineage_lock_days
        return {
            **settings.environment({"mode": Mode.AWS, **pipeline, "service_name": _PIPELINE.service_name,
                                    "metrics_namespace": _PIPELINE.metrics_namespace}),
            "POWERTOOLS_LOG_LEVEL": "INFO",  # Powertools' own variable, not a setting
        }


def _hyperparameters(raw: Any) -> str:
    """The context value (an object in cdk.json, JSON text with -c) as JSON text, checked as the Lambdas check it."""
    from chalicelib.contract.hyperparameters import HyperparameterProblem, check

    try:
        document = json.loads(raw) if isinstance(raw, str) else raw
        return json.dumps(check(document, "CDK context value hyperparameters"), sort_keys=True)
    except (ValueError, HyperparameterProblem) as exc:
        raise ValueError(f"bad CDK context value hyperparameters={raw!r}: {exc}") from None


def _coerce(kind: Any, raw: Any, name: str) -> Any:
    kind = kind if isinstance(kind, str) else kind.__name__
    try:
        if kind == "bool":
            if isinstance(raw, bool):
                return raw
            lowered = str(raw).strip().lower()
            if lowered in ("true", "1", "yes", "on"):
                return True
            if lowered in ("false", "0", "no", "off"):
                return False
            raise ValueError("expected true or false")
        if kind == "int":
            return int(raw)
        if kind == "float":
            return float(raw)
        return str(raw)
    except ValueError as exc:
        raise ValueError(f"bad CDK context value {name}={raw!r}: {exc}") from None

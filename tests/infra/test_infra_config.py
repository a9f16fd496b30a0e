"""infra/flowers_infra/config.py: the CDK context's hyperparameters become the Lambdas' variable."""
from __future__ import annotations

import json

import pytest


def test_the_cdk_context_value_becomes_the_lambdas_variable():
    import sys

    from pipeline_fixtures import ROOT

    sys.path.append(str(ROOT / "infra"))
    from flowers_infra.config import FlowersConfig

    context = {"hyperparameters": {"epochs": 8, "augmentation": False}}
    config = FlowersConfig.from_context(context.get)
    assert json.loads(config.lambda_environment()["HYPERPARAMETERS"]) == {"epochs": "8", "augmentation": "false"}
    assert FlowersConfig.from_context({"hyperparameters": '{"batch_size": "16"}'}.get).hyperparameters == '{"batch_size": "16"}'
    assert FlowersConfig().lambda_environment()["HYPERPARAMETERS"] == "{}"
    with pytest.raises(ValueError, match="bad CDK context value hyperparameters"):
        FlowersConfig.from_context({"hyperparameters": {"batch_size": 0}}.get)


def _config():
    import sys

    from pipeline_fixtures import ROOT

    sys.path.append(str(ROOT / "infra"))
    from flowers_infra.config import FlowersConfig

    return FlowersConfig


def test_the_per_caller_limits_are_settings_with_defaults_checked_at_synth():
    FlowersConfig = _config()
    config = FlowersConfig.from_context({"waf_rate_per_5min": "300", "api_reserved_concurrency": "100",
                                         "client_key_rate_limit": "2.5", "client_key_burst_limit": "5",
                                         "client_key_quota_per_day": "1000"}.get)
    assert (config.waf_rate_per_5min, config.api_reserved_concurrency) == (300, 100)
    assert (config.client_key_policy.defaults.rate, config.client_key_policy.defaults.burst,
            config.client_key_policy.defaults.quota_per_day) == (2.5, 5, 1000)
    assert (config.client_key_policy.max_rate, config.client_key_policy.max_burst) == (config.api_rate_limit, config.api_burst_limit)
    defaults = FlowersConfig()
    assert defaults.waf_rate_per_5min >= 10 and defaults.api_reserved_concurrency >= defaults.api_burst_limit
    assert "WAF_RATE_PER_5MIN" not in defaults.lambda_environment()  # the stack's, not the Lambdas'


@pytest.mark.parametrize("context, says", [
    ({"waf_rate_per_5min": "9"}, "waf_rate_per_5min=9: WAF takes 10"),
    ({"api_reserved_concurrency": "-1"}, "api_reserved_concurrency=-1: 0 or more"),
    ({"api_reserved_concurrency": "39"}, "api_reserved_concurrency=39: 0 \\(none\\) or at least api_burst_limit=40"),
    ({"client_key_rate_limit": "21"}, "client_key_rate_limit.*the API's stage allows 20 requests/s"),
    ({"client_key_burst_limit": "0"}, "--burst 0: must be 1 or more"),
    ({"client_key_quota_per_day": "0"}, "--quota 0"),
    ({"waf_rate_per_5min": "many"}, "bad CDK context value waf_rate_per_5min"),
])
def test_per_caller_limits_that_cannot_work_are_refused(context, says):
    FlowersConfig = _config()
    with pytest.raises(ValueError, match=says):
        FlowersConfig.from_context(context.get)


def test_no_reserved_concurrency_is_a_choice():
    FlowersConfig = _config()
    assert FlowersConfig.from_context({"api_reserved_concurrency": "0"}.get).api_reserved_concurrency == 0

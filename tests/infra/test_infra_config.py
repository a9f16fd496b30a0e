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

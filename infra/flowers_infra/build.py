"""Builds the CDK app: used by infra/app.py (`make synth`, `cdk deploy`) and by the tests."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Mapping

import aws_cdk as cdk

from flowers_infra.config import FlowersConfig
from flowers_infra.stack import FlowersStack

INFRA_DIR = Path(__file__).resolve().parents[1]
STACK_NAME = "flowers"


def cdk_json_context() -> dict[str, Any]:
    """cdk.json's context (feature flags, settings): the cdk CLI passes it itself, a plain
    `python app.py` run does not, so it is read here either way (the CLI's values win)."""
    return json.loads((INFRA_DIR / "cdk.json").read_text()).get("context", {})


def build(outdir: str | None = None, context: Mapping[str, Any] | None = None) -> tuple[cdk.App, FlowersStack]:
    merged = {**cdk_json_context(), **(context or {})}
    app = cdk.App(outdir=outdir, context=merged)
    # Every fixed physical name starts with the stack name: `-c stack_name=...` gives a second stack
    # in the same account and region.
    stack_name = app.node.try_get_context("stack_name") or STACK_NAME
    config = FlowersConfig.from_context(app.node.try_get_context, stack_name=stack_name)
    # No account or region in the stack: the template uses AWS::AccountId / AWS::Region, so it
    # synthesizes without credentials and deploys to whatever `cdk deploy` is pointed at.
    stack = FlowersStack(app, stack_name, config=config,
                         synthesizer=cdk.DefaultStackSynthesizer(generate_bootstrap_version_rule=True))
    return app, stack

"""Checkov suppressions, kept next to the resource they concern, each with its reason.

Checkov reads them from the resource's CloudFormation metadata:
`Metadata: {checkov: {skip: [{id: CKV_AWS_18, comment: "why"}]}}`.
"""
from __future__ import annotations

from typing import Union

from aws_cdk import CfnResource
from constructs import Construct


def skip_checkov(target: Union[Construct, CfnResource], reasons: dict[str, str]) -> None:
    """Suppress checkov checks on one resource; every check id needs a one-line reason."""
    cfn = target if isinstance(target, CfnResource) else target.node.default_child
    if not isinstance(cfn, CfnResource):
        raise TypeError(f"{target.node.path} has no CloudFormation resource to annotate")
    for check, reason in reasons.items():
        if not check.startswith("CKV") or not reason.strip():
            raise ValueError(f"checkov skip {check!r} on {target.node.path} needs a check id and a reason")
    existing = cfn.get_metadata("checkov") or {}
    skips = list(existing.get("skip", []))
    skips += [{"id": check, "comment": reason} for check, reason in sorted(reasons.items())]
    cfn.add_metadata("checkov", {"skip": skips})

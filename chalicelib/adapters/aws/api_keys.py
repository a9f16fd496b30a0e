"""Client API keys on API Gateway (`flowers keys`): each key with a usage plan of its own on the stack's API stage.

The decisions (names, tags, limits) are chalicelib/api/client_keys.py's; this module only makes the calls. A key is
found by its name (`<stack>-key-<NAME>`, GetApiKeys' nameQuery is a prefix) and confirmed by its tags.
"""
from __future__ import annotations

from datetime import datetime, timezone
from typing import Any, Iterator

from chalicelib.api.client_keys import QUOTA_PERIOD, ClientKey, Limits, client_name, plan_limits, resource_name, tags


class KeyConflict(RuntimeError):
    """A key of that name exists already on this stack."""


class ApiGatewayKeys:
    def __init__(self, client: Any, stack: str, api_id: str, stage: str):
        self._apigateway = client  # a boto3 "apigateway" client
        self.stack, self.api_id, self.stage = stack, api_id, stage

    # what is there ---------------------------------------------------------------------------------------------
    def _keys(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(client name, key) for each of this stack's client keys, without values."""
        pages = self._apigateway.get_paginator("get_api_keys").paginate(
            nameQuery=f"{self.stack}-key-", includeValues=False)
        for page in pages:
            for key in page.get("items", []):
                name = client_name(self.stack, key)
                if name:
                    yield name, key

    def _plans(self, key_id: str | None = None) -> Iterator[tuple[str, dict[str, Any]]]:
        """(client name, plan) for each of this stack's client key plans (those of one key with key_id)."""
        for page in self._apigateway.get_paginator("get_usage_plans").paginate(**({"keyId": key_id} if key_id else {})):
            for plan in page.get("items", []):
                name = client_name(self.stack, plan)
                if name:
                    yield name, plan

    def list(self) -> list[ClientKey]:
        found = []
        for name, key in self._keys():
            plans = [plan for plan_name, plan in self._plans(key["id"]) if plan_name == name]
            found.append(ClientKey(name, key["id"], _iso(key.get("createdDate")), bool(key.get("enabled")),
                                   plan_limits(plans[0]) if plans else None))
        return found

    # create, revoke ---------------------------------------------------------------------------------------------
    def create(self, name: str, limits: Limits) -> str:
        """A new key and its plan on the stage; the key's value (API Gateway generates it), which nothing shows again."""
        if any(n == name for n, _ in self._keys()) or any(n == name for n, _ in self._plans()):
            raise KeyConflict(f"key {name!r} exists on stack {self.stack!r}: revoke it first "
                              f"(flowers keys revoke {name}) or choose another name")
        named = resource_name(self.stack, name)
        plan = self._apigateway.create_usage_plan(
            name=named, description=f"flowers client key {name}: its own throttle and daily quota",
            apiStages=[{"apiId": self.api_id, "stage": self.stage}],
            throttle={"rateLimit": limits.rate, "burstLimit": limits.burst},
            quota={"limit": limits.quota_per_day, "period": QUOTA_PERIOD}, tags=tags(self.stack, name))
        key: dict[str, Any] = {}
        try:
            key = self._apigateway.create_api_key(name=named, description=f"flowers client key {name}", enabled=True,
                                                  tags=tags(self.stack, name))
            self._apigateway.create_usage_plan_key(usagePlanId=plan["id"], keyId=key["id"], keyType="API_KEY")
        except BaseException:
            # Half made is worse than not made: put back what was created, then say what failed.
            if key.get("id"):
                self._apigateway.delete_api_key(apiKey=key["id"])
            self._delete_plan(plan)
            raise
        return str(key["value"])

    def revoke(self, name: str) -> tuple[int, int]:
        """Delete the key (at once it opens nothing: API Gateway refuses a deleted key with 403), then its plan. Run
        again after a failure half way, it deletes what is left. (keys deleted, plans deleted)."""
        keys = [key for found, key in self._keys() if found == name]
        for key in keys:
            self._apigateway.delete_api_key(apiKey=key["id"])
        plans = [plan for found, plan in self._plans() if found == name]
        for plan in plans:
            self._delete_plan(plan)
        return len(keys), len(plans)

    def _delete_plan(self, plan: dict[str, Any]) -> None:
        # API Gateway refuses to delete a plan that is still on a stage: take it off every stage first.
        stages = [{"op": "remove", "path": "/apiStages", "value": f"{s['apiId']}:{s['stage']}"}
                  for s in plan.get("apiStages", [])]
        if stages:
            self._apigateway.update_usage_plan(usagePlanId=plan["id"], patchOperations=stages)
        self._apigateway.delete_usage_plan(usagePlanId=plan["id"])


def _iso(value: Any) -> str:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return str(value or "")

"""The data set's state in one DynamoDB table (keys: pk, sk, both strings; TTL attribute expires_at).

Items:
  pk="dataset#<bucket>/<prefix>", sk="pipeline"     the DatasetState: pending_changes, last_change_at, running, last_outcome
  pk="dataset#<bucket>/<prefix>", sk="run#<version>" the version's first run (every record before reruns existed)
  pk=..., sk="run#<version>#<run id>"                 each rerun by hand of the version (records.model_version)
  pk="change#<dataset>#<change id>", sk="change"     seen S3 events (own partitions: a burst of
                                                      3,000 uploads must not hit one hot key)
Every state change is a conditional write or a transaction, so duplicated, reordered or
concurrent deliveries cannot start two runs or count an upload twice.
"""
from __future__ import annotations

import random
import time
from decimal import Decimal
from typing import TYPE_CHECKING, Any, Callable, Mapping

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from chalicelib.ports import BUSY, CLAIMED, VERSION_EXISTS
from chalicelib.pipeline.actors import OperatorAction, actions_from
from chalicelib.pipeline.records import Change, Outcome, DatasetState, Running, RunRecord, run_action

if TYPE_CHECKING:
    from mypy_boto3_dynamodb import DynamoDBClient
    from mypy_boto3_dynamodb.type_defs import (
        AttributeValueTypeDef,
        PutTypeDef,
        QueryInputTypeDef,
        TransactWriteItemTypeDef,
        UpdateTypeDef,
    )

    AttributeMap = dict[str, AttributeValueTypeDef]

CHANGE_TTL_SECONDS = 14 * 24 * 3600  # longer than SQS keeps a message (and its DLQ redrive window)
_CHUNK = 99  # TransactWriteItems takes 100 items: 99 change markers + the state update
_RETRIES = 8

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def _to_dynamo(value: object) -> object:
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        return {k: _to_dynamo(v) for k, v in value.items() if v is not None}
    if isinstance(value, (list, tuple)):
        return [_to_dynamo(v) for v in value]
    return value


def _from_dynamo(value: object) -> Any:
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, dict):
        return {k: _from_dynamo(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_from_dynamo(v) for v in value]
    return value


def _ser(value: object) -> AttributeValueTypeDef:
    return _serializer.serialize(_to_dynamo(value))


def _item(raw: Mapping[str, AttributeValueTypeDef]) -> dict[str, Any]:
    return {k: _from_dynamo(_deserializer.deserialize(v)) for k, v in raw.items()}


def _reasons(error: ClientError) -> list[str]:
    return [r.get("Code", "None") for r in error.response.get("CancellationReasons", [])]


def _running(value: dict[str, Any] | None) -> Running | None:
    return Running.from_dict(value) if value else None


def _outcome(value: dict[str, Any] | None) -> Outcome | None:
    return Outcome.from_dict(value) if value else None


class DynamoStateStore:
    def __init__(self, client: DynamoDBClient, table: str, clock: Callable[[], float] = time.time,
                 sleep: Callable[[float], None] = time.sleep):
        self._db = client
        self._table = table
        self._clock = clock
        self._sleep = sleep

    # keys ---------------------------------------------------------------------------------
    @staticmethod
    def _state_key(dataset: str) -> AttributeMap:
        # The sort key keeps its first name, "pipeline": deployed tables hold items under it.
        return {"pk": {"S": f"dataset#{dataset}"}, "sk": {"S": "pipeline"}}

    @staticmethod
    def _run_key(dataset: str, version: str, run_id: str = "") -> AttributeMap:
        return {"pk": {"S": f"dataset#{dataset}"}, "sk": {"S": f"run#{version}" + (f"#{run_id}" if run_id else "")}}

    def _backoff(self, attempt: int) -> None:
        self._sleep(min(1.0, 0.02 * 2**attempt) * random.random())

    # uploads --------------------------------------------------------------------------------
    def record_changes(self, dataset: str, changes: list[Change]) -> int:
        unique = list({c.change_id: c for c in changes}.values())  # one transaction may not touch an item twice
        new = 0
        for start in range(0, len(unique), _CHUNK):
            new += self._record_chunk(dataset, unique[start : start + _CHUNK])
        return new

    def _record_chunk(self, dataset: str, chunk: list[Change]) -> int:
        expires = int(self._clock()) + CHANGE_TTL_SECONDS
        move_clock = True  # False once we know a later upload already set last_change_at
        for attempt in range(_RETRIES):
            if not chunk:
                return 0
            latest = max(c.event_time for c in chunk)
            items: list[TransactWriteItemTypeDef] = [{
                "Put": {
                    "TableName": self._table,
                    "Item": {"pk": {"S": f"change#{dataset}#{c.change_id}"}, "sk": {"S": "change"},
                             "key": {"S": c.key}, "kind": {"S": c.kind}, "event_time": _ser(c.event_time),
                             "expires_at": {"N": str(expires)}},
                    "ConditionExpression": "attribute_not_exists(pk)",
                }
            } for c in chunk]
            names = {"#p": "pending_changes"}
            values: AttributeMap = {":n": {"N": str(len(chunk))}}
            update: UpdateTypeDef = {
                "TableName": self._table,
                "Key": self._state_key(dataset),
                "UpdateExpression": "ADD #p :n",
                "ExpressionAttributeNames": names,
                "ExpressionAttributeValues": values,
            }
            if move_clock:
                # DynamoDB has no max(): set the clock only when this chunk is newer (events arrive in any order).
                update["UpdateExpression"] += " SET #t = :t"
                update["ConditionExpression"] = "attribute_not_exists(#t) OR #t < :t"
                names["#t"] = "last_change_at"
                values[":t"] = _ser(latest)
            try:
                self._db.transact_write_items(TransactItems=[*items, {"Update": update}])
                return len(chunk)
            except ClientError as error:
                if error.response["Error"]["Code"] != "TransactionCanceledException":
                    raise
                reasons = _reasons(error)
                if not reasons:
                    self._backoff(attempt)
                    continue
                seen = {i for i, code in enumerate(reasons[: len(chunk)]) if code == "ConditionalCheckFailed"}
                if len(reasons) > len(chunk) and reasons[len(chunk)] == "ConditionalCheckFailed":
                    move_clock = False
                if any(code not in ("None", "ConditionalCheckFailed") for code in reasons):
                    self._backoff(attempt)  # TransactionConflict / throttling: a concurrent batch
                chunk = [c for i, c in enumerate(chunk) if i not in seen]
        raise RuntimeError(f"could not record {len(chunk)} upload event(s) after {_RETRIES} tries")

    # runs -----------------------------------------------------------------------------------
    def dataset_state(self, dataset: str) -> DatasetState:
        raw = self._db.get_item(TableName=self._table, Key=self._state_key(dataset), ConsistentRead=True).get("Item")
        if not raw:
            return DatasetState()
        item = _item(raw)
        return DatasetState(
            pending_changes=int(item.get("pending_changes", 0)),
            last_change_at=float(item.get("last_change_at", 0)),
            running=_running(item.get("running")),
            dataset_version=item.get("dataset_version", ""),
            last_outcome=_outcome(item.get("last_outcome")),
            listing_checked_at=float(item.get("listing_checked_at", 0)),
        )

    def note_listing_check(self, dataset: str, at: float) -> None:
        self._db.update_item(TableName=self._table, Key=self._state_key(dataset), UpdateExpression="SET #c = :c",
                             ExpressionAttributeNames={"#c": "listing_checked_at"}, ExpressionAttributeValues={":c": _ser(at)})

    def claim_run(self, dataset: str, running: Running, consumed: int) -> str:
        action = run_action(running)
        record: PutTypeDef = {
            "TableName": self._table,
            "Item": {**self._run_key(dataset, running.version, running.run_id), "job_name": {"S": running.job_name},
                     "status": {"S": running.stage}, "created_at": _ser(running.started_at), "run_id": {"S": running.run_id},
                     "actions": _ser([action.as_dict()] if action else [])},
            "ConditionExpression": "attribute_not_exists(pk)",
        }
        try:
            self._db.transact_write_items(TransactItems=[
                {"Update": {
                    "TableName": self._table,
                    "Key": self._state_key(dataset),
                    "UpdateExpression": "SET #r = :r, #v = :v ADD #p :neg",
                    "ConditionExpression": "attribute_not_exists(#r)",
                    "ExpressionAttributeNames": {"#r": "running", "#v": "dataset_version", "#p": "pending_changes"},
                    "ExpressionAttributeValues": {":r": _ser(running.as_dict()), ":v": {"S": running.version},
                                                  ":neg": {"N": str(-consumed)}},
                }},
                {"Put": record},
            ])
            return CLAIMED
        except ClientError as error:
            if error.response["Error"]["Code"] != "TransactionCanceledException":
                raise
            reasons = _reasons(error)
            if reasons and reasons[0] == "ConditionalCheckFailed":
                return BUSY
            if len(reasons) > 1 and reasons[1] == "ConditionalCheckFailed":
                return VERSION_EXISTS
            return BUSY  # a concurrent writer: the next tick looks again

    def skip_pending(self, dataset: str, consumed: int, outcome: Outcome) -> bool:
        try:
            self._db.update_item(
                TableName=self._table, Key=self._state_key(dataset),
                UpdateExpression="SET #o = :o ADD #p :neg",
                ConditionExpression="attribute_not_exists(#r)",
                ExpressionAttributeNames={"#o": "last_outcome", "#p": "pending_changes", "#r": "running"},
                ExpressionAttributeValues={":o": _ser(outcome.as_dict()), ":neg": {"N": str(-consumed)}},
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def advance(self, dataset: str, job_name: str, from_stages: tuple[str, ...], /, **fields: Any) -> bool:
        names = {"#r": "running", "#j": "job_name", "#s": "stage"}
        values: AttributeMap = {":j": {"S": job_name}}
        sets: list[str] = []
        for i, (name, value) in enumerate(fields.items()):
            names[f"#f{i}"] = name
            values[f":f{i}"] = _ser(value)
            sets.append(f"#r.#f{i} = :f{i}")
        stage_checks: list[str] = []
        for i, stage in enumerate(from_stages):
            values[f":s{i}"] = {"S": stage}
            stage_checks.append(f":s{i}")
        try:
            self._db.update_item(
                TableName=self._table, Key=self._state_key(dataset),
                UpdateExpression="SET " + ", ".join(sets),
                ConditionExpression=f"#r.#j = :j AND #r.#s IN ({', '.join(stage_checks)})",
                ExpressionAttributeNames=names, ExpressionAttributeValues=values,
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def finish(self, dataset: str, job_name: str, outcome: Outcome, model: dict[str, Any] | None = None) -> bool:
        run_values: AttributeMap = {":s": {"S": outcome.status}, ":f": _ser(outcome.at), ":why": {"S": outcome.reason}}
        run_names = {"#s": "status", "#f": "finished_at", "#why": "reason"}
        run_update = "SET #s = :s, #f = :f, #why = :why"
        if model:
            run_update += ", #m = :m"
            run_names["#m"] = "model"
            run_values[":m"] = _ser(model)
        try:
            self._db.transact_write_items(TransactItems=[
                {"Update": {
                    "TableName": self._table, "Key": self._state_key(dataset),
                    "UpdateExpression": "REMOVE #r SET #o = :o",
                    "ConditionExpression": "#r.#j = :j",
                    "ExpressionAttributeNames": {"#r": "running", "#o": "last_outcome", "#j": "job_name"},
                    "ExpressionAttributeValues": {":o": _ser(outcome.as_dict()), ":j": {"S": job_name}},
                }},
                {"Update": {
                    "TableName": self._table, "Key": self._run_key(dataset, outcome.version, outcome.run_id),
                    "UpdateExpression": run_update,
                    "ExpressionAttributeNames": run_names,
                    "ExpressionAttributeValues": run_values,
                }},
            ])
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "TransactionCanceledException":
                return False
            raise

    def note_action(self, dataset: str, version: str, run_id: str, action: OperatorAction) -> bool:
        try:
            self._db.update_item(
                TableName=self._table, Key=self._run_key(dataset, version, run_id),
                UpdateExpression="SET #a = list_append(if_not_exists(#a, :none), :a)",
                ConditionExpression="attribute_exists(pk)",
                ExpressionAttributeNames={"#a": "actions"},
                ExpressionAttributeValues={":a": _ser([action.as_dict()]), ":none": {"L": []}},
            )
            return True
        except ClientError as error:
            if error.response["Error"]["Code"] == "ConditionalCheckFailedException":
                return False
            raise

    def run(self, dataset: str, version: str) -> RunRecord | None:
        # The version's records: "run#<version>" and "run#<version>#<run id>" (the prefix also finds a longer version's)
        found = [r for r in self._records(dataset, f"run#{version}", consistent=True) if r.version == version]
        return max(found, key=lambda r: r.created_at) if found else None

    def runs(self, dataset: str, limit: int = 50) -> list[RunRecord]:
        records = self._records(dataset, "run#")
        records.sort(key=lambda r: r.created_at, reverse=True)
        return records[:limit]

    def _records(self, dataset: str, prefix: str, consistent: bool = False) -> list[RunRecord]:
        records: list[RunRecord] = []
        request: QueryInputTypeDef = {
            "TableName": self._table,
            "KeyConditionExpression": "pk = :pk AND begins_with(sk, :run)",
            "ExpressionAttributeValues": {":pk": {"S": f"dataset#{dataset}"}, ":run": {"S": prefix}},
            "ConsistentRead": consistent,
        }
        while True:
            page = self._db.query(**request)
            records += [self._run_record(_item(raw)) for raw in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return records

    @staticmethod
    def _run_record(item: dict[str, Any]) -> RunRecord:
        _, version, *run_id = item["sk"].split("#", 2)
        return RunRecord(
            version=version, job_name=item.get("job_name", ""), status=item.get("status", ""),
            created_at=float(item.get("created_at", 0)), finished_at=float(item.get("finished_at", 0)),
            reason=item.get("reason", ""), model=item.get("model") or {}, run_id=run_id[0] if run_id else "",
            actions=actions_from(item.get("actions")),
        )


def create_table(client: DynamoDBClient, table: str) -> None:
    """The table's shape (the CDK creates the real one; tests and local tools use this)."""
    client.create_table(
        TableName=table,
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}, {"AttributeName": "sk", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}, {"AttributeName": "sk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )

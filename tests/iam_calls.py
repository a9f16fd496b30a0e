"""What each AWS call the code makes asks of IAM: its action(s), resource ARN(s) and the condition keys it carries
(pure: a botocore operation name and its parameters in, tests/iam_policy.py Requests out).

One small, explicit table (CALLS): a call it does not list fails the test that recorded it (UnmappedCall), so a new
code path must be mapped here before it can pass. Sources: AWS's Service Authorization Reference for S3, DynamoDB,
SageMaker, EventBridge, SQS and IAM (the actions, resource types and condition keys of each operation).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

from iam_policy import Request

Params = Mapping[str, Any]


class UnmappedCall(KeyError):
    """A call tests/iam_calls.py CALLS does not know: map it (action, resource, condition keys) before it can pass."""


@dataclass(frozen=True)
class Where:
    account: str
    region: str
    partition: str = "aws"

    def arn(self, service: str, resource: str, *, regional: bool = True, in_account: bool = True) -> str:
        return f"arn:{self.partition}:{service}:{self.region if regional else ''}:{self.account if in_account else ''}:{resource}"


# S3 ----------------------------------------------------------------------------------------------------------------
def _bucket(where: Where, p: Params) -> str:
    return f"arn:{where.partition}:s3:::{p['Bucket']}"


def _object(where: Where, p: Params) -> str:
    return f"{_bucket(where, p)}/{p['Key']}"


def _versioned(action: str) -> Callable[[Where, Params], list[Request]]:
    """GetObject / DeleteObject of one version need s3:GetObjectVersion / s3:DeleteObjectVersion instead."""
    def needs(where: Where, p: Params) -> list[Request]:
        return [Request(action + ("Version" if p.get("VersionId") else ""), _object(where, p))]
    return needs


def _listing(action: str) -> Callable[[Where, Params], list[Request]]:
    def needs(where: Where, p: Params) -> list[Request]:
        context = {key: str(p[param]) for key, param in (("s3:prefix", "Prefix"), ("s3:delimiter", "Delimiter"),
                                                          ("s3:max-keys", "MaxKeys")) if param in p}
        return [Request(action, _bucket(where, p), context)]
    return needs


def _date(value: Any) -> str:
    return value.isoformat() if hasattr(value, "isoformat") else str(value)


def _put_object(where: Where, p: Params) -> list[Request]:
    """PutObject: the conditional write's If-None-Match / If-Match travel as s3:if-none-match / s3:if-match (a bucket
    policy may require them: the artifact bucket's manifests/ Deny); Object Lock headers need s3:PutObjectRetention
    (and a legal hold s3:PutObjectLegalHold) as well."""
    context = {key: str(p[param]) for key, param in (("s3:object-lock-mode", "ObjectLockMode"),
                                                      ("s3:object-lock-legal-hold", "ObjectLockLegalHoldStatus"),
                                                      ("s3:if-none-match", "IfNoneMatch"), ("s3:if-match", "IfMatch"))
               if param in p}
    if "ObjectLockRetainUntilDate" in p:
        context["s3:object-lock-retain-until-date"] = _date(p["ObjectLockRetainUntilDate"])
    found = [Request("s3:PutObject", _object(where, p), context)]
    if "ObjectLockMode" in p or "ObjectLockRetainUntilDate" in p:
        found.append(Request("s3:PutObjectRetention", _object(where, p), context))
    if "ObjectLockLegalHoldStatus" in p:
        found.append(Request("s3:PutObjectLegalHold", _object(where, p), context))
    if "Tagging" in p:
        found.append(Request("s3:PutObjectTagging", _object(where, p)))
    return found


def _put_retention(where: Where, p: Params) -> list[Request]:
    """PutObjectRetention: of one version, s3:PutObjectRetention all the same (the version is a resource of the object);
    shortening or lifting a governance lock needs s3:BypassGovernanceRetention too."""
    retention = p.get("Retention") or {}
    context = {key: str(retention[field]) for key, field in (("s3:object-lock-mode", "Mode"),) if field in retention}
    if "RetainUntilDate" in retention:
        context["s3:object-lock-retain-until-date"] = _date(retention["RetainUntilDate"])
    found = [Request("s3:PutObjectRetention", _object(where, p), context)]
    if p.get("BypassGovernanceRetention"):
        found.append(Request("s3:BypassGovernanceRetention", _object(where, p), context))
    return found


def _copy_object(where: Where, p: Params) -> list[Request]:
    """CopyObject: a PutObject of the destination (its own conditions) and a read of the source, of its version when
    CopySource names one (s3:GetObjectVersion)."""
    source = p["CopySource"]
    if isinstance(source, str):  # "bucket/key?versionId=..."
        path, _, query = source.lstrip("/").partition("?versionId=")
        bucket, _, key = path.partition("/")
        source = {"Bucket": bucket, "Key": key, **({"VersionId": query} if query else {})}
    return [*_put_object(where, p), *_versioned("s3:GetObject")(where, source)]


# A missing key answers 404 only to a caller that may list the bucket, otherwise 403 (S3's HeadObject and GetObject
# documentation). The implicit check is s3:ListBucket on the bucket in the context of the object request, which
# has no s3:prefix: a ListBucket granted only for some prefixes does not make it a 404 (tests/iam_harness.py).
def missing_key_needs(where: Where, p: Params) -> Request:
    return Request("s3:ListBucket", _bucket(where, p))


# DynamoDB ----------------------------------------------------------------------------------------------------------
def _table(where: Where, name: str, index: str | None = None) -> str:
    return where.arn("dynamodb", f"table/{name}" + (f"/index/{index}" if index else ""))


def _item(action: str) -> Callable[[Where, Params], list[Request]]:
    def needs(where: Where, p: Params) -> list[Request]:
        return [Request(action, _table(where, p["TableName"], p.get("IndexName")))]
    return needs


_TRANSACT = {"Put": "dynamodb:PutItem", "Update": "dynamodb:UpdateItem", "Delete": "dynamodb:DeleteItem",
             "ConditionCheck": "dynamodb:ConditionCheckItem", "Get": "dynamodb:GetItem"}


def _transaction(where: Where, p: Params) -> list[Request]:
    """TransactWriteItems / TransactGetItems: each item's own action on its table."""
    return [Request(_TRANSACT[kind], _table(where, body["TableName"]))
            for item in p["TransactItems"] for kind, body in item.items()]


# SageMaker ---------------------------------------------------------------------------------------------------------
def _sm(where: Where, kind: str, name: str) -> str:
    return name if name.startswith("arn:") else where.arn("sagemaker", f"{kind}/{name.lower()}")


def _pass_role(role_arn: str) -> Request:
    return Request("iam:PassRole", role_arn, {"iam:PassedToService": "sagemaker.amazonaws.com"})


def _tagging(resource: str, p: Params) -> list[Request]:
    """Tags given at creation need sagemaker:AddTags on the new resource too."""
    tags = p.get("Tags") or []
    return [Request("sagemaker:AddTags", resource, {"aws:TagKeys": tuple(t["Key"] for t in tags)})] if tags else []


def _bool(value: Any) -> str:
    return "true" if value else "false"


def _training_job(where: Where, p: Params) -> list[Request]:
    job = _sm(where, "training-job", p["TrainingJobName"])
    resources = p.get("ResourceConfig") or {}
    types = [resources["InstanceType"]] if "InstanceType" in resources else []
    types += [g["InstanceType"] for g in resources.get("InstanceGroups", [])]
    context: dict[str, Any] = {"sagemaker:InstanceTypes": tuple(types),
                               "sagemaker:NetworkIsolation": _bool(p.get("EnableNetworkIsolation")),
                               "sagemaker:MaxRuntimeInSeconds": str((p.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", ""))}
    if p.get("VpcConfig"):
        context["sagemaker:VpcSubnets"] = tuple(p["VpcConfig"].get("Subnets", []))
    return [Request("sagemaker:CreateTrainingJob", job, context), _pass_role(p["RoleArn"]), *_tagging(job, p)]


def _processing_job(where: Where, p: Params) -> list[Request]:
    job = _sm(where, "processing-job", p["ProcessingJobName"])
    cluster = (p.get("ProcessingResources") or {}).get("ClusterConfig") or {}
    network = p.get("NetworkConfig") or {}
    context: dict[str, Any] = {"sagemaker:InstanceTypes": (cluster["InstanceType"],) if "InstanceType" in cluster else (),
                               "sagemaker:NetworkIsolation": _bool(network.get("EnableNetworkIsolation")),
                               "sagemaker:MaxRuntimeInSeconds": str((p.get("StoppingCondition") or {}).get("MaxRuntimeInSeconds", ""))}
    return [Request("sagemaker:CreateProcessingJob", job, context), _pass_role(p["RoleArn"]), *_tagging(job, p)]


def _by_name(action: str, kind: str, param: str) -> Callable[[Where, Params], list[Request]]:
    def needs(where: Where, p: Params) -> list[Request]:
        return [Request(action, _sm(where, kind, p[param]))]
    return needs


def _create_package(where: Where, p: Params) -> list[Request]:
    """A new version in a group: its ARN (model-package/<group>/<n>) is known only once made; any n stands for it."""
    group = p["ModelPackageGroupName"]
    package = _sm(where, "model-package", f"{group.rsplit('/', 1)[-1]}/new")
    context = {"sagemaker:ModelApprovalStatus": p["ModelApprovalStatus"]} if "ModelApprovalStatus" in p else {}
    return [Request("sagemaker:CreateModelPackage", package, context), *_tagging(package, p)]


def _update_package(where: Where, p: Params) -> list[Request]:
    context = {"sagemaker:ModelApprovalStatus": p["ModelApprovalStatus"]} if "ModelApprovalStatus" in p else {}
    return [Request("sagemaker:UpdateModelPackage", _sm(where, "model-package", p["ModelPackageArn"]), context)]


# EventBridge, SQS ---------------------------------------------------------------------------------------------------
def _put_events(where: Where, p: Params) -> list[Request]:
    """One request per entry: each entry names its bus and carries its own source and detail-type."""
    found = []
    for entry in p["Entries"]:
        bus = entry.get("EventBusName") or "default"
        arn = bus if bus.startswith("arn:") else where.arn("events", f"event-bus/{bus}")
        found.append(Request("events:PutEvents", arn, {"events:source": entry.get("Source", ""),
                                                       "events:detail-type": entry.get("DetailType", "")}))
    return found


def _queue(action: str) -> Callable[[Where, Params], list[Request]]:
    def needs(where: Where, p: Params) -> list[Request]:
        name = p["QueueUrl"].rstrip("/").rsplit("/", 1)[-1]
        return [Request(action, where.arn("sqs", name))]
    return needs


# (botocore service name, operation) -> the IAM requests it makes
CALLS: dict[tuple[str, str], Callable[[Where, Params], list[Request]]] = {
    ("s3", "GetObject"): _versioned("s3:GetObject"),
    ("s3", "HeadObject"): _versioned("s3:GetObject"),  # HeadObject is authorised as s3:GetObject
    ("s3", "PutObject"): _put_object,
    ("s3", "PutObjectRetention"): _put_retention,
    ("s3", "CopyObject"): _copy_object,
    ("s3", "DeleteObject"): _versioned("s3:DeleteObject"),
    ("s3", "ListObjectsV2"): _listing("s3:ListBucket"),
    ("s3", "ListObjects"): _listing("s3:ListBucket"),
    ("s3", "ListObjectVersions"): _listing("s3:ListBucketVersions"),
    ("dynamodb", "GetItem"): _item("dynamodb:GetItem"),
    ("dynamodb", "PutItem"): _item("dynamodb:PutItem"),
    ("dynamodb", "UpdateItem"): _item("dynamodb:UpdateItem"),
    ("dynamodb", "DeleteItem"): _item("dynamodb:DeleteItem"),
    ("dynamodb", "Query"): _item("dynamodb:Query"),
    ("dynamodb", "TransactWriteItems"): _transaction,
    ("dynamodb", "TransactGetItems"): _transaction,
    ("sagemaker", "CreateTrainingJob"): _training_job,
    ("sagemaker", "CreateProcessingJob"): _processing_job,
    ("sagemaker", "DescribeTrainingJob"): _by_name("sagemaker:DescribeTrainingJob", "training-job", "TrainingJobName"),
    ("sagemaker", "DescribeProcessingJob"): _by_name("sagemaker:DescribeProcessingJob", "processing-job", "ProcessingJobName"),
    ("sagemaker", "DescribeModelPackageGroup"): _by_name("sagemaker:DescribeModelPackageGroup", "model-package-group",
                                                         "ModelPackageGroupName"),
    ("sagemaker", "CreateModelPackageGroup"): _by_name("sagemaker:CreateModelPackageGroup", "model-package-group",
                                                       "ModelPackageGroupName"),
    ("sagemaker", "ListModelPackages"): lambda where, p: [Request("sagemaker:ListModelPackages", "*")],  # no resource type
    ("sagemaker", "DescribeModelPackage"): _by_name("sagemaker:DescribeModelPackage", "model-package", "ModelPackageName"),
    ("sagemaker", "CreateModelPackage"): _create_package,
    ("sagemaker", "UpdateModelPackage"): _update_package,
    ("sagemaker", "AddTags"): lambda where, p: _tagging(p["ResourceArn"], p),
    ("events", "PutEvents"): _put_events,
    ("sqs", "SendMessage"): _queue("sqs:SendMessage"),
    ("sqs", "ReceiveMessage"): _queue("sqs:ReceiveMessage"),
    ("sqs", "DeleteMessage"): _queue("sqs:DeleteMessage"),
    ("sqs", "GetQueueAttributes"): _queue("sqs:GetQueueAttributes"),
    ("sqs", "ChangeMessageVisibility"): _queue("sqs:ChangeMessageVisibility"),
    ("sts", "GetCallerIdentity"): lambda where, p: [],  # needs no permission
}


def needs(service: str, operation: str, params: Params, where: Where) -> list[Request]:
    """The IAM requests of one call; UnmappedCall for a call CALLS does not list."""
    try:
        rule = CALLS[(service, operation)]
    except KeyError:
        raise UnmappedCall(f"{service} {operation} is not in tests/iam_calls.py CALLS: map its IAM action(s), resource "
                           f"and condition keys (AWS's Service Authorization Reference) so it can be checked") from None
    return rule(where, params)

"""ModelRegistry on the SageMaker Model Registry: one model package group, one package per model.

A package's description is "flowers model <version>" (how we find a version without a
describe call per package); its CustomerMetadataProperties hold the URIs, sha256 and
headline metrics; ModelMetrics points at metadata.json. Approval maps to our status:
Approved -> approved, PendingManualApproval -> pending, Rejected -> rejected.
The served model is the newest Approved package.
"""
from __future__ import annotations

import builtins
import hashlib
from typing import TYPE_CHECKING, Any, Iterator

from botocore.exceptions import ClientError

from chalicelib.pipeline.records import APPROVED, PENDING, REJECTED, ModelEntry
from chalicelib.timestamps import epoch

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.literals import ModelApprovalStatusType
    from mypy_boto3_sagemaker.type_defs import (
        CreateModelPackageInputTypeDef,
        DescribeModelPackageOutputTypeDef,
        ListModelPackagesInputTypeDef,
        ModelPackageSummaryTypeDef,
    )

_TO_AWS: dict[str, ModelApprovalStatusType] = {APPROVED: "Approved", PENDING: "PendingManualApproval", REJECTED: "Rejected"}
_FROM_AWS: dict[str, str] = {v: k for k, v in _TO_AWS.items()}
_DESCRIPTION = "flowers model "
CLIENT_TOKEN_LENGTH = 36  # CreateModelPackage's ClientToken: 1 to 36 of [a-zA-Z0-9-]


def client_token(group: str, version: str) -> str:
    """CreateModelPackage's idempotency token: one per (group, version), whatever the group's length.
    (A cut `f"{group}-{version}"` lost the version for groups of 20 characters or more, so every
    version of such a group replayed the first one's registration.)"""
    return hashlib.sha256(f"{group}\n{version}".encode()).hexdigest()[:CLIENT_TOKEN_LENGTH]


def properties(entry: ModelEntry, metadata: dict[str, Any]) -> dict[str, str]:
    """CustomerMetadataProperties: string values (256 chars at most each, 50 keys)."""
    metrics = metadata.get("metrics") or {}
    values = {
        "version": entry.version,
        "dataset_version": entry.dataset_version,
        "training_dataset_version": str(metadata.get("dataset_version", "")),
        "model_uri": entry.model_uri,
        "labels_uri": entry.labels_uri,
        "metadata_uri": entry.metadata_uri,
        "sha256": entry.sha256,
        "size_bytes": str(entry.size_bytes),
        "test_accuracy": "" if entry.test_accuracy is None else f"{entry.test_accuracy:.6f}",
        "val_accuracy": str(metrics.get("val_accuracy", "")),
        "quantization": str(metadata.get("quantization", "")),
        "preset": str(metadata.get("preset", "")),
        "image_size": str(metadata.get("image_size", "")),
        "labels": ",".join(metadata.get("labels", [])),
        "source_job": str(metadata.get("source_job", "")),
        "created_at": str(metadata.get("created_at", "")),
        "reason": entry.reason,
        "manifest_uri": entry.manifest_uri,  # s3://<bucket>/manifests/<version>.json: well under 256
        "manifest_sha256": entry.manifest_sha256,
        "run_id": entry.run_id,  # a rerun's (chalicelib/pipeline/records.py model_version); none for a version's first run
        "per_class": per_class_line(metrics),
    }
    return {k: v[:256] for k, v in values.items() if v}


def per_class_line(metrics: dict[str, Any]) -> str:
    """Each class's test precision, recall, F1 and support on one line ("daisy p0.950 r0.930 f0.940 n30; ..."); the
    full figures are in metadata.json (ModelMetrics)."""
    per_class = (metrics.get("test") or {}).get("per_class") or {}
    if not isinstance(per_class, dict):
        return ""
    return "; ".join(f"{label} p{v.get('precision', 0):.3f} r{v.get('recall', 0):.3f} f{v.get('f1', 0):.3f} n{v.get('support', 0)}"
                     for label, v in per_class.items() if isinstance(v, dict))


def _entry(summary: ModelPackageSummaryTypeDef | DescribeModelPackageOutputTypeDef,
           props: dict[str, str] | None = None) -> ModelEntry:
    props = props or {}
    description = summary.get("ModelPackageDescription", "")
    version = props.get("version") or (description[len(_DESCRIPTION):] if description.startswith(_DESCRIPTION) else "")
    accuracy = props.get("test_accuracy")
    approval = summary.get("ApprovalDescription")  # a described package has it, a listed summary not
    return ModelEntry(
        version=version,
        status=_FROM_AWS.get(summary.get("ModelApprovalStatus", ""), PENDING),
        created_at=epoch(summary.get("CreationTime")),
        package_arn=summary.get("ModelPackageArn", ""),
        package_version=int(summary.get("ModelPackageVersion") or 0),
        model_uri=props.get("model_uri", ""),
        labels_uri=props.get("labels_uri", ""),
        metadata_uri=props.get("metadata_uri", ""),
        sha256=props.get("sha256", ""),
        size_bytes=int(props.get("size_bytes") or 0),
        test_accuracy=float(accuracy) if accuracy else None,
        dataset_version=props.get("dataset_version", ""),
        reason=approval if isinstance(approval, str) and approval else props.get("reason", ""),
        manifest_uri=props.get("manifest_uri", ""),
        manifest_sha256=props.get("manifest_sha256", ""),
        run_id=props.get("run_id", ""),
    )


class SageMakerModelRegistry:
    def __init__(self, client: SageMakerClient, group: str, image_uri: str = ""):
        self._sm = client
        self._group = group
        self._image = image_uri
        self._group_checked = False

    def ensure_group(self) -> None:
        if self._group_checked:
            return
        try:
            self._sm.describe_model_package_group(ModelPackageGroupName=self._group)
        except ClientError:
            try:
                self._sm.create_model_package_group(ModelPackageGroupName=self._group,
                                                    ModelPackageGroupDescription="flower classifiers (TFLite)")
            except ClientError as error:
                if error.response["Error"]["Code"] not in ("ResourceInUse", "ValidationException"):
                    raise
        self._group_checked = True

    def _summaries(self, status: ModelApprovalStatusType | None = None,
                   limit: int = 1000) -> Iterator[ModelPackageSummaryTypeDef]:
        kwargs: ListModelPackagesInputTypeDef = {"ModelPackageGroupName": self._group, "SortBy": "CreationTime",
                                                 "SortOrder": "Descending", "MaxResults": min(100, limit)}
        if status:
            kwargs["ModelApprovalStatus"] = status
        found = 0
        while True:
            try:
                page = self._sm.list_model_packages(**kwargs)
            except ClientError as error:
                if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
                    return  # no group yet: no models
                raise
            for summary in page.get("ModelPackageSummaryList", []):
                yield summary
                found += 1
                if found >= limit:
                    return
            if not page.get("NextToken"):
                return
            kwargs["NextToken"] = page["NextToken"]

    def _describe(self, arn: str) -> ModelEntry:
        package = self._sm.describe_model_package(ModelPackageName=arn)
        return _entry(package, package.get("CustomerMetadataProperties") or {})

    def find(self, version: str) -> ModelEntry | None:
        for summary in self._summaries():
            if summary.get("ModelPackageDescription") == _DESCRIPTION + version:
                return self._describe(summary["ModelPackageArn"])
        return None

    def list(self, limit: int = 50) -> list[ModelEntry]:
        return [e for e in (_entry(s) for s in self._summaries(limit=limit)) if e.version]

    def approved(self, limit: int = 2) -> builtins.list[ModelEntry]:  # `list` here is the method above
        return [self._describe(s["ModelPackageArn"]) for s in self._summaries(_TO_AWS[APPROVED], limit)]

    def production(self) -> ModelEntry | None:
        newest = next(iter(self._summaries(_TO_AWS[APPROVED], 1)), None)
        return self._describe(newest["ModelPackageArn"]) if newest else None

    def production_id(self) -> str:
        """One cheap call: lets a prediction container see that nothing changed."""
        newest = next(iter(self._summaries(_TO_AWS[APPROVED], 1)), None)
        return newest["ModelPackageArn"] if newest else ""

    def describe(self, arn: str) -> ModelEntry:
        return self._describe(arn)

    def register(self, entry: ModelEntry, metadata: dict[str, Any]) -> ModelEntry:
        existing = self.find(entry.version)
        if existing is not None:
            return existing
        self.ensure_group()
        request: CreateModelPackageInputTypeDef = {
            "ModelPackageGroupName": self._group,
            "ModelPackageDescription": _DESCRIPTION + entry.version,
            "ModelApprovalStatus": _TO_AWS[PENDING],
            "CustomerMetadataProperties": properties(entry, metadata),
            "ModelMetrics": {"ModelQuality": {"Statistics": {"ContentType": "application/json", "S3Uri": entry.metadata_uri}}},
            # SageMaker's own idempotency: a replayed registration returns the same package.
            "ClientToken": client_token(self._group, entry.version),
            "Tags": [{"Key": "dataset_version", "Value": entry.dataset_version}],
        }
        if self._image:
            request["InferenceSpecification"] = {
                "Containers": [{"Image": self._image, "ModelDataUrl": entry.model_uri}],
                "SupportedContentTypes": ["image/jpeg", "image/png", "image/webp", "image/bmp"],
                "SupportedResponseMIMETypes": ["application/json"],
            }
        arn = self._sm.create_model_package(**request)["ModelPackageArn"]
        return self._describe(arn)

    def set_status(self, version: str, status: str, reason: str) -> ModelEntry:
        entry = self.find(version)
        if entry is None:
            raise KeyError(version)
        package = self._sm.describe_model_package(ModelPackageName=entry.package_arn)
        props = dict(package.get("CustomerMetadataProperties") or {})
        props["reason"] = reason[:256]
        # Pass every property back: UpdateModelPackage merges them, some emulators replace them.
        self._sm.update_model_package(ModelPackageArn=entry.package_arn, ModelApprovalStatus=_TO_AWS[status],
                                      ApprovalDescription=reason[:1000], CustomerMetadataProperties=props)
        return self._describe(entry.package_arn)



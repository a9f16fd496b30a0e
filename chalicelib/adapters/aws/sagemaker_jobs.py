"""JobRunner on SageMaker: training jobs, and conversion as a Processing job on the same image.

Conversion needs TensorFlow, which the zip Lambdas must never ship; a Processing job runs
the training image's `convert` entrypoint on a CPU instance, reads the training job's
model.tar.gz and the data set, and writes model.tflite, labels.txt and metadata.json to
s3://ARTIFACT_BUCKET/models/<version>/. The request builders are pure (unit-tested).

Both jobs decode photos anyone who can upload chose, so both run network-isolated: the container
makes no network call and gets no credentials; SageMaker itself fetches the inputs and uploads the
outputs these requests name, under each job's own role (infra/flowers_infra/stack.py). The feature
cache's new entries therefore leave the training job in its model.tar.gz and reach features/ through
the conversion job's `features` output (chalicelib/contract/feature_cache.py).
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Callable, Literal, TypeVar, cast

from botocore.exceptions import ClientError

from chalicelib.contract import feature_cache as features
from chalicelib.contract import training_job as contract
from chalicelib.ports import JobRejected
from chalicelib.pipeline.records import ConversionSpec, JobStatus, TrainingSpec
from chalicelib.contract.vocabulary import Channel, ContainerPath
from chalicelib.contract.warm_start import START_FROM_ENV

if TYPE_CHECKING:
    from mypy_boto3_sagemaker import SageMakerClient
    from mypy_boto3_sagemaker.literals import ProcessingInstanceTypeType, TrainingInstanceTypeType
    from mypy_boto3_sagemaker.type_defs import (
        ChannelTypeDef,
        CreateProcessingJobRequestTypeDef,
        CreateTrainingJobRequestTypeDef,
        MetricDefinitionTypeDef,
        ProcessingInputTypeDef,
        ProcessingOutputTypeDef,
        StoppingConditionTypeDef,
        TagTypeDef,
    )

_Description = TypeVar("_Description")

SPOT_WAIT_FACTOR = 2  # MaxWaitTimeInSeconds (queueing for spot capacity included) = 2 x MaxRuntime
_FOR_GOOD = ("ValidationException", "ResourceLimitExceeded", "AccessDeniedException", "ResourceNotFound")


def _tags(tags: dict[str, str]) -> list[TagTypeDef]:
    return [{"Key": k, "Value": v} for k, v in sorted(tags.items())]


def _metric_definitions(definitions: list[dict[str, str]]) -> list[MetricDefinitionTypeDef]:
    return [{"Name": d["Name"], "Regex": d["Regex"]} for d in definitions]


# Instance types stay free text (Settings checks the ml.<family>.<size> shape, SageMaker the name, and a
# name it refuses raises JobRejected): the stubs' Literal lists only the types known when they were
# generated, so a newer type must pass through, not be refused here.
def _training_instance(name: str) -> TrainingInstanceTypeType:
    return cast("TrainingInstanceTypeType", name)


def _processing_instance(name: str) -> ProcessingInstanceTypeType:
    return cast("ProcessingInstanceTypeType", name)


def _data_source(manifest_uri: str, prefix_uri: str) -> tuple[Literal["ManifestFile", "S3Prefix"], str]:
    """The run's manifest when it has one (exactly the listed keys), else the live prefix."""
    return ("ManifestFile", manifest_uri) if manifest_uri else ("S3Prefix", prefix_uri)


def _channel(name: str, uri: str, data_type: Literal["ManifestFile", "S3Prefix"] = "S3Prefix",
             mode: Literal["File", "FastFile"] = "File") -> ChannelTypeDef:
    """An input channel of the training job: every instance gets all of `uri`."""
    return {"ChannelName": name,
            "DataSource": {"S3DataSource": {"S3DataType": data_type, "S3Uri": uri, "S3DataDistributionType": "FullyReplicated"}},
            "InputMode": mode}


def training_request(spec: TrainingSpec) -> CreateTrainingJobRequestTypeDef:
    stopping: StoppingConditionTypeDef = {"MaxRuntimeInSeconds": spec.max_runtime_seconds}
    data_type, data_uri = _data_source(spec.channel_manifest_uri, spec.dataset_uri)
    channels = [_channel(Channel.TRAINING, data_uri, data_type)]
    request: CreateTrainingJobRequestTypeDef = {
        "TrainingJobName": spec.job_name,
        "AlgorithmSpecification": {
            "TrainingImage": spec.image_uri,
            "TrainingInputMode": "File",
            "MetricDefinitions": _metric_definitions(spec.metric_definitions),
        },
        "RoleArn": spec.role_arn,
        "HyperParameters": spec.hyperparameters,
        "InputDataConfig": channels,
        "OutputDataConfig": {"S3OutputPath": spec.output_uri},
        "ResourceConfig": {"InstanceType": _training_instance(spec.instance_type), "InstanceCount": 1, "VolumeSizeInGB": 30},
        "StoppingCondition": stopping,
        "TensorBoardOutputConfig": {"S3OutputPath": spec.tensorboard_uri, "LocalPath": ContainerPath.TENSORBOARD_DIR},
        # No network inside the container (untrusted photos are decoded there); the pipeline's role may only
        # start jobs that ask for it (infra/flowers_infra/chalice_app.py, StartTraining).
        "EnableNetworkIsolation": True,
        "Tags": _tags(spec.tags),
    }
    environment: dict[str, str] = {}
    if spec.manifest_uri:  # training writes them into metadata.json
        environment.update({contract.MANIFEST_URI_ENV: spec.manifest_uri, contract.MANIFEST_SHA256_ENV: spec.manifest_sha256})
    if spec.start_from:  # where the run starts from and why (chalicelib/contract/warm_start.py); metadata.json keeps it
        environment[START_FROM_ENV] = spec.start_from
    if spec.warm_start_uri:
        # A warm start: the production model's training output (its model.tar.gz), ContainerVariable.CHANNEL_PRODUCTION in the job.
        channels.append(_channel(Channel.PRODUCTION, spec.warm_start_uri))
    if spec.feature_cache_uri:
        # Backbone features of photos seen before (chalicelib/contract/feature_cache.py): read from the channel, new
        # ones written into the model folder, so they leave in model.tar.gz (conversion hands them on to features/).
        environment.update({features.FOLDER_ENV: ContainerPath.CHANNEL_FEATURES,
                            features.NEW_ENV: f"{ContainerPath.MODEL_DIR}/{features.NEW_FOLDER}"})
        if spec.feature_cache_ready:
            # FastFile: an entry is fetched when the job looks it up, so a job downloads its own backbone's
            # entries only, not every entry the prefix holds (File mode would copy them all first).
            channels.append(_channel(Channel.FEATURES, spec.feature_cache_uri, mode="FastFile"))
    if environment:
        request["Environment"] = environment
    if spec.use_spot:
        request["EnableManagedSpotTraining"] = True
        stopping["MaxWaitTimeInSeconds"] = spec.max_runtime_seconds * SPOT_WAIT_FACTOR
        request["CheckpointConfig"] = {"S3Uri": spec.checkpoint_uri, "LocalPath": ContainerPath.CHECKPOINT_DIR}
    return request


def conversion_request(spec: ConversionSpec) -> CreateProcessingJobRequestTypeDef:
    entrypoint = ["convert", ContainerPath.PROCESSING_MODEL_DIR, ContainerPath.PROCESSING_OUTPUT_DIR,
                  "--data", ContainerPath.PROCESSING_DATA_DIR]
    data_type, data_uri = _data_source(spec.channel_manifest_uri, spec.dataset_uri)
    inputs: list[ProcessingInputTypeDef] = [
        {"InputName": "model", "S3Input": {"S3Uri": spec.model_archive_uri, "LocalPath": ContainerPath.PROCESSING_MODEL_DIR,
                                           "S3DataType": "S3Prefix", "S3InputMode": "File"}},
        {"InputName": "data", "S3Input": {"S3Uri": data_uri, "LocalPath": ContainerPath.PROCESSING_DATA_DIR,
                                          "S3DataType": data_type, "S3InputMode": "File"}},
    ]
    if spec.baseline_uri:
        # The production model, scored on the same test photos so the promotion gate compares like with like.
        entrypoint += ["--baseline", ContainerPath.PROCESSING_BASELINE_DIR]
        inputs.append({"InputName": "baseline", "S3Input": {"S3Uri": spec.baseline_uri, "LocalPath": ContainerPath.PROCESSING_BASELINE_DIR,
                                                            "S3DataType": "S3Prefix", "S3InputMode": "File"}})
    # Its own version's folder only: the role may write model files under any version (a static role cannot name
    # this run's), so this URI, set here by the pipeline, is what keeps a conversion to its own models/<version>/.
    outputs: list[ProcessingOutputTypeDef] = [{
        "OutputName": "model",
        "S3Output": {"S3Uri": spec.output_uri, "LocalPath": ContainerPath.PROCESSING_OUTPUT_DIR, "S3UploadMode": "EndOfJob"},
    }]
    if spec.feature_cache_uri:
        # The feature cache's new entries, from the training job's model folder (training/feature_cache.py hand_on).
        entrypoint += ["--features-out", ContainerPath.PROCESSING_FEATURES_DIR]
        outputs.append({"OutputName": "features", "S3Output": {
            "S3Uri": spec.feature_cache_uri, "LocalPath": ContainerPath.PROCESSING_FEATURES_DIR, "S3UploadMode": "EndOfJob"}})
    return {
        "ProcessingJobName": spec.job_name,
        "RoleArn": spec.role_arn,
        "AppSpecification": {"ImageUri": spec.image_uri, "ContainerEntrypoint": entrypoint},
        "ProcessingInputs": inputs,
        "ProcessingOutputConfig": {"Outputs": outputs},
        "ProcessingResources": {"ClusterConfig": {"InstanceCount": 1, "InstanceType": _processing_instance(spec.instance_type),
                                                  "VolumeSizeInGB": 30}},
        "StoppingCondition": {"MaxRuntimeInSeconds": spec.max_runtime_seconds},
        "NetworkConfig": {"EnableNetworkIsolation": True},  # as training: no network inside the container
        "Tags": _tags(spec.tags),
    }


def _already_exists(error: ClientError) -> bool:
    code = error.response["Error"]["Code"]
    message = error.response["Error"].get("Message", "").lower()
    return code == "ResourceInUse" or (code == "ValidationException" and ("already exists" in message or "must be unique" in message))


class SageMakerJobRunner:
    def __init__(self, client: SageMakerClient):
        self._sm = client

    def _start(self, call: Callable[[], object]) -> bool:
        try:
            call()
            return True
        except ClientError as error:
            if _already_exists(error):
                return False
            if error.response["Error"]["Code"] in _FOR_GOOD:
                raise JobRejected(error.response["Error"].get("Message", str(error))) from error
            raise

    def start_training(self, spec: TrainingSpec) -> bool:
        request = training_request(spec)
        return self._start(lambda: self._sm.create_training_job(**request))

    def start_conversion(self, spec: ConversionSpec) -> bool:
        request = conversion_request(spec)
        return self._start(lambda: self._sm.create_processing_job(**request))

    @staticmethod
    def _describe(call: Callable[[], _Description]) -> _Description | None:
        """A job's description, or None when SageMaker knows no job of that name."""
        try:
            return call()
        except ClientError as error:
            if error.response["Error"]["Code"] in ("ValidationException", "ResourceNotFound"):
                return None
            raise

    def training_status(self, name: str) -> JobStatus | None:
        job = self._describe(lambda: self._sm.describe_training_job(TrainingJobName=name))
        if job is None:
            return None
        return JobStatus(name, job.get("TrainingJobStatus", ""), job.get("FailureReason", ""),
                         job.get("ModelArtifacts", {}).get("S3ModelArtifacts", ""))

    def conversion_status(self, name: str) -> JobStatus | None:
        job = self._describe(lambda: self._sm.describe_processing_job(ProcessingJobName=name))
        if job is None:
            return None
        return JobStatus(name, job.get("ProcessingJobStatus", ""), job.get("FailureReason", "") or job.get("ExitMessage", ""))

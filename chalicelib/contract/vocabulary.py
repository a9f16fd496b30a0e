"""The words the pipeline, training, the CLI, the web page and infra share, each defined once.

String enums (StrEnum): a member *is* its string (it compares equal to it, hashes as it, and
json.dumps writes it as it), so what is stored (SQLite, DynamoDB, metadata.json) and what the
API answers stay plain strings, and a word read back from storage compares equal to its member.
`.value` gives the plain `str` where a caller must not see the enum (its repr, argparse's
messages). Standard library only: the training image imports this module too.
"""
from __future__ import annotations

from enum import StrEnum


# Deployment ----------------------------------------------------------------------------------
class Mode(StrEnum):
    """Where the pipeline runs (FLOWERS_MODE)."""

    AWS = "aws"  # the Lambdas, SageMaker, S3, DynamoDB
    LOCAL = "local"  # `flowers up`: folders, subprocesses, SQLite


class WatchMode(StrEnum):
    """How `flowers up` notices changes in the bucket folder (FLOWERS_WATCH; chalicelib/local_stack/watcher.py)."""

    NOTIFY = "notify"  # file-system notifications, and a full rescan every minute or more
    POLL = "poll"  # a full rescan every 0.5 s: a folder on a network file system, where other machines' writes notify nothing


# Runs ----------------------------------------------------------------------------------------
class Stage(StrEnum):
    """A run's stage while it holds the data set (at most one run at a time)."""

    LAUNCHING = "launching"
    TRAINING = "training"
    CONVERTING = "converting"
    # A job failed for a transient reason and the run waits to try again (Running.retry_at, retry_stage).
    WAITING = "waiting"


class RunOutcome(StrEnum):
    """How a run ended, once it has let go of the data set."""

    REGISTERED = "registered"
    FAILED = "failed"
    SKIPPED = "skipped"


class Action(StrEnum):
    """What a step of the pipeline did or decided: the `action` of the tick's, the SageMaker events' and POST /runs'
    answers (chalicelib/pipeline/run_result.py), of GET /status's next_run, and of a batch classification's answer.
    The CLI and the web page read these words."""

    # The debounce's decision (chalicelib/pipeline/debounce.py): GET /status's next_run, the tick's answer when no
    # run starts.
    START = "start"
    WAIT = "wait"
    IDLE = "idle"
    BUSY = "busy"  # a run holds the data set (or another tick took the step)
    # The run state machine's steps (chalicelib/pipeline/orchestrator.py).
    HEALED = "healed"  # uploads whose notification was lost found by listing: a run follows
    STARTED = "started"  # a training job started
    CONVERTING = Stage.CONVERTING.value  # the conversion job started: the run is converting
    RETRYING = "retrying"  # a job failed for a transient reason: the run tries again later
    NOTED = "noted"  # an event that moves nothing (a job still in progress, a failure already waited on)
    DEFERRED = "deferred"  # the Lambda's time ran short before the step (chalicelib/pipeline/deadline.py): done next time
    IGNORED = "ignored"  # an event for a job that does not hold the data set, or not one of ours
    # A run ended: its outcome is the action.
    REGISTERED = RunOutcome.REGISTERED.value
    FAILED = RunOutcome.FAILED.value  # also: a batch classification failed, the batch goes back to the queue
    SKIPPED = RunOutcome.SKIPPED.value
    # A batch classification (chalicelib/pipeline/batch_classify.py).
    NONE = "none"  # no photo under classify/ in the delivery
    DONE_BEFORE = "done_before"  # a redelivered batch: its output is there already
    CLASSIFIED = "classified"


class ModelStatus(StrEnum):
    """A model version's status as the API shows it; the registry's ModelApprovalStatus maps onto it."""

    APPROVED = "approved"
    PENDING = "pending"
    REJECTED = "rejected"


class Command(StrEnum):
    """An operator's action (chalicelib/pipeline/actors.py records who did it): the operator routes and the
    `flowers` commands of the same names."""

    RUN = "run"  # POST /runs, flowers retrain: a run started by hand
    APPROVE = "approve"
    REJECT = "reject"
    ROLLBACK = "rollback"


class ActorKind(StrEnum):
    """Whose word an operator action's caller is (chalicelib/pipeline/actors.py)."""

    IAM = "iam"  # the cloud: the IAM principal that signed the request (API Gateway's IAM authorizer checked it)
    LOCAL = "local"  # local mode, which has no login: the user the server (or the CLI answering in-process) runs as


class Via(StrEnum):
    """How an operator action came in."""

    CLI = "cli"  # a `flowers` command (its User-Agent says so: CLI_USER_AGENT)
    HTTP = "http"  # anything else: curl, a script, the web page


class DecidedBy(StrEnum):
    """Who set a model version's status last, as GET /models says it (chalicelib/pipeline/model_rows.py): a fact the
    read model takes from the records, so the key callers' reason needs no operator's words."""

    OPERATOR = "operator"  # approve, reject, rollback (the run record keeps the action)
    GATE = "gate"  # the promotion gate at registration (the registry's reason is still the one it wrote)


CLI_USER_AGENT = "flowers-cli"  # the User-Agent the `flowers` CLI sends (flowers_cli/client.py)


class Access(StrEnum):
    """Who may call an HTTP route in the cloud (chalicelib/api/access.py decides it route by route; API Gateway
    enforces it: the API key, or the IAM authorizer and the callers' IAM policies)."""

    PUBLIC = "public"  # anyone: the web page and the OpenAPI document
    API_KEY = "api_key"  # a client's API key (x-api-key): scripts, the web page
    APP = "app"  # SigV4 with an app's short-lived credentials (the Cognito identity pool's guest role), or an operator's
    OPERATOR = "operator"  # SigV4 with an operator's IAM credentials: model actions, runs, lineage, file paths, jobs


class StartKind(StrEnum):
    """Where a run's weights come from (chalicelib/contract/warm_start.py)."""

    PRODUCTION = "production"  # a warm start from the served model
    IMAGENET = "imagenet"  # a full run
    # training only (metadata.json): a warm start from the folder the `warm_start` hyperparameter names
    HYPERPARAMETER = "warm_start"


class JobState(StrEnum):
    """A job's status in SageMaker's words (TrainingJobStatus, ProcessingJobStatus); local jobs use the same."""

    IN_PROGRESS = "InProgress"
    STOPPING = "Stopping"
    COMPLETED = "Completed"
    FAILED = "Failed"
    STOPPED = "Stopped"


# Events --------------------------------------------------------------------------------------
class EventSource(StrEnum):
    """EventBridge's `source` of the events the pipeline sends and receives."""

    FLOWERS = "flowers"  # the pipeline's own domain events
    SAGEMAKER = "aws.sagemaker"


class DomainEventType(StrEnum):
    """The pipeline's own events (chalicelib/pipeline/domain_events.py): EventBridge's detail-type."""

    RUN_STARTED = "Run Started"  # a training job of a run was started (each attempt is one event)
    RUN_FAILED = "Run Failed"  # a run ended without a model, with the reason (and its failed attempts)
    # a run's model is in the registry, with the promotion gate's decision (`status`: approved or pending, and why)
    MODEL_REGISTERED = "Model Registered"
    MODEL_PROMOTED = "Model Promoted"  # the served model changed to a newer one (the gate approved it, or a person did)
    MODEL_ROLLED_BACK = "Model Rolled Back"  # the served model was rejected and an earlier one serves again


class SageMakerDetailType(StrEnum):
    """The detail-types of SageMaker's job state-change events that move a run along."""

    TRAINING_JOB_STATE_CHANGE = "SageMaker Training Job State Change"
    PROCESSING_JOB_STATE_CHANGE = "SageMaker Processing Job State Change"


# Training and conversion -----------------------------------------------------------------------
class Quantization(StrEnum):
    """training.convert's --quantize: AUTO picks the smallest candidate that keeps the float model's accuracy."""

    AUTO = "auto"
    FP32 = "fp32"
    FP16 = "fp16"
    DYNAMIC = "dynamic"
    INT8 = "int8"


class Channel(StrEnum):
    """The training job's input channels (SageMaker's ChannelName)."""

    TRAINING = "training"  # the data set (the run's manifest)
    PRODUCTION = "production"  # a warm start: the production model's training output
    FEATURES = "features"  # the feature cache (chalicelib/contract/feature_cache.py)


def _channel_variable(channel: Channel) -> str:
    return f"SM_CHANNEL_{channel.value.upper()}"


_ML = "/opt/ml"


def _channel_path(channel: Channel) -> str:
    return f"{_ML}/input/data/{channel.value}"


class ContainerVariable(StrEnum):
    """The `SM_*` variables SageMaker sets in a training container; local jobs set them to folders of their own."""

    INPUT_CONFIG_DIR = "SM_INPUT_CONFIG_DIR"
    MODEL_DIR = "SM_MODEL_DIR"
    OUTPUT_DIR = "SM_OUTPUT_DIR"
    OUTPUT_DATA_DIR = "SM_OUTPUT_DATA_DIR"
    CHECKPOINT_DIR = "SM_CHECKPOINT_DIR"
    HOSTS = "SM_HOSTS"
    CURRENT_HOST = "SM_CURRENT_HOST"
    CHANNEL_TRAINING = _channel_variable(Channel.TRAINING)
    CHANNEL_PRODUCTION = _channel_variable(Channel.PRODUCTION)
    CHANNEL_FEATURES = _channel_variable(Channel.FEATURES)


class ContainerPath(StrEnum):
    """Where SageMaker puts things inside the container: the defaults of the ContainerVariable of the same name,
    and the local paths the job requests name (checkpoints, TensorBoard, the Processing job's inputs and output)."""

    INPUT_CONFIG_DIR = f"{_ML}/input/config"
    MODEL_DIR = f"{_ML}/model"
    OUTPUT_DIR = f"{_ML}/output"
    CHECKPOINT_DIR = f"{_ML}/checkpoints"
    TENSORBOARD_DIR = f"{_ML}/output/tensorboard"
    CHANNEL_TRAINING = _channel_path(Channel.TRAINING)
    CHANNEL_FEATURES = _channel_path(Channel.FEATURES)
    # The conversion step (a Processing job running the training image's `convert` entrypoint).
    PROCESSING_MODEL_DIR = f"{_ML}/processing/model"
    PROCESSING_OUTPUT_DIR = f"{_ML}/processing/output"
    PROCESSING_DATA_DIR = f"{_ML}/processing/data"
    PROCESSING_BASELINE_DIR = f"{_ML}/processing/baseline"
    PROCESSING_FEATURES_DIR = f"{_ML}/processing/features"  # the feature cache's new entries, uploaded to features/


def values(*members: StrEnum) -> list[str]:
    """Plain strings, in order: for documents and messages that must not show the enum (OpenAPI, argparse)."""
    return [member.value for member in members]

"""The Chalice app (app.py + chalicelib/) inside the stack, through Chalice's CDK construct.

`chalice package` runs at synth (it imports app.py and downloads the Lambda wheels of
requirements.txt, the hash-locked Lambda set, from PyPI; cached in .chalice/deployments/). Its SAM template is included
as is; what Chalice cannot express is added here, on the included resources:

- one IAM role per kind of handler, each with only the calls its code makes;
- function names fixed (from the stack name), so each log group (with retention) exists
  before its function;
- the upload function's SQS event source pointed at the stack's own queue (by ARN);
- memory, timeouts, a dead-letter queue for the asynchronous handlers;
- the API: an API key on every method except the web page (GET /) and the operator routes, which
  keep Chalice's IAM (SigV4) authorizer. The stack makes one key, the web page's (`<stack>-page`, its own
  usage plan); every other client gets one of its own with `flowers keys create` (chalicelib/api/client_keys.py);
  binary media types for images; JSON access logs; X-Ray tracing; stage throttling; a WAF web ACL on the
  stage (flowers_infra/waf.py);
- the API function's reserved concurrency (config.api_reserved_concurrency).
"""
from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, NamedTuple

from aws_cdk import Acknowledgment, Aws, CfnResource, Duration, Fn, RemovalPolicy, Stack, Validations
from aws_cdk import aws_apigateway as apigw
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sam as sam
from aws_cdk import aws_sqs as sqs
from chalice.cdk import Chalice
from constructs import Construct

from chalicelib import settings
from chalicelib.api import security_headers
from chalicelib.api import access
from chalicelib.contract.bucket_layout import (
    CLASSIFY_PREFIX,
    FEATURES_PREFIX,
    MANIFESTS_PREFIX,
    MODELS_PREFIX,
    OUTPUT_ARCHIVE,
    PREDICTIONS_PREFIX,
    TRAINING_PREFIX,
    training_job_key,
)
from chalicelib.contract.hyperparameters import FILE_NAME as HYPERPARAMETERS_FILE
from chalicelib.contract.vocabulary import Access, EventSource
from flowers_infra.checks import skip_checkov
from flowers_infra.config import FlowersConfig
from flowers_infra.constants import LOG_KMS_REASON, SQS_SSE_REASON
from flowers_infra.waf import ApiFirewall

API_STAGE = "api"
# API Gateway's own answers, by kind: DEFAULT_4XX and DEFAULT_5XX cover every specific one not set on its own
GATEWAY_RESPONSES = ("DEFAULT_4XX", "DEFAULT_5XX")
API_KEY_SCHEME = "api_key"
# Images reach the function as bytes only for these content types (chalicelib/api/predict_request.py).
IMAGE_MEDIA_TYPES = ("image/jpeg", "image/png", "image/webp", "image/bmp", "application/octet-stream")
# Who may call each route: chalicelib/api/access.py. Public without a key: the web page, which asks for the key and
# sends it as x-api-key, and the API's contract (OpenAPI), which clients and their generators read before they have one.
PUBLIC_METHODS = set(access.routes(Access.PUBLIC))
SIGNED_METHODS = set(access.routes(*access.SIGNED))  # Chalice's IAMAuthorizer: operators, and apps on /app/
# Where SageMaker puts each training job's $SM_OUTPUT_DATA_DIR (chalicelib/pipeline/validation_report.py reads it)
VALIDATION_ARCHIVES = training_job_key("*", OUTPUT_ARCHIVE)



class FunctionSpec(NamedTuple):
    suffix: str  # function name: <stack name>-<suffix>
    role: str  # one IAM role per kind of handler (ChaliceApp._roles)
    memory: int  # MB
    timeout: int  # seconds
    asynchronous: bool  # invoked asynchronously: gets the events dead-letter queue


API_FUNCTION = "APIHandler"  # the one whose concurrency is reserved (config.api_reserved_concurrency)
# Chalice's logical ids -> what the stack sets on each function
FUNCTIONS = {
    "APIHandler": FunctionSpec("api", "api", 2048, 29, False),  # 29 s: API Gateway's integration limit
    # Invoked by the SQS event source; 1024 MB and 120 s: it also classifies photos under classify/ with the served model.
    "OnUpload": FunctionSpec("on-upload", "upload", 1024, 120, False),
    "Tick": FunctionSpec("tick", "pipeline", 512, 120, True),  # EventBridge schedule
    "OnSagemakerJob": FunctionSpec("on-sagemaker-job", "pipeline", 512, 120, True),  # EventBridge rule
}


@dataclass(frozen=True)
class ChaliceAppProps:
    """What the app needs from the rest of the stack: its resources, their names and ARNs."""
    config: FlowersConfig
    log_retention: logs.RetentionDays
    dataset_bucket: s3.IBucket
    dataset_bucket_arn: str  # known before the bucket exists (its name is fixed)
    artifact_bucket: s3.IBucket
    table: dynamodb.ITable
    uploads: sqs.IQueue  # the dataset bucket's events: the upload function reads this queue
    training_image_uri: str
    training_role: iam.IRole  # the training jobs' execution role (infra/flowers_infra/stack.py)
    conversion_role: iam.IRole  # the conversion (Processing) jobs'
    model_group_arn: str
    model_packages_arn: str
    training_jobs_arn: str  # our jobs only
    processing_jobs_arn: str
    event_bus_name: str  # the domain events' bus (chalicelib/pipeline/domain_events.py)
    event_bus_arn: str
    # The API's access logs: who called what (issue 27, item 7), kept at least a year (config.access_log_retention_days).
    access_log_retention: logs.RetentionDays = logs.RetentionDays.ONE_YEAR


class ChaliceApp(Construct):
    def __init__(self, scope: Construct, construct_id: str, *, source_dir: Path, props: ChaliceAppProps) -> None:
        super().__init__(scope, construct_id)
        self.props = props
        stack = Stack.of(self)
        self.stack_name = stack.stack_name
        config = props.config
        retention = props.log_retention
        self.function_names = {lid: f"{self.stack_name}-{spec.suffix}" for lid, spec in FUNCTIONS.items()}

        self.events_dlq = sqs.Queue(
            self, "EventsDeadLetters", queue_name=f"{self.stack_name}-events-dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=Duration.days(14))
        skip_checkov(self.events_dlq, {"CKV_AWS_27": SQS_SSE_REASON})
        self.log_groups = {
            lid: logs.LogGroup(self, f"{lid}Logs", log_group_name=f"/aws/lambda/{name}", retention=retention,
                               removal_policy=RemovalPolicy.DESTROY)
            for lid, name in self.function_names.items()}
        self.roles = self._roles()

        environment = dict(config.lambda_environment())
        environment.update(settings.environment({
            "dataset_bucket": props.dataset_bucket.bucket_name,
            "artifact_bucket": props.artifact_bucket.bucket_name,
            "state_table": props.table.table_name,
            "training_image_uri": props.training_image_uri,
            "sagemaker_role_arn": props.training_role.role_arn,
            "conversion_role_arn": props.conversion_role.role_arn,
            "event_bus_name": props.event_bus_name,
        }))
        self.environment = environment
        stage_config = {
            "api_gateway_stage": API_STAGE,
            "manage_iam_role": False,
            # Every function gets its own role below; this one is only Chalice's required default.
            "iam_role_arn": self.roles["api"].role_arn,
            "environment_variables": environment,
            "lambda_timeout": 60,
            "lambda_memory_size": 256,
        }
        with _packaging():
            # Chalice names its stage after the construct's scope: the stack (e.g. "flowers").
            self.chalice = Chalice(stack, "Chalice", source_dir=str(source_dir), stage_config=stage_config)

        self._functions()
        self._api(config)

    # IAM -------------------------------------------------------------------------------------
    def _roles(self) -> dict[str, iam.Role]:
        props = self.props
        table = props.table.table_arn
        models = props.artifact_bucket.arn_for_objects(f"{MODELS_PREFIX}*")
        manifests = props.artifact_bucket.arn_for_objects(f"{MANIFESTS_PREFIX}*")
        # Listing the prefix makes a missing manifest a 404 (HeadObject), not a 403.
        find_manifests = iam.PolicyStatement(sid="FindManifests", actions=["s3:ListBucket"],
                                             resources=[props.artifact_bucket.bucket_arn],
                                             conditions={"StringLike": {"s3:prefix": [f"{MANIFESTS_PREFIX}*"]}})
        jobs = [props.training_jobs_arn, props.processing_jobs_arn]
        read_registry = [
            iam.PolicyStatement(sid="ReadRegistry", actions=["sagemaker:DescribeModelPackage"],
                                resources=[props.model_packages_arn]),
            # ListModelPackages supports no resource-level permission: it can only be granted on "*".
            iam.PolicyStatement(sid="ListRegistry", actions=["sagemaker:ListModelPackages"], resources=["*"]),
        ]
        set_status = iam.PolicyStatement(sid="SetModelStatus", actions=["sagemaker:UpdateModelPackage"],
                                         resources=[props.model_packages_arn])
        # Domain events (runs started / failed, models registered / promoted / rolled back): the stack's bus, source flowers.
        publish = iam.PolicyStatement(sid="PublishDomainEvents", actions=["events:PutEvents"], resources=[props.event_bus_arn],
                                      conditions={"StringEquals": {"events:source": EventSource.FLOWERS.value}})
        # Starting a run: the tick, and POST /runs by hand (the API function runs the same launch, chalicelib/pipeline/
        # orchestrator.py): claim it in the state table, list the data set, read training.json, write the run's manifest,
        # check what a warm start and the feature cache need, start the training job with the SageMaker role.
        launch = [
            # Query: a version's run records ("run#<version>", and a rerun's "run#<version>#<run id>": chalicelib/adapters/aws/
            # dynamodb_state.py StateStore.run), and GET /status and /models' run history.
            iam.PolicyStatement(sid="RunState", resources=[table], actions=[
                "dynamodb:GetItem", "dynamodb:Query", "dynamodb:PutItem", "dynamodb:UpdateItem"]),
            # ListObjectVersions: the current objects with their version ids, for the run's manifest.
            iam.PolicyStatement(sid="ListDataset", actions=["s3:ListBucket", "s3:ListBucketVersions"],
                                resources=[props.dataset_bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [
                                    props.config.dataset_prefix, f"{props.config.dataset_prefix}*"]}}),
            # Cloud hyperparameters: training.json beside the data set (chalicelib/pipeline/job_specs.py), found by
            # listing its key (ListDataset) and read. That one key only: the pipeline never reads the photos.
            iam.PolicyStatement(sid="ReadHyperparameters", actions=["s3:GetObject"], resources=[
                f"{props.dataset_bucket_arn}/{props.config.dataset_prefix}{HYPERPARAMETERS_FILE}"]),
            # The launch writes the run's manifest once (chalicelib/pipeline/manifest.py: PutObject with If-None-Match, which
            # the artifact bucket's policy requires of manifests/ writes) and locks it as it is written (chalicelib/pipeline/
            # lineage.py: Object Lock headers on a PutObject need s3:PutObjectRetention too), governance mode.
            iam.PolicyStatement(sid="WriteManifests", actions=["s3:GetObject", "s3:PutObject"], resources=[manifests]),
            iam.PolicyStatement(sid="LockManifests", actions=["s3:PutObjectRetention"], resources=[manifests]),
            find_manifests,
            # A warm start reads the production model's metadata.json (chalicelib/pipeline/job_specs.py), found by listing its
            # key. The same grants let the API serve models (predictions, downloads) and the pipeline read what a conversion
            # wrote (registration, the relabel gate's comparison with production's labels).
            iam.PolicyStatement(sid="ReadModels", actions=["s3:GetObject"], resources=[models]),
            iam.PolicyStatement(sid="FindModels", actions=["s3:ListBucket"], resources=[props.artifact_bucket.bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [f"{MODELS_PREFIX}*"]}}),
            # Incremental runs (chalicelib/contract/warm_start.py, chalicelib/contract/feature_cache.py): is the production
            # model's training output still there, does the feature cache hold entries yet (both found by listing the key).
            iam.PolicyStatement(sid="FindWarmStartAndFeatures", actions=["s3:ListBucket"],
                                resources=[props.artifact_bucket.bucket_arn],
                                conditions={"StringLike": {"s3:prefix": [f"{TRAINING_PREFIX}*", f"{FEATURES_PREFIX}*"]}}),
            # Only network-isolated jobs (chalicelib/adapters/aws/sagemaker_jobs.py): they decode uploaded photos.
            iam.PolicyStatement(sid="StartTraining", actions=["sagemaker:CreateTrainingJob"],
                                resources=[props.training_jobs_arn],
                                conditions={"ForAllValues:StringEquals": {
                                    "sagemaker:InstanceTypes": [props.config.training_instance_type]},
                                    "Bool": {"sagemaker:NetworkIsolation": "true"}}),
            iam.PolicyStatement(sid="WatchJobs", actions=["sagemaker:DescribeTrainingJob", "sagemaker:DescribeProcessingJob"],
                                resources=jobs),
            iam.PolicyStatement(sid="TagOurJobs", actions=["sagemaker:AddTags"], resources=jobs),
            # The training job's own role (to SageMaker only); the conversion's is the pipeline's to pass (PassConversionRole).
            iam.PolicyStatement(sid="PassTrainingRole", actions=["iam:PassRole"],
                                resources=[props.training_role.role_arn],
                                conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
        ]
        documents = {
            # HTTP: predictions (registry + model files, presigned download links), status, models,
            # approve / reject / rollback by hand.
            # POST /runs: a run started by hand (launch, above).
            "api": [
                *[statement for statement in launch if statement.sid != "ReadHyperparameters"],  # ReadListedPhotos has it
                # (Approve / reject / rollback keep who did it on the model's run record, StateStore.note_action: an
                # UpdateItem appending to its `actions`, on condition the record exists; launch's RunState.)
                # GET /status: each training job's validation report, in the output.tar.gz SageMaker writes from
                # $SM_OUTPUT_DATA_DIR; found (a job without one yet) by listing its key (launch's FindWarmStartAndFeatures).
                iam.PolicyStatement(sid="ReadValidationReports", actions=["s3:GetObject"],
                                    resources=[props.artifact_bucket.arn_for_objects(VALIDATION_ARCHIVES)]),
                # GET /models/{version}/photos reads the run's manifest (launch's WriteManifests, FindManifests).
                # GET /status/label-issues/thumbnail: a photo the last run lists as likely mislabelled (chalicelib/api/web),
                # read from the data set (training.json too); listing its key (ListDataset) tells a photo gone since the
                # run (404) from a refusal.
                iam.PolicyStatement(sid="ReadListedPhotos", actions=["s3:GetObject"],
                                    resources=[f"{props.dataset_bucket_arn}/{props.config.dataset_prefix}*"]),
                *read_registry, set_status, publish,
            ],
            # Upload events: conditional writes of seen-upload markers and the pending count. And batch classification
            # (chalicelib/pipeline/batch_classify.py): photos under classify/ read, predictions/ written, by the served model.
            "upload": [
                iam.PolicyStatement(sid="ReadPhotosToClassify", actions=["s3:GetObject"],
                                    resources=[f"{props.dataset_bucket_arn}/{CLASSIFY_PREFIX}*"]),
                iam.PolicyStatement(sid="WritePredictions", actions=["s3:PutObject"],
                                    resources=[f"{props.dataset_bucket_arn}/{PREDICTIONS_PREFIX}*"]),
                # Listing makes a missing photo or batch output a 404 (HeadObject), not a 403.
                iam.PolicyStatement(sid="FindClassifyObjects", actions=["s3:ListBucket"], resources=[props.dataset_bucket_arn],
                                    conditions={"StringLike": {"s3:prefix": [f"{CLASSIFY_PREFIX}*", f"{PREDICTIONS_PREFIX}*"]}}),
                iam.PolicyStatement(sid="ReadServedModel", actions=["s3:GetObject"], resources=[models]),
                *read_registry,
                iam.PolicyStatement(sid="RecordUploads", resources=[table], actions=["dynamodb:PutItem", "dynamodb:UpdateItem"]),
                iam.PolicyStatement(sid="ConsumeUploadQueue", resources=[props.uploads.queue_arn], actions=[
                    "sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"]),
            ],
            # The tick and the SageMaker events: run the pipeline (launch, convert, register, promote).
            "pipeline": [
                *launch,
                # Lineage (chalicelib/pipeline/lineage.py): a model's files are locked when it is registered
                # (PutObjectRetention on each, governance mode); manifests as they are written (launch's LockManifests).
                iam.PolicyStatement(sid="LockModels", actions=["s3:PutObjectRetention"], resources=[models]),
                # Only network-isolated jobs, as StartTraining.
                iam.PolicyStatement(sid="StartConversion", actions=["sagemaker:CreateProcessingJob"],
                                    resources=[props.processing_jobs_arn],
                                    conditions={"ForAllValues:StringEquals": {
                                        "sagemaker:InstanceTypes": [props.config.conversion_instance_type]},
                                        "Bool": {"sagemaker:NetworkIsolation": "true"}}),
                iam.PolicyStatement(sid="Register", actions=["sagemaker:CreateModelPackage"],
                                    resources=[props.model_packages_arn, props.model_group_arn]),
                # Registering checks the group is there first (CloudFormation made it; chalicelib/adapters/aws/sagemaker_registry.py).
                iam.PolicyStatement(sid="ReadRegistryGroup", actions=["sagemaker:DescribeModelPackageGroup"],
                                    resources=[props.model_group_arn]),
                iam.PolicyStatement(sid="TagOurPackages", actions=["sagemaker:AddTags"], resources=[props.model_packages_arn]),
                *read_registry, set_status, publish,
                # The conversion job's own role (to SageMaker only); the training job's is launch's PassTrainingRole.
                iam.PolicyStatement(sid="PassConversionRole", actions=["iam:PassRole"],
                                    resources=[props.conversion_role.role_arn],
                                    conditions={"StringEquals": {"iam:PassedToService": "sagemaker.amazonaws.com"}}),
                iam.PolicyStatement(sid="FailedInvocations", actions=["sqs:SendMessage"],
                                    resources=[self.events_dlq.queue_arn]),
            ],
        }
        roles = {}
        for kind, statements in documents.items():
            groups = [self.log_groups[lid] for lid, spec in FUNCTIONS.items() if spec.role == kind]
            statements = statements + [iam.PolicyStatement(
                sid="OwnLogs", actions=["logs:CreateLogStream", "logs:PutLogEvents"],
                resources=[g.log_group_arn for g in groups])]
            roles[kind] = iam.Role(
                self, f"{kind.capitalize()}FunctionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                description=f"flowers {kind} Lambda function(s)",
                inline_policies={"flowers": iam.PolicyDocument(statements=statements)})
        return roles

    # functions -------------------------------------------------------------------------------------
    def _functions(self) -> None:
        found = [c.node.id for c in self.chalice.sam_template.node.children
                 if isinstance(c, CfnResource) and c.cfn_resource_type == "AWS::Serverless::Function"]
        unknown = sorted(set(found) - set(FUNCTIONS))
        if unknown:
            raise ValueError(f"app.py has function(s) {unknown} that infra/flowers_infra/chalice_app.py does not "
                             "know: give each a role with only the calls it makes (FUNCTIONS)")
        self.functions: dict[str, CfnResource] = {}
        for lid, spec in FUNCTIONS.items():
            if lid not in found:
                continue  # e.g. no route yet: no APIHandler
            function = self.chalice.get_resource(lid)
            function.add_property_override("FunctionName", self.function_names[lid])
            function.add_property_override("Role", self.roles[spec.role].role_arn)
            function.add_property_override("MemorySize", spec.memory)
            function.add_property_override("Timeout", spec.timeout)
            if spec.asynchronous:
                function.add_property_override("DeadLetterQueue", {"Type": "SQS", "TargetArn": self.events_dlq.queue_arn})
            function.node.add_dependency(self.log_groups[lid])
            if lid == "OnUpload":
                self._read_uploads_queue(function)
            reserved = self.props.config.api_reserved_concurrency if lid == API_FUNCTION else 0
            if reserved:
                # A cap and a guarantee: the API (anyone on the internet) can never take more of the account's Lambda
                # concurrency than this, so the pipeline's functions always find room, and it always has this much.
                function.add_property_override("ReservedConcurrentExecutions", reserved)
            unreserved = {} if reserved else {"CKV_AWS_115": (
                "no reserved concurrency on purpose (api_reserved_concurrency=0: an account too small to reserve any)"
                if lid == API_FUNCTION else
                "not capped: a tick a minute, one event per job state change and SQS batches run few at once; the API "
                "function's reserved concurrency keeps the rest of the account's pool for them, and a reservation here "
                "would only take from it")}
            skip_checkov(function, {
                "CKV_AWS_117": "no VPC: the functions call only AWS APIs (S3, DynamoDB, SageMaker) over TLS with IAM",
                "CKV_AWS_173": "environment variables hold resource names and tuning values, no secrets",
                **unreserved,
                **({} if spec.asynchronous else {
                    "CKV_AWS_116": "invoked synchronously (API Gateway) or by SQS, whose queue has its own "
                                   "dead-letter queue; a function DLQ applies to asynchronous invocations only"}),
            })
            self.functions[lid] = function

    def _read_uploads_queue(self, function: CfnResource) -> None:
        """app.py's decorator names a queue ("flowers-uploads"), which `chalice package` renders as ARN
        text. Point the event source at this stack's queue instead, by reference: whatever the stack
        is called, the function reads the queue the dataset bucket notifies, and CloudFormation
        creates the queue first. And let the function answer a partial batch response
        (ReportBatchItemFailures, which Chalice's on_sqs_message cannot set): only the messages it
        could not record go back to the queue (chalicelib/api/handlers.py, on_upload_messages)."""
        events = _plain(function._cfn_properties).get("events") or {}  # jsii cannot type SAM's event union
        sqs_events = [name for name, event in events.items() if event.get("type") == "SQS"]
        if len(sqs_events) != 1:
            raise ValueError(f"app.py's on_upload has SQS event sources {sqs_events}; infra/flowers_infra/"
                             "chalice_app.py points exactly one at the stack's uploads queue")
        function.add_property_override(f"Events.{sqs_events[0]}.Properties.Queue", self.props.uploads.queue_arn)
        function.add_property_override(f"Events.{sqs_events[0]}.Properties.FunctionResponseTypes", ["ReportBatchItemFailures"])

    # API -------------------------------------------------------------------------------------------
    def _api(self, config: FlowersConfig) -> None:
        # Retained when the stack is deleted, whatever retain_data says: the trace of operator calls outlives the stack.
        self.access_logs = logs.LogGroup(self, "ApiAccessLogs", log_group_name=f"/aws/apigateway/{self.stack_name}-access",
                                         retention=self.props.access_log_retention, removal_policy=RemovalPolicy.RETAIN)
        for group in (self.access_logs, *self.log_groups.values()):
            skip_checkov(group, {"CKV_AWS_158": LOG_KMS_REASON})
        api = self.chalice.get_resource("RestAPI")
        if not isinstance(api, sam.CfnApi):
            raise TypeError(f"Chalice's RestAPI is a {type(api).__name__}, not the SAM API this construct configures")
        self.rest_api = api
        body = _plain(api.definition_body)
        self.secured_methods: list[tuple[str, str]] = []
        self.public_methods: list[tuple[str, str]] = []
        self.iam_methods: list[tuple[str, str]] = []
        api.add_property_override(f"DefinitionBody.securityDefinitions.{API_KEY_SCHEME}",
                                  {"type": "apiKey", "name": "x-api-key", "in": "header"})
        api.add_property_override("DefinitionBody.x-amazon-apigateway-api-key-source", "HEADER")
        for path, methods in sorted(body.get("paths", {}).items()):
            for method, spec in sorted(methods.items()):
                if method == "options" or not isinstance(spec, dict):
                    continue  # CORS preflight carries no credentials by design
                if (path, method) in PUBLIC_METHODS:
                    self.public_methods.append((path, method))
                elif "." in path:  # a property override's path is dotted
                    raise ValueError(f"route {path!r}: a '.' in a path cannot be overridden here")
                elif (path, method) in SIGNED_METHODS:
                    if not spec.get("security"):
                        raise ValueError(f"{method.upper()} {path} is signed (chalicelib/api/access.py) but app.py "
                                         "gives it no IAMAuthorizer")
                    self.iam_methods.append((path, method))  # Chalice's IAMAuthorizer (SigV4): operators and apps
                elif spec.get("security") or access.ROUTES.get((path, method)) is not Access.API_KEY:
                    raise ValueError(f"{method.upper()} {path}: app.py's authorizer and chalicelib/api/access.py disagree, "
                                     "or access.py has no decision for it")
                else:
                    api.add_property_override(f"DefinitionBody.paths.{path}.{method}.security", [{API_KEY_SCHEME: []}])
                    self.secured_methods.append((path, method))
        binary = sorted(set(body.get("x-amazon-apigateway-binary-media-types", [])) | set(IMAGE_MEDIA_TYPES))
        api.add_property_override("DefinitionBody.x-amazon-apigateway-binary-media-types", binary)
        # API Gateway's own answers (a missing key or signature 403, a throttle 429, an integration timeout 504) never
        # reach the app's middleware: they carry its security headers (chalicelib/api/security_headers.py) here, but
        # for the Content-Security-Policy, whose keywords ('self', 'none') carry the single quotes that also enclose
        # a static value here (not confirmed to nest); these answers are short JSON that nosniff keeps from being
        # read as anything else.
        api.add_property_override("DefinitionBody.x-amazon-apigateway-gateway-responses", {
            kind: {"responseParameters": {f"gatewayresponse.header.{name}": f"'{value}'"
                                          for name, value in security_headers.HEADERS.items() if "'" not in value}}
            for kind in GATEWAY_RESPONSES})
        api.add_property_override("Name", self.stack_name)
        api.add_property_override("TracingEnabled", True)
        api.add_property_override("AccessLogSetting", {
            "DestinationArn": self.access_logs.log_group_arn,
            "Format": json.dumps(_ACCESS_LOG_FORMAT, separators=(",", ":")),
        })
        api.add_property_override("MethodSettings", [{
            "ResourcePath": "/*", "HttpMethod": "*", "ThrottlingRateLimit": config.api_rate_limit,
            "ThrottlingBurstLimit": config.api_burst_limit, "LoggingLevel": "OFF", "MetricsEnabled": False,
        }])
        skip_checkov(api, {
            "CKV_AWS_120": "no response cache: predictions are POSTs of fresh images and status must be live",
        })
        if config.apigateway_cloudwatch_role:
            self._cloudwatch_role(api)

        # The web page's API key and its own usage plan (throttling and a daily quota). Scripts and integrations get a
        # key each (`flowers keys create`, with the ClientKeyLimits output), so revoking one touches no other.
        # "RestAPI.Stage" is SAM's reference to the stage it generates, and makes the plan wait for it.
        self.api_key = apigw.CfnApiKey(self, "PageApiKey", enabled=True, name=f"{self.stack_name}-page",
                                       description="x-api-key of the flowers web page (scripts: flowers keys create NAME)")
        self.usage_plan = apigw.CfnUsagePlan(
            self, "PageUsagePlan", usage_plan_name=f"{self.stack_name}-page",
            api_stages=[apigw.CfnUsagePlan.ApiStageProperty(api_id=api.ref, stage=Fn.ref("RestAPI.Stage"))],
            throttle=apigw.CfnUsagePlan.ThrottleSettingsProperty(rate_limit=config.api_rate_limit,
                                                                 burst_limit=config.api_burst_limit),
            quota=apigw.CfnUsagePlan.QuotaSettingsProperty(limit=config.api_quota_per_day, period="DAY"))
        Validations.of(self.usage_plan).acknowledge(Acknowledgment(
            id="CloudFormation-Validate::F1020",
            reason="Ref RestAPI.Stage is SAM's name for the stage it generates; the transform resolves it"))
        apigw.CfnUsagePlanKey(self, "PageUsagePlanKey", key_id=self.api_key.ref, key_type="API_KEY",
                              usage_plan_id=self.usage_plan.ref)
        self.url = f"https://{api.ref}.execute-api.{Aws.REGION}.{Aws.URL_SUFFIX}/{API_STAGE}/"
        stage_arn = Fn.join("", ["arn:", Aws.PARTITION, ":apigateway:", Aws.REGION, "::/restapis/", api.ref, "/stages/",
                                 Fn.ref("RestAPI.Stage")])
        self.firewall = ApiFirewall(self, "Firewall", stack_name=self.stack_name, stage_arn=stage_arn,
                                    rate_per_5min=config.waf_rate_per_5min, log_retention=self.props.log_retention)

    def _cloudwatch_role(self, api: CfnResource) -> None:
        """API Gateway writes access logs with an account-wide role (one per account and region)."""
        role = iam.Role(self, "ApiGatewayCloudWatchRole", assumed_by=iam.ServicePrincipal("apigateway.amazonaws.com"),
                        managed_policies=[iam.ManagedPolicy.from_aws_managed_policy_name(
                            "service-role/AmazonAPIGatewayPushToCloudWatchLogs")])
        # Other APIs in the account may come to rely on it: keep it when the stack goes.
        role.apply_removal_policy(RemovalPolicy.RETAIN)
        account = apigw.CfnAccount(self, "ApiGatewayAccount", cloud_watch_role_arn=role.role_arn)
        account.apply_removal_policy(RemovalPolicy.RETAIN)
        api.node.add_dependency(account)


# One JSON line per request; no headers, no bodies, no API key.
_ACCESS_LOG_FORMAT = {
    "requestId": "$context.requestId", "ip": "$context.identity.sourceIp", "time": "$context.requestTime",
    "method": "$context.httpMethod", "path": "$context.resourcePath", "status": "$context.status",
    "protocol": "$context.protocol", "responseLength": "$context.responseLength",
    "latencyMs": "$context.responseLatency", "integrationLatencyMs": "$context.integrationLatency",
    "integrationStatus": "$context.integrationStatus", "apiKeyId": "$context.identity.apiKeyId",
    "caller": "$context.identity.caller", "error": "$context.error.message",
}


def _plain(value: Any) -> Any:
    """The swagger document as plain Python (jsii hands back mappings)."""
    return json.loads(json.dumps(value, default=lambda o: dict(o)))


# How `chalice package` fetches the Lambda wheels. Its first pass is `pip download -r requirements.txt`
# (the Lambda lock, with hashes); its later passes fetch, by bare name and without hashes, any package
# whose first wheel does not fit Lambda. These settings, read by every pip it starts, make the first
# pass check every hash and fetch only wheels for Lambda's python3.11 (glibc 2.26, as chalice's
# packager checks) on whatever machine synthesizes, so no later pass runs; were one to run, pip would
# refuse its unhashed names and the synth would fail instead of shipping an unchecked wheel.
LAMBDA_PYTHON = "3.11"
LAMBDA_GLIBC = (2, 26)
LAMBDA_PIP_ENVIRONMENT = {
    "PIP_REQUIRE_HASHES": "1",
    "PIP_ONLY_BINARY": ":all:",
    "PIP_PLATFORM": " ".join([f"manylinux_2_{minor}_x86_64" for minor in range(17, LAMBDA_GLIBC[1] + 1)]
                             + ["manylinux2014_x86_64"]),
    "PIP_IMPLEMENTATION": "cp",
    "PIP_PYTHON_VERSION": LAMBDA_PYTHON,
    "PIP_ABI": "cp" + LAMBDA_PYTHON.replace(".", ""),
}


@contextlib.contextmanager
def _packaging() -> Iterator[None]:
    """`chalice package` writes chalice.out/ into the working directory and needs a region name
    (it only renders ${AWS::Region} in the template); its pip downloads the locked Lambda wheels
    (LAMBDA_PIP_ENVIRONMENT). Give it a scratch directory, then tidy up: the construct has staged
    the zip into the cloud assembly by then."""
    scratch = tempfile.mkdtemp(prefix="flowers-chalice-")
    previous_dir = os.getcwd()
    # The whole environment is put back afterwards, not just what is set here: chalice's package_app
    # loads app.py with os.environ itself updated by the stage's variables (the Lambdas' settings),
    # which then leaked into whatever ran next in the process (a test of the CLI read them).
    previous = dict(os.environ)
    os.environ.update({**LAMBDA_PIP_ENVIRONMENT, "AWS_DEFAULT_REGION": os.environ.get("AWS_DEFAULT_REGION")
                       or os.environ.get("AWS_REGION") or "us-east-1"})
    os.chdir(scratch)
    try:
        yield
    finally:
        os.chdir(previous_dir)
        os.environ.clear()
        os.environ.update(previous)
        shutil.rmtree(scratch, ignore_errors=True)

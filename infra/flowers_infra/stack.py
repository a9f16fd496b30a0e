"""FlowersStack: storage, upload events, the training image, the jobs' roles, the Chalice app, alarms.

Every fixed physical name (queues, functions, log groups, the dataset bucket, the API and its key,
the model package group by default) starts with the stack name, so several stacks fit one account
and region.

Data flow (see the repository README):
  photos -> dataset bucket (datasets/flowers/) -> S3 event -> SQS "<stack>-uploads" -> on_upload
  every minute -> tick -> SageMaker training job (training image) -> EventBridge -> on_sagemaker_job
  -> Processing job (same image, `convert`) -> models/<version>/ -> model registry -> POST /predict
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

from aws_cdk import (
    ArnFormat,
    Aws,
    CfnOutput,
    CfnResource,
    Duration,
    RemovalPolicy,
    Stack,
    Tags,
)
from aws_cdk import aws_cloudwatch as cloudwatch
from aws_cdk import aws_cloudwatch_actions as cw_actions
from aws_cdk import aws_dynamodb as dynamodb
from aws_cdk import aws_ecr_assets as ecr_assets
from aws_cdk import aws_events as events
from aws_cdk import aws_events_targets as targets
from aws_cdk import aws_iam as iam
from aws_cdk import aws_logs as logs
from aws_cdk import aws_s3 as s3
from aws_cdk import aws_sagemaker as sagemaker
from aws_cdk import aws_sns as sns
from aws_cdk import aws_sns_subscriptions as subscriptions
from aws_cdk import aws_sqs as sqs
from constructs import Construct

from chalicelib.contract.bucket_layout import (
    CHECKPOINT_PREFIX,
    CLASSIFY_PREFIX,
    FEATURES_PREFIX,
    MANIFESTS_PREFIX,
    MODELS_PREFIX,
    PREDICTIONS_PREFIX,
    TENSORBOARD_PREFIX,
    MODEL_ARCHIVE,
    TRAINING_PREFIX,
    training_job_key,
)
from chalicelib.contract.feature_cache import ENTRY_SUFFIX as FEATURE_ENTRY_SUFFIX
from chalicelib.contract.feature_cache import EXPIRE_DAYS as FEATURE_CACHE_DAYS
from chalicelib.contract.feature_cache import MARKER as FEATURE_CACHE_MARKER
from chalicelib.contract.training_job import LABELS_FILE, METADATA_FILE, MODEL_FILE
from chalicelib.contract.vocabulary import DomainEventType, EventSource, JobState, SageMakerDetailType, values
from flowers_infra.app_identity import AppIdentity
from flowers_infra.chalice_app import API_STAGE, FUNCTIONS, ChaliceApp, ChaliceAppProps
from flowers_infra.checks import skip_checkov
from flowers_infra.config import FlowersConfig
from flowers_infra.constants import SAGEMAKER_LOG_GROUPS, SQS_SSE_REASON

REPO_ROOT = Path(__file__).resolve().parents[2]
UPLOAD_TIMEOUT_SECONDS = FUNCTIONS["OnUpload"].timeout
# Earlier versions under the scratch prefixes (job outputs, checkpoints, TensorBoard, feature cache, classify/,
# predictions/): nothing names them by version, so a month is enough to undo a mistake.
SCRATCH_NONCURRENT_DAYS = 30


class FlowersStack(Stack):
    def __init__(self, scope: Construct, construct_id: str, *, config: FlowersConfig,
                 source_dir: Path = REPO_ROOT, **kwargs: Any) -> None:
        super().__init__(scope, construct_id, description="flowers: photos in a bucket -> retrained image "
                         "classifier -> HTTPS predictions and TFLite", **kwargs)
        if not self.stack_name.replace("-", "").isalnum() or self.stack_name != self.stack_name.lower():
            raise ValueError("the stack name is part of bucket names: lower-case letters, digits and hyphens only")
        self.config = config
        self.retain = RemovalPolicy.RETAIN if config.retain_data else RemovalPolicy.DESTROY
        self.log_retention = _retention(config.log_retention_days)
        Tags.of(self).add("app", "flowers")

        self._storage()
        self._uploads()
        self._state()
        self._training()
        self._alarm_topic()
        self.event_bus = events.EventBus(self, "EventBus", event_bus_name=f"{self.stack_name}-events",
                                         description="flowers domain events: runs started / failed, models registered / promoted / rolled back")
        self.app = ChaliceApp(self, "App", source_dir=source_dir, props=ChaliceAppProps(
            config=config, log_retention=self.log_retention,
            dataset_bucket=self.dataset_bucket, dataset_bucket_arn=self.dataset_bucket_arn,
            artifact_bucket=self.artifact_bucket, table=self.table, uploads=self.uploads,
            training_image_uri=self.training_image.image_uri, training_role=self.training_role,
            conversion_role=self.conversion_role,
            model_group_arn=self.model_group_arn, model_packages_arn=self.model_packages_arn,
            training_jobs_arn=self.job_arn("training-job"), processing_jobs_arn=self.job_arn("processing-job"),
            event_bus_name=self.event_bus.event_bus_name, event_bus_arn=self.event_bus.event_bus_arn,
            access_log_retention=_retention(config.access_log_retention_days, "access_log_retention_days")))
        # Phones: short-lived guest credentials that may call the apps' routes only (issue 28, item 1).
        self.app_identity = AppIdentity(self, "AppIdentity", rest_api_id=self.app.rest_api.ref, stage=API_STAGE)
        self._domain_events()
        self._alarms()
        self._outputs()
        self._annotate_cdk_helpers()

    # storage --------------------------------------------------------------------------------
    def _bucket(self, construct_id: str, *, name: str | None = None, lifecycle: list[s3.LifecycleRule],
                logs_prefix: str | None = None, retain: bool | None = None, object_lock: bool = False) -> s3.Bucket:
        """`retain`: kept when the stack is deleted whatever retain_data says (None: as retain_data says)."""
        keep = self.config.retain_data if retain is None else retain
        return s3.Bucket(
            self, construct_id,
            bucket_name=name,
            encryption=s3.BucketEncryption.S3_MANAGED,
            block_public_access=s3.BlockPublicAccess.BLOCK_ALL,
            object_ownership=s3.ObjectOwnership.BUCKET_OWNER_ENFORCED,
            enforce_ssl=True,
            minimum_tls_version=1.2,
            versioned=True,
            object_lock_enabled=object_lock or None,
            lifecycle_rules=lifecycle,
            server_access_logs_bucket=self.access_logs if logs_prefix else None,
            server_access_logs_prefix=logs_prefix,
            removal_policy=RemovalPolicy.RETAIN if keep else RemovalPolicy.DESTROY,
            auto_delete_objects=not keep,
        )

    def _storage(self) -> None:
        """Nothing lost (README "Nothing lost", chalicelib/pipeline/lineage.py): the earlier versions of the data set's
        files, of models/ and of manifests/ are kept lineage_retention_days (at least a year), so every version a
        manifest names can be read back and a model rebuilt; scratch prefixes keep theirs SCRATCH_NONCURRENT_DAYS.
        Each prefix has its own rule and none covers the whole bucket: where rules overlap S3 applies the shorter
        expiration, so a bucket-wide rule would cut the year short. A key under no rule keeps its earlier versions."""
        lineage = Duration.days(self.config.lineage_retention_days)
        scratch = Duration.days(SCRATCH_NONCURRENT_DAYS)
        abort = s3.LifecycleRule(id="abort-incomplete-uploads", abort_incomplete_multipart_upload_after=Duration.days(7))

        def kept(rule_id: str, prefix: str) -> s3.LifecycleRule:
            return s3.LifecycleRule(id=rule_id, prefix=prefix, noncurrent_version_expiration=lineage)

        def scratch_rule(rule_id: str, prefix: str, days: int | None = None) -> s3.LifecycleRule:
            return s3.LifecycleRule(id=rule_id, prefix=prefix, noncurrent_version_expiration=scratch,
                                    expiration=Duration.days(days) if days else None)

        # Access logs are the trace of who did what (issue 27, item 7): a year at least, and they outlive the stack.
        # Written once by S3's log delivery, so an earlier version is only the one an expiration left behind.
        self.access_logs = self._bucket("AccessLogs", retain=True, lifecycle=[
            abort, s3.LifecycleRule(id="expire-logs", expiration=Duration.days(self.config.access_log_retention_days),
                                    noncurrent_version_expiration=Duration.days(1))])
        skip_checkov(self.access_logs, {
            "CKV_AWS_18": "this is the access-log bucket; logging it into itself would loop",
        })
        # A name known before the bucket exists: the queue policy names the bucket as the only
        # sender, and the bucket's notification needs that policy first (no cycle, no custom resource).
        self.dataset_bucket_name = f"{self.stack_name}-datasets-{Aws.ACCOUNT_ID}-{Aws.REGION}"
        self.dataset_bucket = self._bucket("DatasetBucket", name=self.dataset_bucket_name, logs_prefix="datasets/", lifecycle=[
            abort,
            kept("dataset-versions", self.config.dataset_prefix),  # the photos and labels manifests name by version
            # Scratch: photos to classify and their answers are never training data, and no manifest names them.
            scratch_rule("classify-versions", CLASSIFY_PREFIX),
            scratch_rule("predictions-versions", PREDICTIONS_PREFIX),
        ])
        # Object Lock (governance mode) with no default retention: a default is bucket-wide and would hold checkpoints,
        # job outputs and the feature cache a year as well. The pipeline locks what lineage needs, object by object:
        # each manifest as it is written, a model's files when it is registered (chalicelib/pipeline/lineage.py). The
        # bucket's resource schema (cfn-lint's copy) makes only its name create-only: turning this on for a deployed
        # stack's bucket is an update, not a new bucket.
        self.artifact_bucket = self._bucket("ArtifactBucket", logs_prefix="artifacts/", object_lock=True, lifecycle=[
            abort,
            # models/ stays: the registry points at it. Its and the manifests' earlier versions are kept as long.
            kept("models-versions", MODELS_PREFIX),
            kept("manifests-versions", MANIFESTS_PREFIX),
            # Scratch, rebuilt or never read again: job outputs (copied or converted already), checkpoints (a restart
            # resumes from the newest), TensorBoard events, the feature cache.
            scratch_rule("training-outputs", TRAINING_PREFIX, 30),
            scratch_rule("checkpoints", CHECKPOINT_PREFIX, 14),
            scratch_rule("tensorboard", TENSORBOARD_PREFIX, 180),
            # Features of backbones no run starts from any more are never read again (chalicelib/contract/feature_cache.py).
            scratch_rule("feature-cache", FEATURES_PREFIX, FEATURE_CACHE_DAYS),
        ])
        # Manifests are written once: a PutObject under manifests/ that does not ask S3 to refuse an overwrite
        # (If-None-Match: *) is denied, whoever sends it. The pipeline's writer asks (S3ObjectStore.write_once) and
        # takes S3's 412 for "written already". models/ cannot have this rule: SageMaker uploads the conversion's output
        # itself and sends no such header; its files are locked at registration instead.
        self.artifact_bucket.add_to_resource_policy(iam.PolicyStatement(
            sid="ManifestsAreWrittenOnce", effect=iam.Effect.DENY, principals=[iam.AnyPrincipal()], actions=["s3:PutObject"],
            resources=[self.artifact_bucket.arn_for_objects(f"{MANIFESTS_PREFIX}*")],
            conditions={"Null": {"s3:if-none-match": "true"}}))

    @property
    def dataset_bucket_arn(self) -> str:
        return f"arn:{Aws.PARTITION}:s3:::{self.dataset_bucket_name}"

    # uploads ----------------------------------------------------------------------------------
    def _uploads(self) -> None:
        self.uploads_dlq = sqs.Queue(
            self, "UploadsDeadLetters", queue_name=f"{self.stack_name}-uploads-dlq",
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True, retention_period=Duration.days(14))
        self.uploads = sqs.Queue(
            self, "Uploads", queue_name=f"{self.stack_name}-uploads",
            encryption=sqs.QueueEncryption.SQS_MANAGED, enforce_ssl=True,
            # AWS: at least 6 x the function timeout (+ the batching window) for an SQS event source.
            visibility_timeout=Duration.seconds(6 * UPLOAD_TIMEOUT_SECONDS + 30),
            retention_period=Duration.days(4),
            dead_letter_queue=sqs.DeadLetterQueue(queue=self.uploads_dlq, max_receive_count=5))
        for queue in (self.uploads, self.uploads_dlq):
            skip_checkov(queue, {"CKV_AWS_27": SQS_SSE_REASON})
        added = self.uploads.add_to_resource_policy(iam.PolicyStatement(
            sid="DatasetBucketEvents",
            principals=[iam.ServicePrincipal("s3.amazonaws.com")],
            actions=["sqs:SendMessage"],
            resources=[self.uploads.queue_arn],
            conditions={"ArnEquals": {"aws:SourceArn": self.dataset_bucket_arn},
                        "StringEquals": {"aws:SourceAccount": Aws.ACCOUNT_ID}},
        ))
        def prefix_filter(prefix: str) -> s3.CfnBucket.NotificationFilterProperty:
            return s3.CfnBucket.NotificationFilterProperty(s3_key=s3.CfnBucket.S3KeyFilterProperty(
                rules=[s3.CfnBucket.FilterRuleProperty(name="prefix", value=prefix)]))
        cfn_bucket = self.dataset_bucket.node.default_child
        if not isinstance(cfn_bucket, s3.CfnBucket):
            raise TypeError("the dataset bucket has no CfnBucket to set its notifications on")
        cfn_bucket.notification_configuration = s3.CfnBucket.NotificationConfigurationProperty(
            queue_configurations=[
                s3.CfnBucket.QueueConfigurationProperty(event=event, queue=self.uploads.queue_arn, filter=prefix_filter(prefix))
                for prefix, event in ((self.config.dataset_prefix, "s3:ObjectCreated:*"), (self.config.dataset_prefix, "s3:ObjectRemoved:*"),
                                      # photos to classify in batches (chalicelib/pipeline/batch_classify.py), by the same function
                                      (CLASSIFY_PREFIX, "s3:ObjectCreated:*"))
            ])
        # S3 checks that it may send to the queue when the notification is created.
        self.dataset_bucket.node.add_dependency(added.policy_dependable)

    # pipeline state and model registry --------------------------------------------------------------
    def _state(self) -> None:
        self.table = dynamodb.Table(
            self, "StateTable",
            partition_key=dynamodb.Attribute(name="pk", type=dynamodb.AttributeType.STRING),
            sort_key=dynamodb.Attribute(name="sk", type=dynamodb.AttributeType.STRING),
            billing_mode=dynamodb.BillingMode.PAY_PER_REQUEST,
            point_in_time_recovery_specification=dynamodb.PointInTimeRecoverySpecification(
                point_in_time_recovery_enabled=True),
            encryption=dynamodb.TableEncryption.AWS_MANAGED,
            time_to_live_attribute="expires_at",  # seen-upload markers expire (chalicelib/adapters/aws/dynamodb_state.py)
            deletion_protection=self.config.retain_data,
            removal_policy=self.retain,
        )
        skip_checkov(self.table, {
            "CKV_AWS_119": "encrypted with the AWS-managed DynamoDB KMS key; the table holds pipeline bookkeeping "
                           "(object keys, counts, job names), not worth a customer key's cost and key policy",
        })
        self.model_group = sagemaker.CfnModelPackageGroup(
            self, "ModelPackageGroup", model_package_group_name=self.config.model_package_group,
            model_package_group_description="flower classifiers (TFLite), one version per data set version")
        # A group that holds model packages cannot be deleted; keep it with the data.
        self.model_group.apply_removal_policy(self.retain)

    @property
    def model_group_arn(self) -> str:
        return self.format_arn(service="sagemaker", resource="model-package-group",
                               resource_name=self.config.model_package_group)

    @property
    def model_packages_arn(self) -> str:
        return self.format_arn(service="sagemaker", resource="model-package",
                               resource_name=f"{self.config.model_package_group}/*")

    def job_arn(self, kind: str) -> str:
        """Our jobs only: names are <group>-<version>[-convert] (chalicelib/pipeline/job_names.py)."""
        return self.format_arn(service="sagemaker", resource=kind, resource_name=f"{self.config.model_package_group}-*")

    # training image and the jobs' roles -----------------------------------------------------------
    def _training(self) -> None:
        # Built and pushed at deploy (needs Docker there); at synth only the context is staged.
        self.training_image = ecr_assets.DockerImageAsset(
            self, "TrainingImage",
            directory=str(REPO_ROOT),
            file="training/Dockerfile",
            platform=ecr_assets.Platform.LINUX_AMD64,
            exclude=_docker_context_excludes(),
        )
        # SageMaker creates its log groups on first use, without retention, and they may exist already
        # (other SageMaker work in the account): CDK's LogRetention helper sets retention either way.
        # Immutable: CDK would otherwise add its own grant on "*" to the role.
        retention_role = self._log_retention_role().without_policy_updates()
        for name in SAGEMAKER_LOG_GROUPS:
            logs.LogRetention(self, f"SageMaker{name.rsplit('/', 1)[1]}LogRetention", log_group_name=name,
                              retention=self.log_retention, role=retention_role)
        logs_of = {name: self.format_arn(service="logs", resource="log-group", resource_name=f"{name}:*",
                                         arn_format=ArnFormat.COLON_RESOURCE_NAME) for name in SAGEMAKER_LOG_GROUPS}
        training_logs, processing_logs = SAGEMAKER_LOG_GROUPS
        dataset_prefix = self.config.dataset_prefix
        artifacts = self.artifact_bucket.arn_for_objects
        model_archives = artifacts(training_job_key("*", MODEL_ARCHIVE))

        def job_role(construct_id: str, description: str, log_group: str, statements: list[iam.PolicyStatement]) -> iam.Role:
            role = iam.Role(self, construct_id, assumed_by=iam.ServicePrincipal("sagemaker.amazonaws.com"),
                            description=description)
            for statement in [
                iam.PolicyStatement(sid="ReadDataset", actions=["s3:GetObject"],
                                    resources=[f"{self.dataset_bucket_arn}/{dataset_prefix}*"]),
                iam.PolicyStatement(sid="ListDataset", actions=["s3:ListBucket"], resources=[self.dataset_bucket_arn],
                                    conditions={"StringLike": {"s3:prefix": [dataset_prefix, f"{dataset_prefix}*"]}}),
                *statements,
                iam.PolicyStatement(sid="JobLogs", actions=[
                    "logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"],
                    resources=[logs_of[log_group]]),
                # The training metric definitions' values (loss=..., val_accuracy=...) and the instances' metrics
                # become CloudWatch metrics. PutMetricData has no resource type; the namespace condition scopes it.
                iam.PolicyStatement(sid="JobMetrics", actions=["cloudwatch:PutMetricData"], resources=["*"],
                                    conditions={"StringLike": {"cloudwatch:namespace": "/aws/sagemaker/*"}}),
            ]:
                role.add_to_policy(statement)
            self.training_image.repository.grant_pull(role)  # ecr:GetAuthorizationToken is account-wide by design
            return role

        # Two roles, so that neither job can write what the other one's output is trusted for. Both jobs run
        # network-isolated (chalicelib/adapters/aws/sagemaker_jobs.py): the container has no credentials and no
        # network, so these are what SageMaker itself may fetch and upload for the job, as its request names.
        # The training role's construct id predates the split: kept, so a deployed stack updates it in place.
        self.training_role = job_role(
            "SageMakerExecutionRole", "flowers training jobs: read the data set, the feature cache and a warm start; "
            "write training outputs, checkpoints, TensorBoard logs", training_logs, [
                # Its run's manifest (the files to fetch), the warm start's model.tar.gz (the production channel),
                # its own checkpoints after a spot restart, the feature cache (the `features` channel).
                iam.PolicyStatement(sid="ReadArtifacts", actions=["s3:GetObject"], resources=[
                    model_archives, *(artifacts(f"{p}*") for p in (CHECKPOINT_PREFIX, MANIFESTS_PREFIX, FEATURES_PREFIX))]),
                # Never models/ (conversion's) nor features/ (new entries leave in model.tar.gz; conversion hands them on).
                iam.PolicyStatement(sid="WriteArtifacts", actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[
                    artifacts(f"{p}*") for p in (TRAINING_PREFIX, CHECKPOINT_PREFIX, TENSORBOARD_PREFIX)]),
                # Checkpoint sync mirrors the local folder, deleting the checkpoints Keras rotated out.
                iam.PolicyStatement(sid="RotateCheckpoints", actions=["s3:DeleteObject"],
                                    resources=[artifacts(f"{CHECKPOINT_PREFIX}*")]),
                iam.PolicyStatement(sid="ListArtifacts", actions=["s3:ListBucket"], resources=[self.artifact_bucket.bucket_arn],
                                    conditions={"StringLike": {"s3:prefix": [
                                        f"{p}*" for p in (TRAINING_PREFIX, CHECKPOINT_PREFIX, TENSORBOARD_PREFIX, FEATURES_PREFIX)]}}),
            ])
        # Conversion writes one version's model files: the Processing job's output URI is models/<version>/ (the
        # pipeline sets it), but a static role cannot name this run's version, so it may put those three file names
        # under any version, and never delete. What keeps an earlier version's files from being replaced is that
        # URI (the container cannot make calls of its own) plus models/ being write-once (Object Lock). It also
        # hands the feature cache's new entries on: entry names under features/ and the marker, nothing else there.
        self.conversion_role = job_role(
            "ConversionJobRole", "flowers conversion jobs: read a training job's model and the data set; write "
            "models/<version>/ and the feature cache's new entries", processing_logs, [
                # The training job's model.tar.gz, the production model's folder (the baseline), the run's manifest.
                iam.PolicyStatement(sid="ReadArtifacts", actions=["s3:GetObject"], resources=[
                    model_archives, artifacts(f"{MODELS_PREFIX}*"), artifacts(f"{MANIFESTS_PREFIX}*")]),
                iam.PolicyStatement(sid="ListArtifacts", actions=["s3:ListBucket"], resources=[self.artifact_bucket.bucket_arn],
                                    conditions={"StringLike": {"s3:prefix": [f"{TRAINING_PREFIX}*", f"{MODELS_PREFIX}*"]}}),
                iam.PolicyStatement(sid="WriteModel", actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[
                    artifacts(f"{MODELS_PREFIX}*/{name}") for name in (MODEL_FILE, LABELS_FILE, METADATA_FILE)]),
                iam.PolicyStatement(sid="WriteFeatureCache", actions=["s3:PutObject", "s3:AbortMultipartUpload"], resources=[
                    artifacts(f"{FEATURES_PREFIX}*{FEATURE_ENTRY_SUFFIX}"), artifacts(FEATURE_CACHE_MARKER)]),
            ])

    def _log_retention_role(self) -> iam.Role:  # noqa: D401
        """For CDK's LogRetention helper: its default policy allows retention changes on every log group."""
        def group(name: str) -> list[str]:
            arn = self.format_arn(service="logs", resource="log-group", resource_name=name,
                                  arn_format=ArnFormat.COLON_RESOURCE_NAME)
            return [arn, f"{arn}:*"]
        own = group(f"/aws/lambda/{self.stack_name}-LogRetention*")  # the helper sets its own retention too
        targets = [arn for name in SAGEMAKER_LOG_GROUPS for arn in group(name)] + own
        return iam.Role(self, "LogRetentionRole", assumed_by=iam.ServicePrincipal("lambda.amazonaws.com"),
                        description="CDK's LogRetention helper: retention of SageMaker's log groups only",
                        inline_policies={"retention": iam.PolicyDocument(statements=[
                            iam.PolicyStatement(sid="SetRetention", resources=targets, actions=[
                                "logs:CreateLogGroup", "logs:PutRetentionPolicy", "logs:DeleteRetentionPolicy"]),
                            iam.PolicyStatement(sid="OwnLogs", resources=own,
                                                actions=["logs:CreateLogStream", "logs:PutLogEvents"]),
                        ])})

    # alarms -------------------------------------------------------------------------------------------
    def _alarm_topic(self) -> None:
        self.alarm_topic = sns.Topic(self, "AlarmTopic", display_name="flowers alarms", enforce_ssl=True)
        skip_checkov(self.alarm_topic, {
            "CKV_AWS_26": "alarm notifications carry no data; CloudWatch and EventBridge cannot publish to a topic "
                          "encrypted with the AWS-managed SNS key, and a customer key costs more than the risk",
        })
        if self.config.alarm_email:
            self.alarm_topic.add_subscription(subscriptions.EmailSubscription(self.config.alarm_email))

    def _domain_events(self) -> None:
        """The bus's policy: only the pipeline's functions publish its flowers events (anyone in the account may
        still read them through rules). And an example rule: a failed run mailed to the alarm topic with its reason."""
        publishers = [self.app.roles["pipeline"].role_arn, self.app.roles["api"].role_arn]
        self.event_bus.add_to_resource_policy(iam.PolicyStatement(
            sid="OnlyThePipelinePublishesFlowersEvents", effect=iam.Effect.DENY, actions=["events:PutEvents"],
            principals=[iam.AnyPrincipal()], resources=[self.event_bus.event_bus_arn],
            conditions={"StringEquals": {"events:source": EventSource.FLOWERS.value}, "ArnNotEquals": {"aws:PrincipalArn": publishers}}))
        detail = events.EventField.from_path
        rule = events.Rule(self, "RunFailedEventRule", event_bus=self.event_bus,
                           description="example: a failed flowers run, with its reason, to the alarm topic",
                           event_pattern=events.EventPattern(source=[EventSource.FLOWERS.value],
                                                             detail_type=[DomainEventType.RUN_FAILED.value]))
        rule.add_target(targets.SnsTopic(self.alarm_topic, message=events.RuleTargetInput.from_text(
            f"flowers run {detail('$.detail.training_job')} (data set version {detail('$.detail.version')}) failed: "
            f"{detail('$.detail.reason')}")))

    def _alarm(self, construct_id: str, metric: cloudwatch.IMetric, description: str, threshold: float = 1,
               evaluation_periods: int = 1) -> cloudwatch.Alarm:
        alarm = cloudwatch.Alarm(
            self, construct_id, metric=metric, threshold=threshold, evaluation_periods=evaluation_periods,
            comparison_operator=cloudwatch.ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
            treat_missing_data=cloudwatch.TreatMissingData.NOT_BREACHING, alarm_description=description)
        alarm.add_alarm_action(cw_actions.SnsAction(self.alarm_topic))
        return alarm

    def _alarms(self) -> None:
        five_minutes = Duration.minutes(5)
        self.alarms = {}
        for key, queue, what in (("UploadsDeadLetterAlarm", self.uploads_dlq, "upload events"),
                                 ("EventsDeadLetterAlarm", self.app.events_dlq, "scheduled ticks or SageMaker events")):
            self.alarms[key] = self._alarm(
                key, queue.metric_approximate_number_of_messages_visible(period=five_minutes, statistic="Maximum"),
                f"{what} failed repeatedly and wait in {queue.queue_name}: read the function's logs, then redrive")
        # Failed or stopped SageMaker jobs of ours, straight from EventBridge (also mailed to the topic).
        failed = events.Rule(self, "SageMakerJobFailedRule", description="flowers training or conversion job failed",
                             event_pattern=events.EventPattern(
                                 source=[EventSource.SAGEMAKER.value],
                                 detail_type=values(*SageMakerDetailType),
                                 detail={"$or": [
                                     {"TrainingJobStatus": [JobState.FAILED.value],
                                      "TrainingJobName": [{"prefix": f"{self.config.model_package_group}-"}]},
                                     {"ProcessingJobStatus": [JobState.FAILED.value],
                                      "ProcessingJobName": [{"prefix": f"{self.config.model_package_group}-"}]},
                                 ]}))
        failed.add_target(targets.SnsTopic(self.alarm_topic))
        self.alarms["JobFailedAlarm"] = self._alarm(
            "JobFailedAlarm",
            cloudwatch.Metric(namespace="AWS/Events", metric_name="TriggeredRules",
                              dimensions_map={"RuleName": failed.rule_name}, statistic="Sum", period=five_minutes),
            "a flowers training or conversion job failed: see GET /status and the job's logs")
        # The pipeline's own count (Powertools EMF): runs that ended failed, refused jobs included.
        self.alarms["RunFailedAlarm"] = self._alarm(
            "RunFailedAlarm",
            cloudwatch.Metric(namespace="Flowers", metric_name="RunsFailed", dimensions_map={"service": "flowers"},
                              statistic="Sum", period=five_minutes),
            "a retraining run failed (training, conversion or registration): see GET /status")
        # Upload notifications the upload function could not read and dropped (retrying cannot help them).
        self.alarms["MalformedUploadsAlarm"] = self._alarm(
            "MalformedUploadsAlarm",
            cloudwatch.Metric(namespace="Flowers", metric_name="MalformedUploadMessages", dimensions_map={"service": "flowers"},
                              statistic="Sum", period=five_minutes),
            "upload notifications were malformed and dropped (not retried): read the on-upload function's "
            "'upload message dropped' log lines; what else writes to the uploads queue?")
        # API 5xx other than the documented 503 (no approved model yet), from the access log.
        api_5xx = logs.MetricFilter(
            self, "Api5xxFilter", log_group=self.app.access_logs, metric_namespace="Flowers",
            metric_name="Api5xx", filter_pattern=logs.FilterPattern.literal("{ $.status >= 500 && $.status != 503 }"),
            metric_value="1", default_value=0)
        self.alarms["Api5xxAlarm"] = self._alarm(
            "Api5xxAlarm", api_5xx.metric(statistic="Sum", period=five_minutes),
            "the API answered 5xx (not the 503 of 'no model yet'): read the APIHandler logs")
        self.alarms["ApiHandlerErrorsAlarm"] = self._alarm(
            "ApiHandlerErrorsAlarm",
            cloudwatch.Metric(namespace="AWS/Lambda", metric_name="Errors",
                              dimensions_map={"FunctionName": self.app.function_names["APIHandler"]},
                              statistic="Sum", period=five_minutes),
            "the prediction function raised or timed out")

    def _annotate_cdk_helpers(self) -> None:
        """CDK's own deploy-time Lambdas: log retention for SageMaker's log groups, and (retain_data=false)
        emptying buckets on delete."""
        for construct in self.node.find_all():
            if (isinstance(construct, CfnResource) and construct.cfn_resource_type == "AWS::Lambda::Function"
                    and ("CustomResourceProvider" in construct.node.path or "LogRetention" in construct.node.path)):
                skip_checkov(construct, {
                    "CKV_AWS_115": "CDK's deploy-time helper runs only during stack updates",
                    "CKV_AWS_116": "CloudFormation invokes CDK's helper and reports its failures itself",
                    "CKV_AWS_117": "CDK's helper calls only AWS APIs (S3, CloudWatch Logs); nothing in a VPC",
                    "CKV_AWS_173": "CDK's helper has no secrets in its environment",
                })
                # CDK renders both a GetAtt and a DependsOn on the helper's role.
                construct.add_metadata("cfn-lint", {"config": {"ignore_checks": ["W3005"]}})

    # outputs ----------------------------------------------------------------------------------------
    def _outputs(self) -> None:
        outputs = {
            "ApiUrl": (self.app.url, "the API (POST /predict, GET /models, /models/current, /status)"),
            "ApiKeyId": (self.app.api_key.ref, "the web page's key: aws apigateway get-api-key --include-value --api-key <this>"),
            "ApiId": (self.app.rest_api.ref, "the REST API's id: flowers keys puts each client's usage plan on its stage"),
            "ClientKeyLimits": (self.config.client_key_policy.to_json(),
                                "flowers keys create: a key's default limits and the stage's ceilings"),
            "DatasetBucketName": (self.dataset_bucket.bucket_name, "upload photos here"),
            "DatasetUri": (f"s3://{self.dataset_bucket.bucket_name}/{self.config.dataset_prefix}",
                           "the watched prefix: one folder per class, or name.jpg + name.txt"),
            "ArtifactBucketName": (self.artifact_bucket.bucket_name, "job outputs, models, TensorBoard logs"),
            "TensorBoardUri": (f"s3://{self.artifact_bucket.bucket_name}/{TENSORBOARD_PREFIX}",
                               "tensorboard --logdir <this> (or SageMaker's TensorBoard app)"),
            "StateTableName": (self.table.table_name, "pipeline state"),
            "ModelPackageGroupName": (self.model_group.model_package_group_name, "the model registry"),
            "TrainingImageUri": (self.training_image.image_uri, "the training and conversion image"),
            "SageMakerRoleArn": (self.training_role.role_arn, "the training jobs' execution role"),
            "ConversionRoleArn": (self.conversion_role.role_arn, "the conversion jobs' execution role"),
            "AlarmTopicArn": (self.alarm_topic.topic_arn, "subscribe to alarms here"),
            "IdentityPoolId": (self.app_identity.pool.ref, "phone apps: their Cognito identity pool (guest credentials, "
                               "SigV4 on /app/predict and /app/models/current)"),
            "Region": (self.region, "the identity pool's and the API's region"),
            "EventBusName": (self.event_bus.event_bus_name, "the pipeline's domain events (README, \"Domain events\"): add rules here"),
        }
        for name, (value, description) in outputs.items():
            CfnOutput(self, name, value=value, description=description)




_RETENTIONS = {
    1: "ONE_DAY", 3: "THREE_DAYS", 5: "FIVE_DAYS", 7: "ONE_WEEK", 14: "TWO_WEEKS", 30: "ONE_MONTH",
    60: "TWO_MONTHS", 90: "THREE_MONTHS", 120: "FOUR_MONTHS", 150: "FIVE_MONTHS", 180: "SIX_MONTHS",
    365: "ONE_YEAR", 400: "THIRTEEN_MONTHS", 545: "EIGHTEEN_MONTHS", 731: "TWO_YEARS", 1827: "FIVE_YEARS",
    3653: "TEN_YEARS",
}


def _retention(days: int, name: str = "log_retention_days") -> logs.RetentionDays:
    if days not in _RETENTIONS:
        raise ValueError(f"{name}={days}: CloudWatch Logs offers {sorted(_RETENTIONS)}")
    return getattr(logs.RetentionDays, _RETENTIONS[days])


def _docker_context_excludes() -> list[str]:
    """The training image COPYs chalicelib/, training/ and the pip lock only; everything else stays out of the context."""
    keep = {"chalicelib", "training", "requirements-pip.txt"}
    return sorted(f"{p.name}" for p in REPO_ROOT.iterdir() if p.name not in keep) + [
        "**/__pycache__", "**/*.pyc"]


"""Names the app and the stack agree on, and the reasons shared by several checkov suppressions."""

# What the pipeline writes under the artifact bucket (chalicelib/pipeline.py)
TRAINING_PREFIX = "training/"
CHECKPOINT_PREFIX = "checkpoints/"
TENSORBOARD_PREFIX = "tensorboard/"
MODELS_PREFIX = "models/"
MANIFESTS_PREFIX = "manifests/"  # each run's list of photos (chalicelib/pipeline/manifest.py); kept, like models/
FEATURES_PREFIX = "features/"  # backbone features per photo (chalicelib/contract/feature_cache.py); expire after a month
# Batch classification in the dataset bucket (chalicelib/pipeline/batch_classify.py): photos in, JSON Lines out
CLASSIFY_PREFIX = "classify/"
PREDICTIONS_PREFIX = "predictions/"
SAGEMAKER_LOG_GROUPS = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs")

SQS_SSE_REASON = ("encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which checkov does not recognise; S3 "
                  "cannot send events to a queue under the AWS-managed SQS KMS key")
LOG_KMS_REASON = ("CloudWatch Logs encrypts every log group at rest already; no image bytes, keys or secrets are "
                  "logged, so a customer KMS key would add cost and key policy without reducing risk")

"""Names the app and the stack agree on, and the reasons shared by several checkov suppressions. The buckets'
prefixes are the pipeline's own: chalicelib/contract/bucket_layout.py."""

SAGEMAKER_LOG_GROUPS = ("/aws/sagemaker/TrainingJobs", "/aws/sagemaker/ProcessingJobs")

SQS_SSE_REASON = ("encrypted at rest with SSE-SQS (SqsManagedSseEnabled), which checkov does not recognise; S3 "
                  "cannot send events to a queue under the AWS-managed SQS KMS key")
LOG_KMS_REASON = ("CloudWatch Logs encrypts every log group at rest already; no image bytes, keys or secrets are "
                  "logged, so a customer KMS key would add cost and key policy without reducing risk")

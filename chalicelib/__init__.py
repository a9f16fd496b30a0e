"""The logic the Lambda functions run: nothing here may import TensorFlow. The folders are its roles:
`contract/` (shared with training), `pipeline/` (decisions and records), `api/` (HTTP), `serving/` (predictions),
`ports.py` with `adapters/aws/` and `adapters/local/`, `local_stack/` (flowers up's runtime).

Vocabulary (one name per idea):
- data set: the photos under the watched prefix (`Settings.dataset_uri`); its *version* is a
  hash of its listing, and names the run, the jobs and the model trained from it.
- DatasetState (`pipeline/records.py`): what the state store keeps per data set: pending uploads, the
  run that holds it now (`Running`, with its *stage*), the last `Outcome`.
- run: one attempt to turn a data set version into a model (training job, then conversion job);
  `RunRecord` is its history row. A *job* is the SageMaker job (or local subprocess) of a run.
- Orchestrator (`pipeline/orchestrator.py`): the run state machine, the decisions that move runs along: uploads
  recorded, the tick's debounce, job state changes, the promotion gate; and the operator commands approve / reject /
  rollback / retrain. `RunPolicy` holds where local mode runs it differently.
- job specs (`pipeline/job_specs.py`): what a training or conversion job is given (hyperparameters, URIs, where
  the run starts from); the buckets' layout is `contract/bucket_layout.py`'s, shared with training and infra.
- read model (`pipeline/read_model.py`): what GET /status, /models, /models/current, /models/{v}/photos answer.
- ports (`ports.py`): ObjectStore, JobRunner, ModelRegistry, StateStore, and EventPublisher for the
  domain events; ValidationReports and RuntimeView for the read model; `adapters/aws/` and `adapters/local/` hold
  their two adapters. `services.py` builds the ones the configured mode needs.
- domain event (`pipeline/domain_events.py`): what the pipeline tells other systems (run started / failed, model
  registered / promoted / rolled back); an EventBridge bus in the cloud, HOME/events.jsonl locally.
- batch classification (`pipeline/batch_classify.py`): photos under `classify/` in the bucket, classified by the
  served model into `predictions/<batch>.jsonl`; never part of the data set.
- handlers (`api/handlers.py`): what each Lambda does between app.py's decorators and the Orchestrator.
- local stack (`local_stack/stack.py`): the wiring of `flowers up`: a folder watcher, a tick loop, job
  subprocesses and an HTTP server, all calling the Chalice app's own functions.
- start (`contract/warm_start.py`): where a run's weights come from: a *warm start* from the production model's
  (same classes; a shorter schedule) or a *full run* from ImageNet (the others, and every N-th run).
- feature cache (`contract/feature_cache.py`, `training/feature_cache.py`): phase 1's backbone features per photo,
  in the artifacts bucket's `features/`, so a run computes them only for photos it has not seen.
- "the pipeline" is the whole flow, upload to served model, in prose only: no code is named so.
"""

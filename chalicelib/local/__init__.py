"""Local mode: the ports of chalicelib/ports.py on one machine, with no AWS account.

- objects.py: a folder is the bucket (FLOWERS_HOME/bucket/, FLOWERS_HOME/artifacts/)
- jobs.py: subprocesses running `python -m training.train` / `training.convert` are the jobs;
  their exits become the documented SageMaker state-change events
- db.py, state.py, registry.py: one SQLite file is the data set's state and the model registry
- watcher.py: scans the bucket folder and delivers S3 notifications (inside SQS records)
- stack.py: `flowers up`: runs the Chalice app's own handlers for those events and serves its
  HTTP routes

Nothing here imports TensorFlow: training and conversion run in subprocesses.
"""

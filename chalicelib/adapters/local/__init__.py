"""Local adapters of the ports: a folder is the bucket, subprocesses are the jobs, SQLite is the state and the
registry, HOME/events.jsonl the event bus. wiring.py builds them from the settings."""

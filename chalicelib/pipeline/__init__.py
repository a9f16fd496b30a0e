"""The run pipeline: its decisions (pure functions) and the state machine that applies them through the ports,
the records it keeps, and the read model the API answers from. Never imports the API, the adapters or flowers up."""

"""`flowers up`'s runtime: the stack that wires the local adapters to the Chalice app's own handlers, the bucket
watcher, the tick loop and the local HTTP server."""

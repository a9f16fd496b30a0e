"""The HTTP API: handlers (parse, call the pipeline or serving, format), request checks against the OpenAPI
document's own schemas, JSON errors, and the web page."""

"""The prediction path: the served model, loaded once per container and refreshed, answering with LiteRT."""

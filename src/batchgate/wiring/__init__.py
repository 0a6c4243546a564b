"""What builds and connects the running parts: storage, routes, services and the worker. Only the entry points
(the CLI, `run`, `batchgate worker`, the app factory) import it; nothing below does."""

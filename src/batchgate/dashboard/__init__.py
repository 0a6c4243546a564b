"""The web dashboard at /ui: server-rendered pages over the same services and API keys as /v1."""

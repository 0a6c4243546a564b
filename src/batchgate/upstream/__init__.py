"""Sending requests to OpenAI-compatible servers (or in-process engines) and routing models to them."""

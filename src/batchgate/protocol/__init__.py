"""The OpenAI wire format: request parsing and response objects, field for field."""

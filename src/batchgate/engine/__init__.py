"""In-process model engines that answer like an OpenAI-compatible server."""

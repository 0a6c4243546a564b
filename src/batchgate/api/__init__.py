"""The HTTP edge: app factory, one routes file per resource, one error handler."""

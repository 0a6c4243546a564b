"""Pure values and rules. No I/O, no web framework, no SQL."""

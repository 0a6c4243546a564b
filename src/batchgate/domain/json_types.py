"""How OpenAI's error messages name a JSON value's type. Shared by line validation (domain) and the request
errors (errors.py), so both say "but got an array instead" the same way."""

from __future__ import annotations


def json_type_name(value: object) -> str:
    """Name a JSON value's type the way OpenAI's error messages do ("a string", "an array")."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__

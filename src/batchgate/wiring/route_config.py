"""The routing file (`--config`): its keys, their types, and one ConfigError that names every problem in it.

A misspelt key read loosely is a silent misroute (`max_concurency = 8` used to leave a route adaptive up to
4096), so the file is read strictly at start: pydantic checks the shapes (extra='forbid', strict types, no
`"8"` for 8 and no `true` for 1), and this module turns its errors into lines that name the file, the route (by
index and name), the key and the reason, in the words of docs/configuration.md, never pydantic's own dump.

`api_key_env` must name a variable that is set and not empty: a route without its key gets a 401 for every
request, and a 4xx fails its line at once, so a whole batch would fail in seconds. Refusing to start is kinder
than that, in every process that reads the file (`serve`, `worker`, `run`).
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Mapping
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails

from batchgate.domain.batch import LINE_ENDPOINTS
from batchgate.engine.lanes import LANES
from batchgate.errors import ConfigError

NonEmpty = Annotated[str, Field(min_length=1)]
Positive = Annotated[int, Field(gt=0)]
_ENV_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _batch_endpoint(value: str) -> str:
    if value not in LINE_ENDPOINTS:
        hint = _did_you_mean(value, LINE_ENDPOINTS) or f"; expected one of {', '.join(LINE_ENDPOINTS)}"
        raise ValueError(f"{shown(value)} is not a batch endpoint{hint}")
    return value


Endpoint = Annotated[str, AfterValidator(_batch_endpoint)]

# What each key takes, for the message when a value has the wrong type or size.
EXPECTED = {
    "name": "a non-empty string",
    "type": '"http" or "local"',
    "models": "a model name or a non-empty list of model names and glob patterns",
    "url": "an http(s) URL",
    "urls": "a non-empty list of http(s) URLs (one per replica)",
    "api_key": "a non-empty string",
    "api_key_env": "the name of an environment variable",
    "max_concurrency": "a positive integer",
    "endpoints": "a non-empty list of batch endpoints",
    "chat_slots": "a positive integer",
    "embed_batch_size": "a positive integer",
    "messages": '"native" (the upstream serves /v1/messages) or "translate" (sent as chat completions)',
    "engine_metrics": '"auto", "vllm", "sglang", "llamacpp" or "off"',
    "engine_metrics_url": 'an http(s) URL, or a path starting with "/" (asked of each replica\'s host)',
    "batch_priority": 'an integer (sent as each request\'s "priority")',
    "neighbourly": "true or false",
}
EXPECTED_ITEM = {"models": "a non-empty string (a model name or glob pattern)", "urls": "an http(s) URL",
                 "endpoints": "one of " + ", ".join(LINE_ENDPOINTS)}
SECRET_KEYS = {"api_key"}  # their values are never repeated in a message


class _RouteConfig(BaseModel):
    """What every route has. `name` is filled in before validation (`upstream<index>`) when the file omits it."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    name: NonEmpty
    models: list[NonEmpty] = Field(default=["*"], min_length=1)
    max_concurrency: Positive | None = None
    endpoints: list[Endpoint] | None = Field(default=None, min_length=1)

    @field_validator("models", mode="before")
    @classmethod
    def _one_model(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value


class HttpRouteConfig(_RouteConfig):
    """An OpenAI-compatible server at `url`, or several replicas of one at `urls` (the same models behind each;
    one key for all)."""

    type: Literal["http"] = "http"
    url: str | None = None
    urls: list[str] | None = Field(default=None, min_length=1)
    api_key: NonEmpty | None = None
    api_key_env: str | None = None
    # How Anthropic Message Batches lines reach it (None: BATCHGATE_UPSTREAM_MESSAGES); see upstream/messages.py.
    messages: Literal["native", "translate"] | None = None
    # Which engine signals to poll (upstream/engine_poll.py); None: "off", or "auto" when engine_metrics_url is set.
    engine_metrics: Literal["auto", "vllm", "sglang", "llamacpp", "off"] | None = None
    engine_metrics_url: str | None = None
    # The `priority` every request of this route carries (upstream/http.py), the line's own replaced.
    batch_priority: Annotated[int, Field(ge=-(2**63), le=2**63 - 1)] | None = None
    # Yield to the engine's other traffic, which its metrics show (upstream/limiter.py, "A neighbour").
    neighbourly: bool = False

    @field_validator("url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        return None if value is None else _checked_url(value)

    @field_validator("urls")
    @classmethod
    def _base_urls(cls, value: list[str] | None) -> list[str] | None:
        if value is None:
            return None
        urls = [_checked_url(u, f"urls[{i}]: ") for i, u in enumerate(value)]
        seen: dict[str, int] = {}
        for i, u in enumerate(urls):
            if u in seen:
                raise ValueError(f"urls[{i}]: {shown(u)} is already urls[{seen[u]}]; list each replica once")
            seen[u] = i
        return urls

    @field_validator("engine_metrics_url")
    @classmethod
    def _metrics_url(cls, value: str | None) -> str | None:
        if value is None or (value.startswith("/") and "#" not in value):
            return value
        problem = url_problem(value)
        if problem:
            raise ValueError(f"{problem}; or give a path starting with \"/\", asked of each replica's host")
        return value

    @property
    def metrics_mode(self) -> Literal["auto", "vllm", "sglang", "llamacpp", "off"]:
        """`engine_metrics`, or its default: "auto" when `engine_metrics_url` is given or `neighbourly` is on, else
        "off"."""
        if self.engine_metrics is not None:
            return self.engine_metrics
        return "off" if self.engine_metrics_url is None and not self.neighbourly else "auto"

    @property
    def base_urls(self) -> list[str]:
        """The replicas' base URLs: `urls`, or the one `url`."""
        return list(self.urls) if self.urls is not None else [self.url or ""]

    @field_validator("api_key_env")
    @classmethod
    def _variable_is_set(cls, value: str | None, info: ValidationInfo) -> str | None:
        """Checked against the validation context's `environ` (parse_routing passes it), else os.environ."""
        if value is None:
            return None
        if not _ENV_NAME.fullmatch(value):  # maybe the key itself: never echo it
            raise ValueError("must be the name of an environment variable (letters, digits and _), not the key")
        environ: Mapping[str, str] = info.context["environ"] if info.context else os.environ
        if not environ.get(value):
            state = "is empty" if value in environ else "is not set"
            raise ValueError(f"environment variable {value} {state}: every request would go without its key")
        return value

    @model_validator(mode="after")
    def _one_key_source(self) -> HttpRouteConfig:
        if self.api_key is not None and self.api_key_env is not None:
            raise ValueError("give api_key or api_key_env, not both")
        if self.url is not None and self.urls is not None:
            raise ValueError("give url (one server) or urls (its replicas), not both")
        if self.url is None and self.urls is None:
            raise ValueError("missing key 'url' (required for an http route; or 'urls', its replicas)")
        if self.neighbourly and self.engine_metrics == "off":
            raise ValueError("neighbourly = true needs the engine's metrics, but engine_metrics = \"off\"")
        if self.engine_metrics_url is not None:
            if self.engine_metrics == "off":
                raise ValueError("engine_metrics_url is given but engine_metrics = \"off\"; drop one of them")
            if self.urls is not None and len(self.urls) > 1 and not self.engine_metrics_url.startswith("/"):
                raise ValueError("engine_metrics_url: with several urls give a path (e.g. \"/metrics\"): it is "
                                 "asked of each replica's host")
        return self

    def key(self, environ: Mapping[str, str]) -> str | None:
        """The bearer key: `api_key`, or the variable `api_key_env` names (checked to be set), or none."""
        if self.api_key_env is not None:
            return environ[self.api_key_env]
        return self.api_key


class LocalRouteConfig(_RouteConfig):
    """The in-process engine; None leaves the engine's own default (engine/local.py: 4 slots, batches of 32)."""

    type: Literal["local"]
    chat_slots: Positive | None = None
    embed_batch_size: Positive | None = None


RouteConfig = HttpRouteConfig | LocalRouteConfig
KINDS: dict[str, type[HttpRouteConfig] | type[LocalRouteConfig]] = {"http": HttpRouteConfig,
                                                                     "local": LocalRouteConfig}
TOP_KEYS = ("upstreams",)


def read_routing_file(path: Path, environ: Mapping[str, str]) -> list[RouteConfig]:
    """The routes of the file at `path`, in order; ConfigError naming every problem if there is one."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"cannot read routing file {path}: {e}") from e
    return parse_routing(text, str(path), environ)


def parse_routing(text: str, source: str, environ: Mapping[str, str]) -> list[RouteConfig]:
    """The routes of a routing file's `text`; `source` names it in messages. `environ` answers `api_key_env`."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise ConfigError(f"{source}: not valid TOML: {e}") from e
    problems = [f"unknown key {shown(k)}{_did_you_mean(k, TOP_KEYS) or ' (the file holds [[upstreams]] tables)'}"
                for k in data if k not in TOP_KEYS]
    tables = data.get("upstreams")
    if not isinstance(tables, list) or not tables or not all(isinstance(t, dict) for t in tables):
        single = " (write [[upstreams]], an array of tables, not [upstreams])" if isinstance(tables, dict) else ""
        problems.append(f"upstreams: expected one or more [[upstreams]] tables{single}")
        tables = []
    routes: list[RouteConfig] = []
    named: dict[str, int] = {}
    for i, table in enumerate(tables):
        where = _where(i, table)
        route, found = _parse_route(i, table, environ)
        problems += [f"{where}: {p}" for p in found]
        name = table.get("name", f"upstream{i}")
        if isinstance(name, str) and name in named:
            problems.append(f"{where}: name: {shown(name)} is already the name of upstreams[{named[name]}]")
        elif isinstance(name, str):
            named[name] = i
        if route is not None:
            routes.append(route)
    problems += _lane_names_taken(tables, named)
    if len(problems) == 1:
        raise ConfigError(f"{source}: {problems[0]}")
    if problems:
        raise ConfigError(f"{source}: {len(problems)} problems:\n" + "\n".join("  " + p for p in problems))
    return routes


def _lane_names_taken(tables: list[Any], named: dict[str, int]) -> list[str]:
    """A local route NAME is served as routes NAME/chat, NAME/embeddings and NAME/builtin (wiring/routes.py): no
    other route may have one of those names."""
    problems = []
    for i, table in enumerate(tables):
        name = table.get("name", f"upstream{i}")
        if table.get("type") == "local" and isinstance(name, str):
            for lane in LANES:
                other = named.get(f"{name}/{lane}")
                if other is not None:
                    problems.append(f"{_where(other, tables[other])}: name: {shown(f'{name}/{lane}')} is the name of "
                                    f"a lane of local route upstreams[{i}]; choose another")
    return problems


def _parse_route(i: int, table: dict[str, Any], environ: Mapping[str, str]) -> tuple[RouteConfig | None, list[str]]:
    kind = table.get("type", "http")
    model = KINDS.get(kind) if isinstance(kind, str) else None
    if model is None:
        return None, [f"type: must be {EXPECTED['type']}, not {shown(kind)}"]
    try:
        return model.model_validate({"name": f"upstream{i}", **table}, context={"environ": environ}), []
    except ValidationError as e:
        return None, [_reason(err, kind) for err in e.errors(include_url=False)]


def _reason(err: ErrorDetails, kind: str) -> str:
    """One pydantic error as `key: reason`, in the routing file's words."""
    loc = err["loc"]
    key = str(loc[0]) if loc else ""
    path = key + "".join(f"[{p}]" for p in loc[1:])
    if err["type"] == "extra_forbidden":
        return _unknown_key(key, kind)
    if err["type"] == "missing":
        return f"missing key {shown(key)} (required for an {kind} route)"
    if err["type"] == "value_error":
        reason = str(err["ctx"]["error"])
        return f"{path}: {reason}" if path else reason
    expected = EXPECTED_ITEM.get(key, "") if len(loc) > 1 else EXPECTED.get(key, "")
    got = "" if key in SECRET_KEYS else f", not {shown(err['input'])}"
    return f"{path}: must be {expected}{got}"


def _unknown_key(key: str, kind: str) -> str:
    other = "local" if kind == "http" else "http"
    if key in KINDS[other].model_fields:
        return f"key {shown(key)} applies only to {other} routes (this one is type = \"{kind}\")"
    return f"unknown key {shown(key)}{_did_you_mean(key, list(KINDS[kind].model_fields))}"


def _where(i: int, table: Any) -> str:
    name = table.get("name") if isinstance(table, dict) else None
    return f"upstreams[{i}] ({shown(name)})" if isinstance(name, str) and name else f"upstreams[{i}]"


def _did_you_mean(word: str, choices: Any) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {shown(close[0])}?)" if close else ""


def shown(value: Any) -> str:
    """A value as the reader wrote it (TOML and JSON agree on strings, numbers, booleans and arrays), cut short."""
    if isinstance(value, str):
        text = "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    else:
        text = json.dumps(value, default=str, ensure_ascii=False)
    return text if len(text) <= 80 else text[:77] + "..."


def _checked_url(value: str, where: str = "") -> str:
    problem = url_problem(value)
    if problem:
        raise ValueError(where + problem)
    return value.rstrip("/")


def url_problem(url: str) -> str | None:
    """None if `url` can be an upstream's base URL (http or https, a host, a valid port), else why not."""
    u = urlsplit(url)
    if u.username is not None or u.password is not None:  # checked first: the URL is not repeated
        return "a user or password in the URL is not sent; give the key as api_key or api_key_env"
    if u.scheme not in ("http", "https"):
        return f"{shown(url)} is not an http(s) URL"
    try:
        u.port  # noqa: B018 (raises on a port that is not a number from 0 to 65535)
    except ValueError:
        return f"{shown(url)} has an invalid port"
    if not u.hostname:
        return f"{shown(url)} has no host"
    if u.query or u.fragment:
        return f"{shown(url)} has a query or fragment; a base URL ends in its path (e.g. /v1)"
    return None

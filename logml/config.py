"""One typed configuration object, loaded from a pipeline TOML file and the environment.

``${VAR}`` and ``${VAR:-default}`` in string values are taken from the environment.
Unknown sections or keys and values of the wrong type are errors that name the key, so a
typo never silently falls back to a default. ``pipelines/default.toml`` documents every key.
"""
from __future__ import annotations

import dataclasses
import os
import re
import tomllib
import types
import typing
from dataclasses import dataclass, field
from pathlib import Path


def _mask_bits() -> dict:
    """The mask names, imported when first needed: masking loads numba, which `logml
    --help` and the CLI's start (before it holds off the garbage collector) do without."""
    from .masking import MASK_BITS
    return MASK_BITS


class ConfigError(Exception):
    pass


MIN_EPOCH = 631152000.0  # 1990-01-01: event times before it are absurd


@dataclass
class DecodeConfig:
    format: str = "auto"  # auto (a line opening a JSON object is JSON) | json | plain
    default_service: str = "default"
    max_line_bytes: int = 65536
    max_json_depth: int = 64
    # event times before 1990 or further than this in the future are absurd
    max_future_skew_s: float = 86400.0


@dataclass
class TemplateConfig:
    masks: list[str] = field(default_factory=lambda: list(_mask_bits()))
    similarity: float = 0.7
    max_templates_per_service: int = 5000
    shape_cache_entries: int = 1_000_000


@dataclass
class WindowConfig:
    seconds: int = 60
    allowed_lateness_windows: int = 2
    # a service lagging the stream's progress by this much is silent: its windows close
    idle_windows: int = 3
    # empty windows emitted in a row before a service's windows jump to its next data
    max_gap_windows: int = 10
    # a service's clock is the quorum-th largest of its last 32 event times
    clock_quorum: int = 5
    # events further than this from their service's clock are held until confirmed
    # (ahead) or dead-lettered absurd_timestamp (behind)
    max_ahead_windows: int = 60
    error_levels: list[str] = field(default_factory=lambda: ["ERROR", "FATAL", "CRITICAL"])


@dataclass
class ScoreConfig:
    half_life_windows: float = 30.0
    warmup_windows: int = 30
    # scores 0-100: 25 (s - 1) for a tail probability 10^-s corrected for the service's
    # number of series; 50 = 1e-3, 75 = 1e-4 (Elastic ML's bands)
    warning_score: float = 62.5
    critical_score: float = 75.0
    error_ratio_floor: float = 0.02
    # learn daily and weekly rhythm per series; used where it predicts better than flat
    seasonal: bool = True
    new_template_min_lines: int = 3
    incident_gap_windows: int = 1
    sample_lines: int = 3


@dataclass
class OutputConfig:
    dir: str = "logml-out"
    write_logs: bool = False
    snapshot: str = ""  # state snapshot of embedded runs (as --state); empty = none
    # with a state file: outputs synced and state saved this often (wall time) and at the end
    checkpoint_every_s: float = 5.0


@dataclass
class KafkaConfig:
    bootstrap: str = "${KAFKA_BOOTSTRAP:-127.0.0.1:19092}"
    topic: str = "logs.raw"
    dlq_topic: str = "logs.dlq"
    state_topic: str = "logml.state"
    group: str = "logml"
    batch_size: int = 5000
    poll_timeout_s: float = 0.5
    # a member that sends no heartbeat for this long is out; its partitions move on
    session_timeout_s: float = 10.0
    # each owned partition's state goes to state_topic this often (a crash replays this much)
    checkpoint_interval_s: float = 5.0
    # sinks flushed (every bulk acknowledged) and offsets committed at most this often;
    # 0 = after every batch. In between, indexing overlaps processing.
    commit_interval_s: float = 0.0
    # reading state_topic stalled this long = "could not read" (retried), never "no state"
    state_read_stall_s: float = 15.0


@dataclass
class ElasticsearchConfig:
    url: str = "${ES_URL:-http://127.0.0.1:19200}"
    index_prefix: str = "logml"
    write_logs: bool = True
    bulk_max_docs: int = 5000
    bulk_max_bytes: int = 8_000_000  # a bulk request holds at most this many bytes
    max_in_flight: int = 3  # bulk requests sent at once while the pipeline goes on
    compress: bool = False  # gzip request bodies (costs CPU; for a slow network only)
    max_retries: int = 8
    unavailable_timeout_s: float = 30.0  # then the consumer pauses and retries, losing nothing


@dataclass
class MetricsConfig:
    # N, or a range "N-M" (the first free port is taken: several consumers on one host);
    # 0 = no /metrics endpoint
    port: int | str = 0
    address: str = "127.0.0.1"  # where /metrics listens
    top_templates: int = 10


@dataclass
class Config:
    source: str = "file"  # file | kafka
    sink: str = "jsonl"  # jsonl | elasticsearch
    decode: DecodeConfig = field(default_factory=DecodeConfig)
    template: TemplateConfig = field(default_factory=TemplateConfig)
    window: WindowConfig = field(default_factory=WindowConfig)
    score: ScoreConfig = field(default_factory=ScoreConfig)
    output: OutputConfig = field(default_factory=OutputConfig)
    kafka: KafkaConfig = field(default_factory=KafkaConfig)
    elasticsearch: ElasticsearchConfig = field(default_factory=ElasticsearchConfig)
    metrics: MetricsConfig = field(default_factory=MetricsConfig)

    def validate(self) -> "Config":
        def need(cond, key, why):
            if not cond:
                raise ConfigError(f"{key}: {why}")
        need(self.source in ("file", "kafka"), "source", "must be 'file' or 'kafka'")
        need(self.sink in ("jsonl", "elasticsearch"), "sink", "must be 'jsonl' or 'elasticsearch'")
        need(self.decode.format in ("auto", "json", "plain"), "decode.format",
             "must be 'auto', 'json' or 'plain'")
        need(self.decode.max_line_bytes >= 64, "decode.max_line_bytes", "must be at least 64")
        unknown = [m for m in self.template.masks if m not in _mask_bits()]
        need(not unknown, "template.masks", f"unknown {unknown}; known: {list(_mask_bits())}")
        need(1 <= self.decode.max_json_depth <= 10000, "decode.max_json_depth",
             "must be in 1..10000")
        need(self.decode.max_future_skew_s >= 0, "decode.max_future_skew_s", "must be 0 or more")
        need(self.decode.default_service.strip() != "", "decode.default_service",
             "must name a service")
        need(0.0 < self.template.similarity <= 1.0, "template.similarity", "must be in (0, 1]")
        need(self.template.max_templates_per_service >= 1, "template.max_templates_per_service",
             "must be at least 1")
        need(self.template.shape_cache_entries >= 1, "template.shape_cache_entries",
             "must be at least 1")
        need(1 <= self.window.seconds <= 86400, "window.seconds",
             "must be in 1..86400 (a second to a day)")
        need(self.window.allowed_lateness_windows >= 0, "window.allowed_lateness_windows",
             "must be 0 or more")
        need(self.window.idle_windows >= 0, "window.idle_windows", "must be 0 or more")
        need(self.window.max_gap_windows >= 1, "window.max_gap_windows", "must be at least 1")
        need(1 <= self.window.clock_quorum <= 16, "window.clock_quorum", "must be in 1..16")
        need(self.window.max_ahead_windows > self.window.allowed_lateness_windows,
             "window.max_ahead_windows", "must be more than window.allowed_lateness_windows")
        need(self.score.half_life_windows > 0, "score.half_life_windows", "must be positive")
        need(self.score.warmup_windows >= 0, "score.warmup_windows", "must be 0 or more")
        need(0 <= self.score.error_ratio_floor <= 1, "score.error_ratio_floor",
             "must be in [0, 1] (a share of lines)")
        need(self.score.new_template_min_lines >= 1, "score.new_template_min_lines",
             "must be at least 1")
        need(self.score.incident_gap_windows >= 0, "score.incident_gap_windows",
             "must be 0 or more")
        need(self.score.sample_lines >= 0, "score.sample_lines", "must be 0 or more")
        need(0 < self.score.critical_score < 100, "score.critical_score",
             "must be above 0 and below 100")
        need(0 < self.score.warning_score <= self.score.critical_score,
             "score.warning_score", "must be positive and at most score.critical_score")
        need(self.output.checkpoint_every_s >= 0, "output.checkpoint_every_s",
             "must be 0 (every block) or more")
        need(self.output.dir.strip() != "", "output.dir", "must name a directory")
        need(port_range(self.metrics.port) is not None, "metrics.port",
             "must be a port number or a range like \"9108-9117\"")
        need(self.metrics.top_templates >= 1, "metrics.top_templates", "must be at least 1")
        k = self.kafka
        for name in ("bootstrap", "topic", "dlq_topic", "state_topic", "group"):
            need(self.source != "kafka" or getattr(k, name).strip() != "", f"kafka.{name}",
                 "must not be empty")
        need(1 <= k.batch_size <= 1_000_000, "kafka.batch_size",
             "must be in 1..1000000 (the Kafka client's limit per consume)")
        need(k.poll_timeout_s > 0, "kafka.poll_timeout_s", "must be positive")
        need(k.commit_interval_s >= 0, "kafka.commit_interval_s",
             "must be 0 (every batch) or more")
        need(1 <= k.session_timeout_s <= 3600, "kafka.session_timeout_s",
             "must be in 1..3600 (the Kafka client's range; brokers allow up to 1800 unless "
             "group.max.session.timeout.ms is raised)")
        need(k.checkpoint_interval_s > 0, "kafka.checkpoint_interval_s", "must be positive")
        need(k.state_read_stall_s > 0, "kafka.state_read_stall_s", "must be positive")
        es = self.elasticsearch
        problem = url_problem(es.url) if self.sink == "elasticsearch" else None
        need(problem is None, "elasticsearch.url", f"{problem}")
        problem = index_prefix_problem(es.index_prefix)
        need(problem is None, "elasticsearch.index_prefix", f"{problem}")
        need(es.bulk_max_docs >= 1, "elasticsearch.bulk_max_docs", "must be at least 1")
        need(es.bulk_max_bytes >= 1024, "elasticsearch.bulk_max_bytes", "must be at least 1024")
        need(es.max_in_flight >= 1, "elasticsearch.max_in_flight", "must be at least 1")
        need(es.max_retries >= 0, "elasticsearch.max_retries", "must be 0 or more")
        need(es.unavailable_timeout_s > 0, "elasticsearch.unavailable_timeout_s",
             "must be positive")
        return self


def url_problem(url: str, example: str = "http://127.0.0.1:9200",
                need_port: bool = True) -> str | None:
    """What is wrong with a server URL (None: nothing), checked before a client is made:
    the client's own complaint is a traceback. The Elasticsearch client wants the port of
    an http URL spelt out (need_port)."""
    from urllib.parse import urlsplit
    example = f"like {example}"
    try:
        u = urlsplit(url.strip())
        port = u.port
    except ValueError:
        return f"{url!r} is not a URL {example}"
    if u.scheme not in ("http", "https") or not u.hostname:
        return f"{url!r} is not a URL {example}"
    if need_port and port is None and u.scheme == "http":
        return f"{url!r} names no port: add it, {example}"
    return None


_INDEX_PREFIX = re.compile(r"[a-z0-9][a-z0-9._+-]*")


def index_prefix_problem(prefix: str) -> str | None:
    """What Elasticsearch would refuse in an index name prefix (None: nothing)."""
    if not _INDEX_PREFIX.fullmatch(prefix):
        return (f"{prefix!r} is not a valid index name prefix: lowercase letters, digits "
                "and . _ + -, starting with a letter or digit")
    return None


def port_range(spec: int | str) -> range | None:
    """The ports a ``metrics.port`` value allows (empty for 0 = off); None when invalid."""
    if isinstance(spec, int):
        return range(0) if spec == 0 else range(spec, spec + 1) if 0 < spec < 65536 else None
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+)\s*)?", spec)
    if not m:
        return None
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if lo == hi == 0:
        return range(0)
    return range(lo, hi + 1) if 0 < lo <= hi < 65536 else None


_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_REF = re.compile(r"\$\{[^}]*\}")  # any ${...}: a _VAR, or a mistake like ${}


class _EnvError(ConfigError):
    """A ${...} of a value that names no set environment variable."""


def interpolate(value: str, env: typing.Mapping[str, str] | None = None,
                key: str | None = None) -> str:
    """``value`` with its ``${VAR}`` and ``${VAR:-default}`` taken from ``env`` (the
    environment); ``key`` names the value in errors."""
    env = os.environ if env is None else env
    where = f"{key}: " if key else ""

    def sub(m):
        ref = _VAR.fullmatch(m.group(0))
        if ref is None:
            raise _EnvError(f"{where}{m.group(0)} names no environment variable: write "
                            f"${{NAME}} or ${{NAME:-default}}")
        name, default = ref.groups()
        if name in env and env[name] != "":
            return env[name]
        if default is not None:
            return default
        raise _EnvError(f"{where}environment variable {name} is not set (use "
                        f"${{{name}:-default}} for a default)")
    return _REF.sub(sub, value)


def _coerce(value, typ, key: str, env):
    origin = typing.get_origin(typ)
    if origin is types.UnionType:  # int | str: the first type that takes the value
        options = typing.get_args(typ)
        for option in options:
            try:
                return _coerce(value, option, key, env)
            except _EnvError:
                raise  # a str option took the value, but its ${...} cannot be resolved
            except ConfigError:
                pass
        raise ConfigError(f"{key}: expected {' or '.join(t.__name__ for t in options)}, "
                          f"got {value!r}")
    if origin is list:
        (inner,) = typing.get_args(typ)
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {type(value).__name__}")
        return [_coerce(v, inner, f"{key}[{i}]", env) for i, v in enumerate(value)]
    if typ is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
        return value
    if typ is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{key}: expected an integer, got {value!r}")
        if not -2**63 <= value < 2**63:  # TOML's integers are 64-bit; tomllib takes any
            raise ConfigError(f"{key}: {value} is too large")
        return value
    if typ is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise ConfigError(f"{key}: expected a number, got {value!r}")
        return float(value)
    if typ is str:
        if not isinstance(value, str):
            raise ConfigError(f"{key}: expected a string, got {value!r}")
        return interpolate(value, env, key)
    raise ConfigError(f"{key}: unsupported type {typ}")


def _build(cls, data: dict, prefix: str, env):
    hints = typing.get_type_hints(cls)
    names = {f.name for f in dataclasses.fields(cls)}
    for key in data:
        if key not in names:
            import difflib
            where = f"[{prefix}]" if prefix else "the top level"
            close = difflib.get_close_matches(key, names, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigError(f"unknown key {key!r} in {where}{hint}; known: {sorted(names)}")
    kwargs = {}
    for f in dataclasses.fields(cls):
        key = f"{prefix}.{f.name}" if prefix else f.name
        typ = hints[f.name]
        if dataclasses.is_dataclass(typ):
            sub = data.get(f.name, {})
            if not isinstance(sub, dict):
                raise ConfigError(f"{key}: expected a [{key}] table")
            kwargs[f.name] = _build(typ, sub, key, env)
        elif f.name in data:
            kwargs[f.name] = _coerce(data[f.name], typ, key, env)
        else:
            default = f.default_factory() if f.default_factory is not dataclasses.MISSING \
                else f.default
            kwargs[f.name] = interpolate(default, env, key) if isinstance(default, str) \
                else default
    return cls(**kwargs)


def load(path: str | Path | None = None, env: typing.Mapping[str, str] | None = None,
         overrides: dict | None = None) -> Config:
    """Config from a pipeline file (or defaults), environment and command-line overrides."""
    data: dict = {}
    if path is not None:
        p = Path(path)
        if not p.exists():
            raise ConfigError(f"pipeline file {p} not found")
        try:
            data = tomllib.loads(p.read_text(encoding="utf-8"))
        except UnicodeDecodeError as e:
            raise ConfigError(f"{p}: not a TOML text file (not UTF-8 at byte {e.start}): "
                              "give the pipeline file") from None
        except tomllib.TOMLDecodeError as e:
            raise ConfigError(f"{p}: not valid TOML: {e}") from None
    for dotted, value in (overrides or {}).items():
        node = data
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = value
    return _build(Config, data, "", env).validate()

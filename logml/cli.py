"""The ``logml`` command line."""
from __future__ import annotations

import argparse
import errno
import gc
import math
import os
import stat
import sys
from contextlib import contextmanager

from . import __version__
from .config import MIN_EPOCH, ConfigError, load


class UsageError(Exception):
    """A command given wrongly; the message says what to give."""


class _Once(argparse._StoreAction):
    """An option with a value given twice is refused: argparse keeps the last one, so
    `--input a.log --input b.log` read b.log alone and said nothing."""

    def __call__(self, parser, namespace, values, option_string=None):
        seen = namespace.__dict__.setdefault("_given", set())
        if self.dest in seen:
            parser.error(f"{'/'.join(self.option_strings)} given twice; it takes one value"
                         + (" (several files: give them in time order through a pipe, "
                            "`zcat -f app.log.2.gz app.log.1 app.log | logml run --input -`)"
                            if self.dest == "input" else ""))
        seen.add(self.dest)
        super().__call__(parser, namespace, values, option_string)


class _Parser(argparse.ArgumentParser):
    """argparse whose usage errors are one line like every operator error, and whose
    options take their value once."""

    def error(self, message):
        sys.stderr.write(f"logml: error: {message}; see `{self.prog} --help`\n")
        sys.exit(2)

    def add_argument(self, *names, **kw):
        if names and names[0].startswith("-") and kw.get("action", "store") == "store":
            kw["action"] = _Once
        return super().add_argument(*names, **kw)


def _number(kind, low: float, strict: bool, what: str, high: float = math.inf):
    """An argparse type: a number of ``kind`` above ``low`` (or at least, if not strict)
    and at most ``high``."""
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if value != value or value < low or (strict and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}")
        return value
    parse.__name__ = what
    return parse


def _given(text: str) -> str:
    """An argparse type refusing an empty value: `--state "$STATE"` with STATE unset
    must not quietly mean "no state" (or --output "" the default directory)."""
    if not text.strip():
        raise argparse.ArgumentTypeError("empty: give a value (an unset shell variable?)")
    return text


def _start_time(text: str) -> float:
    """An argparse type for a UTC time: ISO-8601 (2025-11-25T00:00:00Z, a date alone is
    its midnight) or epoch seconds."""
    from datetime import datetime, timezone
    t = text.strip()
    try:
        value = float(t)
    except ValueError:
        try:
            dt = datetime.fromisoformat(t[:-1] + "+00:00" if t[-1:] in ("Z", "z") else t)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"{text!r} is not a time: give ISO-8601 UTC (2025-11-25T00:00:00Z) or epoch "
                f"seconds") from None
        if dt.tzinfo is None:
            dt = dt.replace(tzinfo=timezone.utc)
        value = dt.timestamp()
    # one logml run takes: not before 1990 (dead-lettered absurd_timestamp), not past 2100
    if value != value or value >= _LAST_START:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a time before 2100: give ISO-8601 UTC (2025-11-25T00:00:00Z) "
            f"or epoch seconds")
    if value < MIN_EPOCH:
        raise argparse.ArgumentTypeError(
            f"{text!r} is before 1990-01-01, whose events logml run refuses "
            f"(absurd_timestamp): give a later time (2025-11-25T00:00:00Z)")
    return value


_LAST_START = 4102444800.0  # 2100-01-01
_MAX_HOURS = 24 * 366
_POSITIVE = _number(float, 0, True, "a positive number")
_HOURS = _number(float, 1 / 3600, False, f"a positive number of hours, at least 1/3600 (a "
                 f"second) and at most {_MAX_HOURS} (366 days)", high=_MAX_HOURS)
_RATE = _number(float, 0, True, "a positive number up to 1000000", high=1e6)
_SEED = _number(int, 0, False, "a whole number from 0 to 2**63 - 1", high=2**63 - 1)
_POSITIVE_INT = _number(int, 0, True, "a positive whole number")
_COUNT = _number(int, 0, False, "a whole number, 0 or more")


@contextmanager
def _loading():
    """A command's imports (numba and its type system: about 100k objects that live as
    long as the process) with the cyclic collector held off, then frozen out of its view:
    otherwise every full collection walks them all again (a sixth of a `logml parse`)."""
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.enable()


def _stdin_hint(command: str, path: str) -> None:
    """`-` with nothing piped in reads the terminal: say so, or the command seems to hang."""
    if path == "-" and sys.stdin is not None and sys.stdin.isatty():
        print(f"logml {command}: reading lines from the terminal (Ctrl-D ends); pipe them "
              f"in or give a file instead of -", file=sys.stderr, flush=True)


def cmd_parse(args) -> int:
    _stdin_hint("parse", args.file)
    with _loading():
        from .parse import run
        config = load(args.config)
    return run(args.file, args.format, args.json, config)


def cmd_run(args) -> int:
    overrides = {}
    if args.output:
        overrides["output.dir"] = args.output
    if args.metrics_port is not None:
        overrides["metrics.port"] = args.metrics_port
    if args.write_logs:
        overrides["output.write_logs"] = True
    if args.format:
        overrides["decode.format"] = args.format
    with _loading():
        config = load(args.config, overrides=overrides)
    if config.source == "kafka" and not args.input:
        embedded_only = [flag for flag, given in (
            ("--state", args.state), ("--keep-open", args.keep_open),
            ("--follow", args.follow), ("--service", args.service)) if given]
        if embedded_only:
            raise UsageError(f"{', '.join(embedded_only)}: for --input runs only; a Kafka "
                             f"consumer keeps its state in kafka.state_topic and takes "
                             f"service names from the events: drop "
                             f"{'them' if len(embedded_only) > 1 else 'it'}")
        _check_metrics_port(config)  # a local mistake, said before any server is asked
        _check_kafka(config.kafka.bootstrap)
        if config.sink == "elasticsearch":
            _check_templates(config.elasticsearch.url, config.elasticsearch.index_prefix)
        with _loading():
            from .streaming import run_kafka
        return run_kafka(config, exit_when_idle=args.exit_when_idle)
    if not args.input:
        raise UsageError("give --input FILE|- (embedded mode) or -c PIPELINE.toml with "
                         "source = \"kafka\"")
    if args.exit_when_idle is not None:
        raise UsageError("--exit-when-idle is for Kafka mode; an --input run ends at the "
                         "end of its input (or with SIGTERM/Ctrl-C under --follow): drop it")
    if config.sink != "jsonl" or config.source != "file":
        # the pipeline file's settings apply to the file, but not its Kafka/Elasticsearch
        # ends: say so rather than leave the operator looking in Elasticsearch
        ends = ([f"--input replaces source = \"{config.source}\""]
                if config.source != "file" else []) + \
            ([f"sink = \"{config.sink}\" is for Kafka mode only"]
             if config.sink != "jsonl" else [])
        print(f"logml run: note: {'; '.join(ends)}: writing JSON lines to "
              f"{config.output.dir}/", file=sys.stderr, flush=True)
    _stdin_hint("run", args.input)
    with _loading():
        from .run import Runner
    state = args.state or config.output.snapshot or None
    if args.follow and args.input == "-":
        raise UsageError("--follow reads a file as it grows; stdin is read as it comes "
                         "anyway: drop --follow")
    runner = Runner(config, args.input, state, args.keep_open, args.service,
                    follow=args.follow)
    pipe = runner.run()
    s = pipe.stats
    # every line read is counted in a window or dead-lettered; a too_long one is both
    counted = sum(s.lines.values()) - s.window_dead_lettered
    cut = s.invalid.get("too_long", 0)
    read = counted + s.dead_lettered - cut
    anomalies = sum(s.anomalies.values())
    kept = "windows left open" if state else "open windows not written (no --state keeps them)"
    stopped = f"stopped by {runner.stopped_by}, {kept}: " if runner.stopped_by else ""
    saved = f"; state saved to {state}" if state and runner.checkpoints else ""
    both = f" ({cut:,} of them too long: counted cut)" if cut else ""
    print(f"logml run: {stopped}{read:,} lines: {counted:,} counted, {s.dead_lettered:,} "
          f"dead-lettered{both}; {len(pipe.engine.templates):,} templates, {anomalies} "
          f"anomalies -> {config.output.dir}/{saved}", file=sys.stderr)
    # every line with a message, late ones too (timeless lines beside late ones are late)
    events = sum(s.lines.values())
    if args.input != "-" and not args.follow and s.timeless > events // 2:
        print(f"logml run: note: {s.timeless:,} of {events:,} lines had no time logml "
              "reads, so they took their neighbours' (or, with none, this run's): windows "
              "of a file mean little without times. The formats it reads are in "
              "docs/event-time.md; "
              "ship JSON with @timestamp, or put an ISO 8601 time at the head of each line",
              file=sys.stderr)
    return 0


def _check_metrics_port(config) -> None:
    """MetricsPortError now when no port of metrics.port can be served; the consumer binds
    it again itself."""
    from .metrics import Stats, serve
    server = serve(Stats(), config.metrics.port, config.metrics.address)
    if server is not None:
        server.shutdown()
        server.server_close()


def _refusing(bootstrap: str) -> str | None:
    """Why no bootstrap server takes a TCP connection when every one refuses at once
    (nothing listens: the common mistake, answered without waiting for the metadata
    timeout); None when one answers or it cannot be told quickly."""
    import socket
    why = None
    for server in bootstrap.split(","):
        host, _, port = server.strip().rpartition("://")[2].rpartition(":")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=3):
                return None
        except ConnectionRefusedError as e:
            why = why or f"{host}:{port}: {e.strerror}"
        except (OSError, ValueError):
            return None  # unresolvable, filtered, no port: the client's answer is better
    return why


def _check_kafka(bootstrap: str, timeout_s: float = 15.0) -> None:
    """Kafka out of reach at the start is one line, not the consumer's clients logging a
    failed connection every few milliseconds (hundreds of lines) before it: a probe whose
    client logs to nowhere asks for the cluster's metadata first."""
    import logging

    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient
    def unreachable(why: str) -> UsageError:
        return UsageError(f"cannot reach Kafka at {bootstrap} ({why}): start it, or give its "
                          f"address (KAFKA_BOOTSTRAP, or kafka.bootstrap in the pipeline file)")

    refused = _refusing(bootstrap)
    if refused:
        raise unreachable(refused)
    quiet = logging.getLogger("logml.kafka_probe")
    quiet.propagate = False
    quiet.addHandler(logging.NullHandler())
    try:
        admin = AdminClient({"bootstrap.servers": bootstrap, "logger": quiet})
        admin.list_topics(timeout=timeout_s)
    except KafkaException as e:
        err = e.args[0] if e.args else None
        why = err.str() if hasattr(err, "str") else str(e)
        raise unreachable(why) from None


def _check_templates(url: str, prefix: str) -> None:
    """Say so when `logml setup` was not run for this prefix: the daily indices would be
    created with guessed mappings that stay wrong until they are deleted. A warning, not
    an error: Elasticsearch out of reach is the sink's to wait for (it pauses, loses
    nothing), and a consumer may rightly start before setup ran. Also keeps the
    transport's per-attempt warnings out of the log while Elasticsearch is down (the
    consumer logs each pause with the URL)."""
    import logging

    from elasticsearch import ApiError, Elasticsearch, TransportError

    from .setup import KINDS
    logging.getLogger("elastic_transport.node_pool").setLevel(logging.ERROR)
    client = Elasticsearch(url, request_timeout=5, max_retries=0)
    try:
        found = client.options(ignore_status=404).indices.get_index_template(
            name=f"{prefix}-*")
        names = {t["name"] for t in found.get("index_templates", [])}
    except (ApiError, TransportError):
        return
    finally:
        client.close()
    missing = [f"{prefix}-{k}" for k in KINDS if f"{prefix}-{k}" not in names]
    if missing:
        print(f"logml run: warning: Elasticsearch at {url} has no index template "
              f"{', '.join(missing)}: run `logml setup --es {url} --prefix {prefix}` first, "
              f"or new indices get guessed mappings", file=sys.stderr, flush=True)


def cmd_generate(args) -> int:
    from .generate import write
    if args.hard:
        from .hardgen import hours_problem
        problem = hours_problem(args.hours, args.services, _MAX_HOURS)
        if problem:
            raise UsageError(problem)
    events, labels = write(args.out, args.seed, args.hours, args.services, start=args.start,
                           rate=args.rate, hard=args.hard, progress=True)
    print(f"logml generate: {events} and {labels}", file=sys.stderr)
    return 0


def cmd_eval(args) -> int:
    import json

    from .evaluate import LabelsError, evaluate, format_report, load_anomalies
    _stdin_hint("eval", args.anomalies)
    with open(args.labels, "rb") as f:
        data = f.read()
    try:
        labels = json.loads(data)
    except ValueError as e:
        raise UsageError(f"{args.labels}: not JSON ({e}): give the labels.json that logml "
                         f"generate wrote") from None
    if not (isinstance(labels, dict) and isinstance(labels.get("incidents"), list)):
        raise UsageError(f"{args.labels}: not a labels file (no \"incidents\" list): give "
                         f"the labels.json that logml generate wrote")
    try:
        anomalies = load_anomalies(args.anomalies)
    except ValueError as e:
        raise UsageError(f"{str(e).splitlines()[0]}: give the anomalies.jsonl that logml "
                         f"run wrote") from None
    if anomalies and not any(isinstance(d, dict) and (
            isinstance((d.get("logml") or {}).get("anomaly"), dict)
            or "logml.anomaly.type" in d) for d in anomalies):
        raise UsageError(f"{args.anomalies}: holds no anomaly documents (no logml.anomaly): "
                         f"give the anomalies.jsonl that logml run wrote")
    try:
        result = evaluate(anomalies, labels, args.window_seconds)
    except LabelsError as e:
        raise UsageError(f"{args.labels}: {e}: give the labels.json that logml generate "
                         f"wrote (or mend it)") from None
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(format_report(result))
    return 0


def cmd_setup(args) -> int:
    from .config import index_prefix_problem, interpolate, url_problem
    from .setup import run_setup
    es = interpolate(args.es, key="--es")
    for flag, problem in (("--es", url_problem(es)),
                          ("--kibana", args.kibana and url_problem(
                              args.kibana, "http://127.0.0.1:5601", need_port=False)),
                          ("--prefix", index_prefix_problem(args.prefix))):
        if problem:
            raise UsageError(f"{flag}: {problem}")
    return run_setup(es, args.kibana, args.out, args.prefix, args.replicas, args.ingest_mode)


def cmd_demo(args) -> int:
    from .demo import run_demo
    return run_demo(args.out, seed=args.seed)


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(
        prog="logml",
        description="Log lines to templates, windows and anomalies. Start with `logml demo`.",
        epilog="`logml COMMAND --help` describes each command. Errors are one line "
        "`logml: error: ...` with exit status 2; --debug adds the traceback.")
    p.add_argument("--version", action="version", version=f"logml {__version__}")
    p.add_argument("--debug", action="store_true",
                   help="show a traceback on errors (for a bug report)")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--debug", action="store_true", default=argparse.SUPPRESS,
                        help=argparse.SUPPRESS)
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    def add(name, **kw):
        return sub.add_parser(name, parents=[common], **kw)

    sp = add("demo", help="synthetic logs with a known incident through the whole "
             "pipeline: anomaly table and an HTML report with a plot",
             description="Generate a few hours of multi-service logs with labelled "
             "incidents, run the whole pipeline on them (no services needed), "
             "print what was found against the truth and write a report.")
    sp.add_argument("--out", default="logml-demo", type=_given, help="report directory (default logml-demo)")
    sp.add_argument("--seed", type=_SEED, default=7, help="scenario seed (default 7)")
    sp.set_defaults(func=cmd_demo)

    sp = add("run", help="the pipeline on a file or stdin (JSONL out), or as "
             "configured (e.g. Kafka to Elasticsearch)",
             description="Embedded: logml run --input FILE|- --output DIR (--state, "
             "--keep-open, --follow and --service are for these runs). Configured: logml run "
             "-c pipelines/kafka.toml (--exit-when-idle is for these).")
    sp.add_argument("--input", metavar="FILE|-", type=_given, help="log file, or - for stdin")
    sp.add_argument("--output", metavar="DIR", type=_given, help="directory for windows.jsonl, "
                    "anomalies.jsonl, dlq.jsonl (and logs.jsonl); default logml-out")
    sp.add_argument("-c", "--config", metavar="PIPELINE.toml", type=_given,
                    help="pipeline file (default: the defaults documented in "
                    "pipelines/default.toml)")
    sp.add_argument("--metrics-port", type=_COUNT, metavar="N",
                    help="serve Prometheus metrics on port N at metrics.address "
                    "(127.0.0.1 unless set), path /metrics (default metrics.port: 0 = off)")
    sp.add_argument("--write-logs", action="store_true",
                    help="also write every enriched line to logs.jsonl")
    sp.add_argument("--format", choices=["auto", "json", "plain"],
                    help="input lines: JSON events, plain text, or auto: both mixed "
                    "(default decode.format: auto)")
    sp.add_argument("--service", type=_given, help="service name for lines that carry none "
                    "(default: decode.default_service)")
    sp.add_argument("--state", metavar="FILE", type=_given, help="restore state from FILE if it exists; "
                    "checkpoint outputs and state there as the run goes (a killed run "
                    "rerun with the same FILE writes no line twice)")
    sp.add_argument("--keep-open", action="store_true",
                    help="leave the last windows open at end of input (resume later with "
                    "--state)")
    sp.add_argument("--follow", action="store_true",
                    help="keep reading FILE as it grows and across rotation, like tail -F "
                    "(stop with SIGTERM or Ctrl-C; windows stay open in --state)")
    sp.add_argument("--exit-when-idle", type=_POSITIVE, metavar="SECONDS",
                    help="Kafka mode: stop cleanly after SECONDS without new records "
                    "(default: run until SIGTERM or Ctrl-C)")
    sp.set_defaults(func=cmd_run)

    sp = add("parse", help="one row per line: line_no, template_id, template",
             description="Template every line of FILE (or - for stdin) and print one "
             "row per input line, in order.")
    sp.add_argument("file", metavar="FILE|-", type=_given, help="log file, or - for stdin")
    sp.add_argument("--format", choices=["csv", "jsonl"], default="csv",
                    help="csv: line_no,template_id,template; jsonl adds params (default csv)")
    sp.add_argument("--json", action="store_true",
                    help="input lines are JSON events (Filebeat, Logstash), not plain text")
    sp.add_argument("-c", "--config", metavar="PIPELINE.toml", type=_given,
                    help="pipeline file with [template] masks and thresholds (default: "
                    "pipelines/default.toml's)")
    sp.set_defaults(func=cmd_parse)

    sp = add("generate", help="synthetic multi-service logs with labelled incidents",
             description="Write OUT/events.jsonl (Filebeat ECS events) and "
             "OUT/labels.json; deterministic by seed and start.")
    sp.add_argument("--seed", type=_SEED, default=1, help="scenario seed (default 1)")
    sp.add_argument("--hours", type=_HOURS, default=6.0,
                    help="hours of logs (default 6)")
    sp.add_argument("--services", type=_POSITIVE_INT, default=4,
                    help="number of services (default 4)")
    sp.add_argument("--rate", type=_RATE, default=10.0,
                    help="mean lines/s per service (default 10; the file holds about "
                    "hours x 3600 x services x rate lines)")
    sp.add_argument("--start", metavar="TIME", type=_start_time,
                    help="time of the first line, UTC: ISO-8601 (2025-11-25T00:00:00Z) or "
                    "epoch seconds (default: the whole hours before now; with --hard "
                    "2025-11-25T00:00:00Z)")
    sp.add_argument("--hard", action="store_true",
                    help="bursty, seasonal traffic with many small templates, holidays, "
                    "gradual and seasonal incidents (days of it: try --hours 48 --rate 2)")
    sp.add_argument("--out", default="logml-generated", metavar="DIR", type=_given,
                    help="output directory (default logml-generated)")
    sp.set_defaults(func=cmd_generate)

    sp = add("setup", help="index templates, ILM policy, Kibana saved objects",
             description="Install index templates (and an ILM policy where the "
             "server supports it) in Elasticsearch, write the Kibana saved objects "
             "as ndjson and, with --kibana, import them. Reports what it skipped.")
    sp.add_argument("--es", default="${ES_URL:-http://127.0.0.1:19200}", metavar="URL",
                    help="Elasticsearch URL (default $ES_URL or http://127.0.0.1:19200)")
    sp.add_argument("--kibana", metavar="URL", type=_given,
                    help="Kibana URL to import the saved objects")
    sp.add_argument("--out", default=".", metavar="DIR", type=_given,
                    help="where to write kibana-objects.ndjson (default .)")
    sp.add_argument("--prefix", default="logml", type=_given, help="index prefix (default logml)")
    sp.add_argument("--replicas", type=_COUNT, metavar="N", help="replicas per index "
                    "(default: 0 on a one-node cluster, else 1)")
    mode = sp.add_mutually_exclusive_group()
    mode.add_argument("--backfill", dest="ingest_mode", action="store_const", const="backfill",
                      help="only switch the per-line indices to bulk loading: no refresh, no "
                      "replicas (docs/elasticsearch.md); --live when the replay is done")
    mode.add_argument("--live", dest="ingest_mode", action="store_const", const="live",
                      help="only put back refresh interval and replicas after --backfill")
    sp.set_defaults(func=cmd_setup)

    sp = add("eval", help="recall, false alarms and delay against labels",
             description="Compare ANOMALIES (anomalies.jsonl of logml run) with "
             "LABELS (labels.json of logml generate).")
    sp.add_argument("anomalies", metavar="ANOMALIES", type=_given, help="anomalies.jsonl of logml run "
                    "(or - for stdin)")
    sp.add_argument("labels", metavar="LABELS", type=_given, help="labels.json of logml generate")
    sp.add_argument("--window-seconds", type=_POSITIVE_INT, default=60, metavar="N",
                    help="window length of the run (its window.seconds; default 60)")
    sp.add_argument("--json", action="store_true", help="print the result as JSON")
    sp.set_defaults(func=cmd_eval)
    return p


def operator_error(e: BaseException, command: str = "run") -> str | None:
    """The one line that tells an operator what went wrong and what to do, or None when
    the exception is not an operator's mistake (a bug: traceback)."""
    from .metrics import MetricsPortError
    from .setup import SetupError
    from .snapshot import SnapshotError
    from .sources.file import InputError
    if isinstance(e, (MetricsPortError, SnapshotError, InputError, UsageError, SetupError)):
        return str(e)
    if isinstance(e, ConfigError):
        return f"configuration: {e}"
    if not isinstance(e, OSError):
        return None
    where = f"{e.filename}: " if e.filename else ""
    what = {
        errno.ENOENT: "no such file or directory",
        errno.EACCES: "permission denied: check the path and its permissions",
        errno.EPERM: "operation not permitted: check the path and its permissions",
        errno.EISDIR: "is a directory: give a file",
        errno.ENOTDIR: "a part of the path is not a directory",
        errno.EEXIST: "exists and is not a directory: give a directory (or a new path)",
        errno.EROFS: "read-only file system: choose a writable --output / --state",
        errno.ENOSPC: "no space left on device: free space or choose another --output, then "
                      "rerun (with the same --state it resumes from the last checkpoint)",
        errno.EDQUOT: "disk quota exceeded: free space or choose another --output",
        errno.EADDRINUSE: "address already in use (another logml?): choose another port "
                          "(--metrics-port N, or metrics.port; 0 = off)",
        errno.EADDRNOTAVAIL: "address not available here: check metrics.address",
        errno.EMFILE: "too many open files: raise the limit (ulimit -n)",
    }.get(e.errno)
    if e.errno in (errno.ENOSPC, errno.EDQUOT) and command != "run":
        what = f"{e.strerror or 'no space left'}: free space or write the output elsewhere"
    return where + (what or e.strerror or str(e))


def _check_input_path(path: str | None) -> None:
    """An input that is missing or a directory, said before the kernels load: on a first
    run that is half a minute of compiling, and under load a notice line before the
    error. The input's own open says the same later (a file can vanish in between)."""
    if not path or path == "-":
        return
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), path) from None
    except OSError:
        return  # permission and the like: the open says it, precisely
    if stat.S_ISDIR(mode):
        from .sources.file import not_a_file
        raise not_a_file(path)


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        if args.command in ("parse", "run", "demo"):
            _check_input_path(getattr(args, "input", None) or getattr(args, "file", None))
            from .jit import load_kernels
            load_kernels()  # first, before the config (which loads the masks' module)
        return args.func(args)
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as e:
        message = operator_error(e, args.command)
        if message is None or args.debug:
            raise
        print(f"logml: error: {message}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

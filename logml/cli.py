"""The ``logml`` command line."""
from __future__ import annotations

import argparse
import sys

from . import __version__
from .config import ConfigError, load


def _config(args, overrides=None):
    return load(getattr(args, "config", None), overrides=overrides)


def cmd_parse(args) -> int:
    from .parse import run
    return run(args.file, args.format, args.json, _config(args))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="logml",
        description="Log lines to templates, windows and anomalies. Start with `logml demo`.")
    p.add_argument("--version", action="version", version=f"logml {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    sp = sub.add_parser("parse", help="one row per line: line_no, template_id, template",
                        description="Template every line of FILE (or - for stdin) and print one "
                        "row per input line, in order.")
    sp.add_argument("file", metavar="FILE|-")
    sp.add_argument("--format", choices=["csv", "jsonl"], default="csv",
                    help="csv: line_no,template_id,template; jsonl adds params (default csv)")
    sp.add_argument("--json", action="store_true",
                    help="input lines are JSON events (Filebeat, Logstash), not plain text")
    sp.add_argument("-c", "--config", metavar="PIPELINE.toml",
                    help="pipeline file with [template] masks and thresholds")
    sp.set_defaults(func=cmd_parse)
    return p


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return args.func(args)
    except ConfigError as e:
        print(f"logml: configuration error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())

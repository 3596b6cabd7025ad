"""The shipper configs: filebeat/filebeat.yml and logstash/ send to Kafka topic logs.raw, keyed by
service name, as JSON, with all in-sync replicas acknowledging.

Filebeat is checked by the real binary of tests/services/up filebeat (`test config`, `export
config`) and, with real Kafka, by shipping a directory of per-service logs through the repo's
config. There is no Logstash binary here, so logstash/pipeline/logml.conf is read by a small parser
of the Logstash config language (sections, plugins, attributes, conditionals, strings, regexps,
comments) and its settings are checked. PyYAML is not a dependency: YAML is read by the binaries
or as text.
"""
import json
import os
import re
import subprocess
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from servicekit import services, stop_group

REPO = Path(__file__).resolve().parents[1]
FILEBEAT_YML = REPO / "filebeat" / "filebeat.yml"
LOGSTASH_CONF = REPO / "logstash" / "pipeline" / "logml.conf"
LOGSTASH_DIR = REPO / "logstash" / "config"



# ------------------------------------------------------------------------ Logstash config parser

class LogstashSyntaxError(ValueError):
    pass


_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<comment>\#[^\n]*)
  | (?P<dstring>"(?:[^"\\]|\\.)*")
  | (?P<sstring>'(?:[^'\\]|\\.)*')
  | (?P<regexp>/(?:[^/\\\n]|\\.)*/)
  | (?P<selector>(?:\[[^\[\]\s,"'][^\[\],]*\])+)
  | (?P<op>=>|==|!=|<=|>=|=~|!~|[{}\[\](),<>!])
  | (?P<number>-?\d+(?:\.\d+)?(?![\w.]))
  | (?P<word>[A-Za-z_@][\w.@-]*)
""", re.X)


def tokenize(text: str) -> list[tuple[str, str, int]]:
    """(kind, value, line) tokens; strings are unquoted. Unterminated strings, regexps and
    stray characters raise LogstashSyntaxError."""
    out, pos = [], 0
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        line = text.count("\n", 0, pos) + 1
        if not m:
            raise LogstashSyntaxError(f"line {line}: unexpected {text[pos:pos + 20]!r}")
        kind = m.lastgroup
        value = m.group(kind)
        if kind in ("dstring", "sstring"):
            out.append(("string", value[1:-1], line))
        elif kind not in ("ws", "comment"):
            out.append((kind, value, line))
        pos = m.end()
    return out


@dataclass
class Plugin:
    section: str
    name: str
    attrs: dict = field(default_factory=dict)
    conditions: tuple = ()


class _Parser:
    SECTIONS = ("input", "filter", "output")

    def __init__(self, text: str):
        self.toks = tokenize(text)
        self.i = 0
        self.plugins: list[Plugin] = []
        self.sections: list[str] = []

    def peek(self, k=0):
        j = self.i + k
        return self.toks[j] if j < len(self.toks) else ("eof", "", -1)

    def take(self, kind=None, value=None):
        tok = self.peek()
        if (kind and tok[0] != kind) or (value is not None and tok[1] != value):
            raise LogstashSyntaxError(f"line {tok[2]}: expected {value or kind}, got {tok[1]!r}")
        self.i += 1
        return tok

    def config(self):
        while self.peek()[0] != "eof":
            name = self.take("word")[1]
            if name not in self.SECTIONS:
                raise LogstashSyntaxError(f"unknown section {name!r}")
            self.sections.append(name)
            self.take("op", "{")
            self.block(name, ())
            self.take("op", "}")
        return self

    def block(self, section, conditions):
        while self.peek()[1] != "}":
            if self.peek() == ("eof", "", -1):
                raise LogstashSyntaxError("unexpected end of file: missing '}'")
            if self.peek()[:2] == ("word", "if"):
                self.branch(section, conditions)
            else:
                self.plugins.append(self.plugin(section, conditions))

    def branch(self, section, conditions):
        self.take("word", "if")
        cond = self.condition()
        self.take("op", "{")
        self.block(section, conditions + (cond,))
        self.take("op", "}")
        while self.peek()[:2] == ("word", "else"):
            self.take()
            if self.peek()[:2] == ("word", "if"):
                self.take()
                cond = self.condition()
            else:
                cond = "else"
            self.take("op", "{")
            self.block(section, conditions + (cond,))
            self.take("op", "}")

    def condition(self):
        parts, depth = [], 0
        while not (self.peek()[1] == "{" and self.peek()[0] == "op" and depth == 0):
            tok = self.take()
            if tok[0] == "eof":
                raise LogstashSyntaxError("condition without a block")
            depth += {"(": 1, "[": 1, ")": -1, "]": -1}.get(tok[1], 0) if tok[0] == "op" else 0
            if depth < 0:
                raise LogstashSyntaxError(f"line {tok[2]}: unbalanced {tok[1]!r} in condition")
            parts.append(tok[1])
        if not parts:
            raise LogstashSyntaxError("empty condition")
        return " ".join(parts)

    def plugin(self, section, conditions):
        tok = self.peek()
        if tok[0] not in ("word", "string"):
            raise LogstashSyntaxError(f"line {tok[2]}: expected a plugin name, got {tok[1]!r}")
        self.take()
        self.take("op", "{")
        attrs = {}
        while self.peek()[1] != "}":
            key = self.peek()
            if key[0] not in ("word", "string"):
                raise LogstashSyntaxError(f"line {key[2]}: expected a setting, got {key[1]!r}")
            self.take()
            self.take("op", "=>")
            attrs.setdefault(key[1], []).append(self.value(section))
        self.take("op", "}")
        return Plugin(section, tok[1], {k: v[0] if len(v) == 1 else v for k, v in attrs.items()},
                      conditions)

    def value(self, section):
        tok = self.peek()
        if tok[0] in ("string", "number"):
            self.take()
            return tok[1]
        if tok[0] == "selector":
            self.take()
            return [tok[1]]
        if tok[0] == "word":
            if self.peek(1)[1] == "{":  # a codec: codec => multiline { ... }
                return self.plugin(section, ())
            self.take()
            return tok[1]
        if tok[1] == "[":
            self.take()
            items = []
            while self.peek()[1] != "]":
                items.append(self.value(section))
                if self.peek()[1] == ",":
                    self.take()
                elif self.peek()[1] != "]":
                    raise LogstashSyntaxError(f"line {self.peek()[2]}: expected ',' or ']'")
            self.take("op", "]")
            return items
        if tok[1] == "{":
            self.take()
            entries = {}
            while self.peek()[1] != "}":
                key = self.take()
                if key[0] not in ("word", "string", "number"):
                    raise LogstashSyntaxError(f"line {key[2]}: bad hash key {key[1]!r}")
                self.take("op", "=>")
                entries[key[1]] = self.value(section)
                if self.peek()[1] == ",":
                    self.take()
            self.take("op", "}")
            return entries
        raise LogstashSyntaxError(f"line {tok[2]}: expected a value, got {tok[1]!r}")


def parse_logstash(text: str) -> _Parser:
    return _Parser(text).config()


@pytest.fixture(scope="module")
def logstash():
    return parse_logstash(LOGSTASH_CONF.read_text())


def _plugins(parsed, section, name):
    return [p for p in parsed.plugins if p.section == section and p.name == name]


@pytest.mark.parametrize("broken", [
    'input { stdin {} } output { kafka { topic_id => "x" }',          # missing }
    'input { stdin {} } output { kafka { topic_id => "x } }',          # unterminated string
    'input { stdin {} } output { kafka { topic_id "x" } }',            # missing =>
    'input { stdin {} } filter { if [a] =~ /x { drop {} } }',          # unterminated regexp
    'inputs { stdin {} }',                                              # unknown section
    'filter { if [a] == "b" }',                                         # condition without block
])
def test_parser_rejects_broken_configs(broken):
    with pytest.raises(LogstashSyntaxError):
        parse_logstash(broken)


def test_parser_reads_conditionals_codecs_arrays_and_hashes():
    parsed = parse_logstash('''
      # comment with { and "
      input { file { path => ["/a/*.log", "/b"] codec => multiline { pattern => "^\\s" what => "previous" } } }
      filter {
        if [message] =~ /^\\{/ and "x" in [tags] { json { source => "message" } }
        else if [a][b] { mutate { replace => { "message" => "%{msg}" } } }
        else { drop { } }
      }
      output { kafka { acks => "all" } }''')
    assert parsed.sections == ["input", "filter", "output"]
    f = _plugins(parsed, "input", "file")[0]
    assert f.attrs["path"] == ["/a/*.log", "/b"]
    assert f.attrs["codec"].name == "multiline" and f.attrs["codec"].attrs["what"] == "previous"
    json_f, mutate, drop = (p for p in parsed.plugins if p.section == "filter")
    assert json_f.conditions == ('[message] =~ /^\\{/ and x in [tags]',)
    assert mutate.attrs["replace"] == {"message": "%{msg}"}
    assert drop.conditions == ("else",)


def test_logstash_pipeline_sections(logstash):
    assert logstash.sections == ["input", "filter", "output"]
    beats = _plugins(logstash, "input", "beats")
    assert beats and beats[0].attrs["port"] == "5044"
    files = _plugins(logstash, "input", "file")
    assert len(files) == 2
    paths = [p for f in files for p in f.attrs["path"]]
    assert any(p.endswith("/*/*.log") for p in paths) and any(p.endswith(".json") for p in paths)
    assert any(f.attrs["codec"].name == "multiline" for f in files
               if isinstance(f.attrs.get("codec"), Plugin))


def test_logstash_filter_parses_json_and_sets_service_and_timestamp(logstash):
    (json_filter,) = _plugins(logstash, "filter", "json")
    assert json_filter.attrs["source"] == "message"
    assert json_filter.attrs["skip_on_invalid_json"] == "true"
    assert any("message" in c and "=~" in c for c in json_filter.conditions)
    ruby = _plugins(logstash, "filter", "ruby")
    assert any('event.set("[service][name]"' in r.attrs["code"] for r in ruby)
    assert _plugins(logstash, "filter", "date")


def test_logstash_output_is_kafka_logs_raw_keyed_by_service(logstash):
    outputs = [p for p in logstash.plugins if p.section == "output"]
    assert [p.name for p in outputs] == ["kafka"]
    kafka = outputs[0].attrs
    assert not outputs[0].conditions
    assert kafka["bootstrap_servers"] == "${KAFKA_BOOTSTRAP:127.0.0.1:19092}"
    assert kafka["topic_id"] == "logs.raw"
    assert kafka["message_key"] == "%{[service][name]}"
    assert kafka["codec"] == "json"
    assert kafka["acks"] == "all"
    assert kafka["compression_type"] in ("gzip", "snappy", "lz4", "zstd")


def test_logstash_settings_and_pipelines():
    settings = (LOGSTASH_DIR / "logstash.yml").read_text()
    assert re.search(r"(?m)^pipeline\.ecs_compatibility: v8$", settings)
    pipelines = (LOGSTASH_DIR / "pipelines.yml").read_text()
    assert re.search(r"(?m)^- pipeline\.id: logml$", pipelines)
    m = re.search(r'(?m)^  path\.config: "([^"]+)"$', pipelines)
    assert m and m.group(1).endswith("/pipeline/logml.conf")


# ------------------------------------------------------------------------ Filebeat

def test_filebeat_yml_text():
    """What the file says (the binary checks below say that Filebeat reads it so)."""
    text = FILEBEAT_YML.read_text()
    assert re.search(r"(?m)^output\.kafka:$", text)
    kafka = text.split("output.kafka:", 1)[1].split("\n\n", 1)[0]
    assert re.search(r"(?m)^  hosts: '\$\{KAFKA_BOOTSTRAP:127\.0\.0\.1:19092\}'", kafka)
    assert re.search(r"(?m)^  topic: logs\.raw$", kafka)
    assert re.search(r'(?m)^  key: "%\{\[service\.name\]\}"$', kafka)
    assert re.search(r"(?m)^  required_acks: -1\b", kafka)
    assert re.search(r"(?m)^  compression: (gzip|lz4|snappy)\b", kafka)
    assert re.search(r"(?m)^  codec\.json:$", kafka)
    assert re.search(r"(?m)^    reachable_only: false$", kafka)
    ids = re.findall(r"(?m)^    id: (\S+)$", text)
    assert len(ids) == len(set(ids)) == len(re.findall(r"(?m)^  - type: filestream$", text))


def _filebeat_cmd(fb: str, tmp: Path, *args) -> list[str]:
    return [fb, *args, "-c", str(FILEBEAT_YML), "--strict.perms=false",
            "--path.home", str(tmp), "--path.data", str(tmp / "data"),
            "--path.logs", str(tmp / "logs")]


@pytest.mark.integration
def test_filebeat_test_config(tmp_path):
    fb = services("filebeat")["FILEBEAT_BIN"]
    proc = subprocess.run(_filebeat_cmd(fb, tmp_path, "test", "config"), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0 and "Config OK" in proc.stdout, proc.stdout + proc.stderr


@pytest.mark.integration
def test_filebeat_export_config_kafka_output(tmp_path):
    """The output.kafka section as Filebeat itself reads it (export config normalises YAML)."""
    fb = services("filebeat")["FILEBEAT_BIN"]
    proc = subprocess.run(_filebeat_cmd(fb, tmp_path, "export", "config"), capture_output=True,
                          text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    m = re.search(r"(?ms)^output:\n  kafka:\n(.*?)(?=^\S)", proc.stdout)
    assert m, proc.stdout
    kafka = m.group(1)
    assert re.search(r"(?m)^    topic: logs\.raw$", kafka)
    assert re.search(r"(?m)^    key: '%\{\[service\.name\]\}'$", kafka)
    assert re.search(r"(?m)^    required_acks: -1$", kafka)
    assert re.search(r"(?m)^    compression: (gzip|lz4|snappy)$", kafka)
    assert re.search(r"(?m)^    codec:\n      json:\n", kafka)
    assert re.search(r"(?m)^    partition:\n      hash:\n        reachable_only: false$", kafka)
    inputs = re.search(r"(?ms)^filebeat:\n  inputs:\n(.*?)(?=^\S)", proc.stdout).group(1)
    assert "ndjson:" in inputs and "multiline:" in inputs


@pytest.mark.integration
@pytest.mark.slow
def test_filebeat_config_ships_per_service_logs_to_kafka(tmp_path):
    """The repo's filebeat.yml, unchanged but for the topic and the log root, against real Kafka:
    JSON decoded to the root, stack traces joined, service.name from the event or the directory,
    and the service name as the Kafka key."""
    from confluent_kafka import Consumer
    from confluent_kafka.admin import AdminClient, NewTopic

    fb = services("filebeat")["FILEBEAT_BIN"]
    bootstrap = services("kafka")["KAFKA_BOOTSTRAP"]
    topic = f"logml-filebeat-config-{uuid.uuid4().hex[:10]}"
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=1)],
                        operation_timeout=30)[topic].result(timeout=60)

    logs = tmp_path / "var-log-logml"
    (logs / "checkout").mkdir(parents=True)
    (logs / "payments").mkdir()
    (logs / "checkout" / "app.log").write_text(
        "2024-05-01T12:00:00Z INFO started\n"
        "2024-05-01T12:00:01Z ERROR boom\n"
        "java.lang.IllegalStateException: bad state\n"
        "\tat a.B.c(B.java:1)\n"
        "Caused by: java.io.IOException: x\n"
        "\t... 3 more\n"
        "2024-05-01T12:00:02Z ERROR failed\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1, in <module>\n'
        "ValueError: nope\n"
        "2024-05-01T12:00:03Z INFO done\n")
    (logs / "payments" / "app.json").write_text("".join(json.dumps(e) + "\n" for e in [
        {"message": "charge ok", "service.name": "payments-api", "log.level": "info"},
        {"msg": "zap style", "level": "warn"},
        {"message": "plain json", "level": "INFO", "amount": 3},
    ]) + "not json\n")
    (logs / "search.log").write_text("2024-05-01T12:00:00Z INFO one file per service\n")
    (logs / "cart.v2.json").write_text(json.dumps({"message": "cart json"}) + "\n")
    want = 10

    env = {**os.environ, "KAFKA_BOOTSTRAP": bootstrap, "LOGML_LOG_DIR": str(logs)}
    cmd = [*_filebeat_cmd(fb, tmp_path), "-e", "-E", f"output.kafka.topic={topic}",
           "-E", "queue.mem.flush.timeout=100ms", "-E", "queue.mem.flush.min_events=1",
           "-E", "filebeat.inputs.1.parsers.0.multiline.timeout=1s"]
    fb_log = open(tmp_path / "filebeat.out", "w")
    proc = subprocess.Popen(cmd, env=env, stdout=fb_log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": topic,
                         "auto.offset.reset": "earliest", "enable.auto.commit": False})
    consumer.subscribe([topic])
    got = []
    try:
        deadline = time.monotonic() + 90
        while len(got) < want and time.monotonic() < deadline:
            msg = consumer.poll(1.0)
            if msg is None or msg.error():
                continue
            got.append((msg.key().decode() if msg.key() else None, json.loads(msg.value())))
        end = time.monotonic() + 3  # nothing extra
        while time.monotonic() < end:
            msg = consumer.poll(0.5)
            if msg is not None and not msg.error():
                got.append((msg.key(), json.loads(msg.value())))
    finally:
        consumer.close()
        stop_group(proc)
        fb_log.close()
    said = (tmp_path / "filebeat.out").read_text()[-3000:]
    assert len(got) == want, f"{len(got)} of {want} events; filebeat said:\n{said}"

    by_msg = {e["message"]: (key, e) for key, e in got}
    for key, event in got:
        assert key == event["service"]["name"], event
        assert event["@timestamp"]
    assert {by_msg[m][0] for m in ("2024-05-01T12:00:00Z INFO started",
                                   "2024-05-01T12:00:03Z INFO done")} == {"checkout"}
    java = next(e for k, e in got if "IllegalStateException" in e["message"])
    assert java["message"].startswith("2024-05-01T12:00:01Z ERROR boom\n")
    assert java["message"].endswith("\t... 3 more")
    assert "multiline" in java["log"]["flags"]
    py = next(e for k, e in got if "Traceback" in e["message"])
    assert py["message"].endswith("ValueError: nope")
    assert by_msg["charge ok"][0] == "payments-api"          # service.name of the JSON event
    assert by_msg["charge ok"][1]["log"]["level"] == "info"
    assert by_msg["plain json"][0] == "payments"             # from the directory
    assert by_msg["plain json"][1]["amount"] == 3 and "error" not in by_msg["plain json"][1]
    zap = by_msg["zap style"][1]
    assert "msg" not in zap and "error" not in zap and zap["level"] == "warn"
    assert "error" in by_msg["not json"][1]                   # kept, with the decoding error
    assert by_msg["2024-05-01T12:00:00Z INFO one file per service"][0] == "search"
    assert by_msg["cart json"][0] == "cart"                   # file name up to its first dot

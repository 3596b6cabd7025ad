"""Every numeric setting refuses a value out of its range with a message naming the key,
so an operator's slip ends in one line instead of a crash deep in a stage or a silently
odd run."""
import dataclasses
import typing

import pytest

from logml.config import Config, ConfigError, load


def numeric_keys() -> list[str]:
    keys = []
    for section in dataclasses.fields(Config):
        if not dataclasses.is_dataclass(section.type if not isinstance(section.type, str)
                                        else typing.get_type_hints(Config)[section.name]):
            continue
        cls = typing.get_type_hints(Config)[section.name]
        for f, typ in typing.get_type_hints(cls).items():
            if typ in (int, float) or (typing.get_origin(typ) is not None
                                       and int in typing.get_args(typ)):
                keys.append(f"{section.name}.{f}")
    return keys


def test_every_numeric_key_is_found():
    keys = numeric_keys()
    assert "window.seconds" in keys and "metrics.port" in keys and len(keys) > 30


@pytest.mark.parametrize("key", numeric_keys())
def test_a_negative_value_is_refused_naming_the_key(key):
    with pytest.raises(ConfigError, match=rf"^{key}: "):
        load(overrides={key: -1}, env={})


@pytest.mark.parametrize("override,message", [
    ({"metrics.top_templates": 0}, "metrics.top_templates: must be at least 1"),
    ({"score.error_ratio_floor": 1.5}, "score.error_ratio_floor: must be in"),
    ({"score.half_life_windows": float("nan")}, "expected a number, got nan"),
    ({"decode.default_service": " "}, "decode.default_service: must name a service"),
    ({"output.dir": ""}, "output.dir: must name a directory"),
    ({"elasticsearch.index_prefix": "Logs"}, "elasticsearch.index_prefix: 'Logs' is not"),
    ({"sink": "elasticsearch", "elasticsearch.url": "127.0.0.1:9200"},
     "elasticsearch.url: '127.0.0.1:9200' is not a URL like http://"),
    ({"sink": "elasticsearch", "elasticsearch.url": "http://es"}, "names no port"),
    ({"source": "kafka", "kafka.topic": ""}, "kafka.topic: must not be empty"),
])
def test_values_out_of_range(override, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(")):
        load(overrides=override, env={})


def test_values_only_checked_where_they_are_used():
    # an ES URL of a file-to-JSONL run is never used: a stray ES_URL does not stop it
    assert load(overrides={"elasticsearch.url": "${ES_URL}"}, env={"ES_URL": "x"})
    assert load(overrides={"kafka.topic": ""}, env={})


def test_a_pipeline_file_that_is_not_text(tmp_path):
    p = tmp_path / "p.toml"
    p.write_bytes(b"\xff\xfe[window]\n")
    with pytest.raises(ConfigError, match="not a TOML text file"):
        load(p, env={})


def test_a_misspelt_key_gets_the_likely_one(tmp_path):
    p = tmp_path / "p.toml"
    p.write_text("[window]\nsecond = 5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'second' in \[window\] \(did you mean "
                       r"'seconds'\?\); known: "):
        load(p, env={})
    p.write_text("[kafka]\nzzz = 5\n")
    with pytest.raises(ConfigError, match=r"unknown key 'zzz' in \[kafka\]; known: "):
        load(p, env={})


@pytest.mark.parametrize("toml,message", [
    # tomllib takes integers of any size; the kernels then failed with numba's TypeError
    ("[decode]\nmax_line_bytes = 100000000000000000000000\n",
     "decode.max_line_bytes: 100000000000000000000000 is too large"),
    # a window longer than time_t can count: OverflowError in the window stage
    ("[window]\nseconds = 1000000000000000000\n", "window.seconds: must be in 1..86400"),
    # the Kafka client's own limits: ValueError / KafkaException tracebacks before
    ("[kafka]\nbatch_size = 2000000\n", "kafka.batch_size: must be in 1..1000000"),
    ("[kafka]\nsession_timeout_s = 100000.0\n", "kafka.session_timeout_s: must be in 1..3600"),
    # the JSON scanner's stack is this deep: MemoryError before
    ("[decode]\nmax_json_depth = 1000000000000000\n", "decode.max_json_depth: must be in"),
])
def test_huge_values(tmp_path, toml, message):
    p = tmp_path / "p.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load(p, env={})

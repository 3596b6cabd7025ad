import dataclasses
import re
from pathlib import Path

import pytest

from logml.config import Config, ConfigError, interpolate, load

REPO = Path(__file__).resolve().parents[2]


def test_default_pipeline_file_documents_every_key():
    text = (REPO / "pipelines" / "default.toml").read_text()
    cfg = load(REPO / "pipelines" / "default.toml", env={})
    assert cfg == load(env={})  # the documented values are the defaults
    for f in dataclasses.fields(Config):
        value = getattr(cfg, f.name)
        if dataclasses.is_dataclass(value):
            assert f"[{f.name}]" in text
            for sub in dataclasses.fields(value):
                assert re.search(rf"^{sub.name} = ", text, re.M), f"{f.name}.{sub.name}"
        else:
            assert re.search(rf"^{f.name} = ", text, re.M), f.name


def test_environment_interpolation():
    assert interpolate("${A}:${B:-x}", {"A": "1"}) == "1:x"
    cfg = load(overrides={"kafka.bootstrap": "${KB:-localhost:1}"}, env={"KB": "h:9"})
    assert cfg.kafka.bootstrap == "h:9"
    with pytest.raises(ConfigError, match="NOPE is not set"):
        interpolate("${NOPE}", {})


@pytest.mark.parametrize("toml,message", [
    ("[window]\nsecond = 5\n", "unknown key 'second' in \\[window\\]"),
    ("[window]\nseconds = \"60\"\n", "window.seconds: expected an integer"),
    ("[template]\nmasks = [\"ip\", \"phone\"]\n", "template.masks: unknown \\['phone'\\]"),
    ("[score]\nwarning_score = 80.0\n", "score.warning_score: must be positive and at most"),
    ("sink = \"s3\"\n", "sink: must be"),
    ("[window\n", "not valid TOML"),
])
def test_bad_pipeline_files_say_what_is_wrong(tmp_path, toml, message):
    p = tmp_path / "p.toml"
    p.write_text(toml)
    with pytest.raises(ConfigError, match=message):
        load(p, env={})


def test_missing_pipeline_file():
    with pytest.raises(ConfigError, match="not found"):
        load("/nonexistent/p.toml")

"""docker-compose.yml must be a valid Compose file (`docker compose config`, no engine needed).

Docker Compose v2 comes from tests/services/up compose, which builds the CLI plugin from its Go
module (minutes the first time, then cached under ~/.cache/logml-services) and prints
DOCKER_CONFIG, a directory whose cli-plugins/ holds it, and DOCKER_COMPOSE_BIN.
"""
import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
SERVICES_UP = REPO / "tests" / "services" / "up"
EXPECTED_SERVICES = {"kafka", "elasticsearch", "kibana", "filebeat", "logstash", "prometheus",
                     "alertmanager", "grafana", "logml"}

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def compose() -> tuple[list[str], dict[str, str]]:
    """The Compose v2 command (`docker compose`, or the plugin binary run standalone when there is
    no docker CLI) and the environment to run it in."""
    try:
        proc = subprocess.run([str(SERVICES_UP), "compose"], capture_output=True, text=True,
                              timeout=1800, cwd=REPO)
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"tests/services/up compose took over {exc.timeout:.0f}s; stderr:\n"
                    f"{exc.stderr or ''}", pytrace=False)
    if proc.returncode != 0:
        pytest.fail(f"tests/services/up compose failed (exit {proc.returncode}):\n"
                    f"{proc.stderr[-4000:]}", pytrace=False)
    values = dict(line.split("=", 1) for line in proc.stdout.splitlines() if "=" in line)
    missing = {"DOCKER_CONFIG", "DOCKER_COMPOSE_BIN"} - values.keys()
    if missing:
        pytest.fail(f"tests/services/up compose printed no {', '.join(sorted(missing))}:\n"
                    f"{proc.stdout}", pytrace=False)
    env = {**os.environ, "DOCKER_CONFIG": values["DOCKER_CONFIG"]}
    docker = shutil.which("docker")
    cmd = [docker, "compose"] if docker else [values["DOCKER_COMPOSE_BIN"]]
    probe = subprocess.run([*cmd, "version"], capture_output=True, text=True, env=env, timeout=60)
    if probe.returncode != 0:
        pytest.fail(f"`{' '.join(cmd)} version` failed with DOCKER_CONFIG="
                    f"{values['DOCKER_CONFIG']}:\n{probe.stdout}{probe.stderr}", pytrace=False)
    return cmd, env


def _config(compose, *args: str) -> str:
    cmd, env = compose
    proc = subprocess.run([*cmd, "-f", str(COMPOSE_FILE), "config", *args], capture_output=True,
                          text=True, cwd=REPO, env=env, timeout=120)
    assert proc.returncode == 0, f"docker compose config {' '.join(args)} failed:\n{proc.stderr}"
    return proc.stdout


def test_docker_compose_config_is_valid(compose):
    _config(compose, "--quiet")


def test_docker_compose_services(compose):
    assert set(_config(compose, "--services").split()) == EXPECTED_SERVICES
    model = json.loads(_config(compose, "--format", "json"))
    assert set(model["services"]) == EXPECTED_SERVICES
    assert model["name"] == "logml"

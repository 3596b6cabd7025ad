"""docker-compose.yml must be a valid Compose file (`docker compose config`, no engine needed)."""
import shutil
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
COMPOSE_FILE = REPO / "docker-compose.yml"
EXPECTED_SERVICES = {"kafka", "elasticsearch", "kibana", "filebeat", "logstash", "prometheus",
                     "alertmanager", "grafana", "logml"}


def _compose() -> list[str]:
    """The Compose v2 CLI: the `docker compose` plugin, or a standalone v2 `docker-compose`."""
    docker = shutil.which("docker")
    if docker:
        probe = subprocess.run([docker, "compose", "version"], capture_output=True, text=True)
        if probe.returncode == 0:
            return [docker, "compose"]
    standalone = shutil.which("docker-compose")
    if standalone:
        probe = subprocess.run([standalone, "version", "--short"], capture_output=True, text=True)
        if probe.returncode == 0 and probe.stdout.strip().lstrip("v").startswith("2"):
            return [standalone]
    pytest.fail(
        "Docker Compose v2 is not installed: `docker compose version` fails "
        f"({'no docker CLI' if not docker else 'the docker CLI has no compose plugin'}) and no "
        "standalone docker-compose v2 is on PATH. Install the compose plugin (Docker's "
        "docker-compose-plugin package, or the docker-compose binary in "
        "~/.docker/cli-plugins/) to validate docker-compose.yml.", pytrace=False)


def test_docker_compose_config_is_valid():
    compose = _compose()
    proc = subprocess.run([*compose, "-f", str(COMPOSE_FILE), "config", "--quiet"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, f"docker compose config failed:\n{proc.stderr}"

    proc = subprocess.run([*compose, "-f", str(COMPOSE_FILE), "config", "--services"],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert set(proc.stdout.split()) == EXPECTED_SERVICES

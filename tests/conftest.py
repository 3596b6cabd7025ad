"""Session fixtures for the real services (see tests/servicekit.py)."""
import pytest

from servicekit import services


@pytest.fixture(scope="session")
def kafka_env():
    return services("kafka")


@pytest.fixture(scope="session")
def es_env():
    return services("elasticsearch")


@pytest.fixture(scope="session")
def prometheus_env():
    return services("prometheus")


@pytest.fixture(scope="session")
def alertmanager_env():
    return services("alertmanager")


@pytest.fixture(scope="session")
def filebeat_env():
    return services("filebeat")

"""Elasticsearch client fixtures shared by the integration tests."""
import pytest
from elasticsearch import Elasticsearch


@pytest.fixture(scope="module")
def es_url(es_env) -> str:
    return es_env["ES_URL"]


@pytest.fixture(scope="module")
def es(es_url):
    client = Elasticsearch(es_url, request_timeout=60)  # big bulk reads in the hand-over tests
    yield client
    client.close()

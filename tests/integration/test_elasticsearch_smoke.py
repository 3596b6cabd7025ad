"""Smoke tests against the real Elasticsearch 8 node that tests/services/up starts (no mocks).

They check what logml relies on: the server is 8.x, composable index templates apply their
mappings, bulk indexing + refresh + search work, and the field types come out as mapped.
The test node has no X-Pack (no ILM, no security): that is expected and not tested here.
"""
import json
import urllib.request
import uuid

import pytest
from elasticsearch import helpers

pytestmark = pytest.mark.integration


@pytest.fixture
def prefix(es):
    """A unique index-name prefix; the template and indices under it are removed afterwards."""
    p = f"logml-smoke-{uuid.uuid4().hex[:10]}"
    yield p
    es.indices.delete(index=f"{p}-*", ignore_unavailable=True, allow_no_indices=True)
    es.options(ignore_status=404).indices.delete_index_template(name=p)


def test_root_reports_version_8(es_url, es):
    with urllib.request.urlopen(es_url + "/", timeout=10) as resp:
        assert resp.status == 200
        assert resp.headers.get("X-elastic-product") == "Elasticsearch"
        body = json.load(resp)
    assert body["version"]["number"].startswith("8."), body
    assert body["tagline"] == "You Know, for Search"
    # the official 8.x client agrees (it checks the product header itself)
    assert es.info()["version"]["number"] == body["version"]["number"]
    assert es.cluster.health(wait_for_status="yellow", timeout="10s")["status"] in ("yellow", "green")


def test_index_template_bulk_search_and_mapping(es, prefix):
    es.indices.put_index_template(
        name=prefix,
        index_patterns=[f"{prefix}-*"],
        priority=500,
        template={
            "settings": {"number_of_shards": 1, "number_of_replicas": 0},
            "mappings": {
                "dynamic": "strict",
                "properties": {
                    "@timestamp": {"type": "date"},
                    "message": {"type": "text"},
                    "template_id": {"type": "keyword"},
                    "service": {"type": "keyword"},
                    "level": {"type": "keyword"},
                    "score": {"type": "float"},
                    "count": {"type": "long"},
                    "is_anomaly": {"type": "boolean"},
                    "host_ip": {"type": "ip"},
                },
            },
        },
    )
    index = f"{prefix}-2026.01.01"
    docs = [
        {
            "@timestamp": f"2026-01-01T00:{i:02d}:00Z",
            "message": f"connection reset by peer {i}" if i % 5 == 0 else f"request served in {i} ms",
            "template_id": "T2" if i % 5 == 0 else "T1",
            "service": "api" if i % 2 else "worker",
            "level": "ERROR" if i % 5 == 0 else "INFO",
            "score": i / 100,
            "count": i,
            "is_anomaly": i % 5 == 0,
            "host_ip": f"127.0.0.{i % 4 + 1}",
        }
        for i in range(50)
    ]
    ok, errors = helpers.bulk(es, ({"_index": index, "_id": str(i), "_source": d} for i, d in enumerate(docs)))
    assert ok == 50 and not errors
    es.indices.refresh(index=index)

    assert es.count(index=index)["count"] == 50
    hits = es.search(index=index, query={"match": {"message": "reset"}}, size=50)["hits"]
    assert hits["total"]["value"] == 10
    assert all(h["_source"]["is_anomaly"] for h in hits["hits"])

    res = es.search(
        index=index,
        size=0,
        query={"bool": {"filter": [{"term": {"is_anomaly": False}}, {"range": {"score": {"gte": 0.2}}}]}},
        aggs={
            "by_template": {"terms": {"field": "template_id"}},
            "per_10m": {"date_histogram": {"field": "@timestamp", "fixed_interval": "10m"}},
            "max_count": {"max": {"field": "count"}},
        },
    )
    assert res["hits"]["total"]["value"] == 24  # i in 20..49, minus the 6 multiples of 5
    assert res["aggregations"]["by_template"]["buckets"] == [{"key": "T1", "doc_count": 24}]
    assert res["aggregations"]["max_count"]["value"] == 49
    assert sum(b["doc_count"] for b in res["aggregations"]["per_10m"]["buckets"]) == 24

    # the template's mapping was applied, with the right types
    props = es.indices.get_mapping(index=index)[index]["mappings"]["properties"]
    assert {k: v["type"] for k, v in props.items()} == {
        "@timestamp": "date", "message": "text", "template_id": "keyword", "service": "keyword",
        "level": "keyword", "score": "float", "count": "long", "is_anomaly": "boolean", "host_ip": "ip",
    }
    settings = es.indices.get_settings(index=index)[index]["settings"]["index"]
    assert settings["number_of_shards"] == "1" and settings["number_of_replicas"] == "0"

    # strict mapping rejects unknown fields: the template really governs the index
    with pytest.raises(Exception) as excinfo:
        es.index(index=index, document={"@timestamp": "2026-01-01T01:00:00Z", "unexpected": 1})
    assert "strict_dynamic_mapping_exception" in str(excinfo.value)

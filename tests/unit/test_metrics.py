import numpy as np
from prometheus_client import generate_latest

from logml.metrics import Stats, registry_for, top_templates


def test_top_k_templates_per_service_and_the_rest_aggregated():
    z = np.array([0.5, -6.0, 3.0, 1.0, 9.0, -2.0])
    service = np.array([0, 0, 0, 0, 1, 1], dtype=np.int32)
    top = top_templates(z, service, ["api", "db"], ["a", "b", "c", "d", "e", "f"], k=2)
    assert top == {"api": [("b", -6.0), ("c", 3.0), ("other", 1.0)],
                   "db": [("e", 9.0), ("f", -2.0)]}


def test_collector_exports_bounded_labelled_series():
    stats = Stats()
    stats.lines["api"] += 10
    stats.anomalies[("api", "spike", "critical")] += 1
    stats.scores["api"] = (80.0, 0.9, 0.1, 5.0, 0.01, 100, 40.0)
    stats.top_templates = {"api": [("abc", 4.5), ("other", 1.0)]}
    stats.invalid["late"] += 2
    stats.forget(["gone"])
    text = generate_latest(registry_for(stats)).decode()
    for line in ['logml_lines_total{service="api"} 10.0',
                 'logml_anomalies_total{service="api",severity="critical",type="spike"} 1.0',
                 'logml_anomaly_score{service="api"} 80.0',
                 'logml_outage_probability{service="api"} 0.9',
                 'logml_template_zscore{service="api",template_id="other"} 1.0',
                 'logml_records_invalid_total{reason="late"} 2.0',
                 "logml_batch_seconds_count 0.0"]:
        assert line in text, line
    stats.forget(["api"])
    assert 'logml_anomaly_score{service="api"}' not in generate_latest(registry_for(stats)).decode()

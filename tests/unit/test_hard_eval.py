"""benchmarks/hard_eval.py's summary of what the false alarms are."""
from benchmarks.hard_eval import _by_type


def test_false_alarms_are_counted_by_severity_and_kind():
    groups = [{"severity": "warning", "types": ["spike"]},
              {"severity": "warning", "types": ["drop", "spike"]},
              {"severity": "critical", "types": ["error_rate"]},
              {"severity": "warning", "types": ["spike"]}]
    assert _by_type(groups) == {"critical": {"error_rate": 1},
                                "warning": {"drop+spike": 1, "spike": 2}}
    assert _by_type([]) == {}

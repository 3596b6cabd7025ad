"""Sinks: where documents go (JSON lines files, Elasticsearch, Kafka). Side effects live here.

Every sink has ``write(kind, docs)``, ``dead_letter(errors)`` (or a caller that routes
dead letters), ``flush()`` and ``close()``. ``flush`` returns only when everything written
was acknowledged; otherwise it raises ``SinkUnavailable`` and keeps what it holds.
"""


class SinkUnavailable(Exception):
    """A sink could not acknowledge; the caller keeps its offsets and retries later."""

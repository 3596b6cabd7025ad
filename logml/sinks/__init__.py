"""Sinks: where documents go (JSON lines files, Elasticsearch). Side effects live here."""

"""logml: log lines to templates, windows, anomalies."""
__version__ = "0.1.0"

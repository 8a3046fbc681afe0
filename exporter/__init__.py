"""summary-exporter: a five-domain summary of an AI API gateway, computed by PromQL."""

__version__ = "0.1.0"

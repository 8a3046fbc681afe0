"""The OpenAPI document of the service, derived from the catalog so it always matches it."""

from __future__ import annotations

from typing import Any

from exporter import __version__
from exporter.catalog import Catalog, ColumnKind, ColumnSpec, FieldSpec, Kind
from exporter.parameters import INSTANT_PATTERN, MAX_LENGTH

_JSON = "application/json"
# The shapes of the query parameters. Rules a pattern cannot state (units from largest to
# smallest, at most EXPORTER_MAX_WINDOW, not in the future) are answered with 400.
_DURATION = r"^([0-9]{1,12}(ms|y|w|d|h|m|s))+$"


# Whether the gateway itself is up, from the catalog's liveness checks.
_LIVENESS: dict[str, Any] = {
    "type": "object",
    "required": ["status", "reason", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "critical", "unknown"]},
        "reason": {"type": "string", "nullable": True},
        "checks": {
            "type": "object",
            "additionalProperties": {
                "type": "string", "enum": ["ok", "degraded", "critical", "unknown"],
            },
        },
    },
}  # fmt: skip


def _error(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Error"}}},
    }


def _column_schema(column: ColumnSpec) -> dict[str, Any]:
    kind = {ColumnKind.INTEGER: "integer", ColumnKind.NUMBER: "number"}.get(column.kind, "string")
    return {"type": kind, "nullable": True, "description": column.help}


def _field_schema(spec: FieldSpec) -> dict[str, Any]:
    if spec.kind is Kind.LABELS:
        return {"type": "array", "items": {"type": "string"}, "nullable": True}
    if spec.kind is Kind.TABLE:
        key = spec.label or ""
        row = {
            "type": "object",
            "required": [key, *spec.columns],
            "properties": {
                key: {"type": "string"},
                **{name: _column_schema(column) for name, column in spec.columns.items()},
            },
            "additionalProperties": False,
        }
        return {"type": "array", "items": row, "nullable": True, "description": spec.help}
    kind = "integer" if spec.kind is Kind.INTEGER else "number"
    return {"type": kind, "nullable": True, "description": spec.help}


def _summary_schema(catalog: Catalog) -> dict[str, Any]:
    domains = {
        domain: {
            "type": "object",
            "description": spec.help,
            "properties": {name: _field_schema(field) for name, field in spec.fields.items()},
            "required": list(spec.fields),
            "additionalProperties": False,
        }
        for domain, spec in catalog.domains.items()
    }
    stale_field = {
        "type": "object",
        "properties": {
            "timestamp": {"type": "string", "format": "date-time"},
            "age_seconds": {"type": "number", "minimum": 0},
            "error": {"type": "string"},
        },
        "required": ["timestamp", "age_seconds", "error"],
    }
    return {
        "type": "object",
        "required": [
            "timestamp", "window", "stale", "age_seconds", "source", "metrics", "nulls",
            "bounds", "cuts", "stale_fields", "warnings", "upstream", "liveness",
        ],
        "properties": {
            "timestamp": {"type": "string", "format": "date-time"},
            "window": {"type": "string"},
            "stale": {"type": "boolean"},
            "age_seconds": {"type": "number", "minimum": 0},
            "source": {"type": "string", "enum": ["background", "on_demand"]},
            "metrics": {"type": "object", "properties": domains, "additionalProperties": False},
            "nulls": {"type": "object", "additionalProperties": {"type": "string"}},
            "bounds": {
                "type": "object",
                "description": "Fields whose value is only a lower bound of the true one.",
                "additionalProperties": {"type": "string", "enum": ["at_least"]},
            },
            "cuts": {
                "type": "object",
                "description": "Tables that kept only their first rows, and how many they had.",
                "additionalProperties": {
                    "type": "object",
                    "required": ["rows", "of", "limit"],
                    "properties": {
                        "rows": {"type": "integer"},
                        "of": {"type": "integer"},
                        "limit": {"type": "string"},
                    },
                },
            },
            "liveness": _LIVENESS,
            "stale_fields": {"type": "object", "additionalProperties": stale_field},
            "warnings": {
                "type": "object",
                "additionalProperties": {"type": "array", "items": {"type": "string"}},
            },
            "upstream": {
                "type": "object",
                "required": ["url", "up", "answered_by"],
                "properties": {
                    "url": {"type": "string"},
                    "up": {"type": "boolean"},
                    "answered_by": {"type": "array", "items": {"type": "string"}},
                },
            },
        },
    }  # fmt: skip


def _summary_operation(summary: str, extra_parameters: list[dict[str, Any]]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": [
                {"$ref": "#/components/parameters/window"},
                {"$ref": "#/components/parameters/time"},
                _flag("explain", "1 adds `explain`: per field, its PromQL, instant and unit."),
                *extra_parameters,
            ],
            "responses": {
                "200": {
                    "description": "The summary",
                    "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Summary"}}},
                },
                "400": _error("A parameter is invalid"),
                "401": _error("Credentials are required (when the exporter is configured so)"),
                "404": _error("Unknown domain"),
                "429": _error("Too many on-demand summaries; retry after Retry-After seconds"),
                "503": _error("The first refresh has not finished yet"),
            },
        }
    }


def openapi_document(catalog: Catalog) -> dict[str, Any]:
    domains = list(catalog.domains)
    status = {"type": "object", "properties": {"status": {"type": "string"}}}
    return {
        "openapi": "3.0.3",
        "info": {
            "title": "summary-exporter",
            "version": __version__,
            "description": "A five-domain summary of an AI API gateway, computed by PromQL.",
        },
        "paths": {
            "/summary": _summary_operation("The whole summary", []),
            "/summary/{domain}": _summary_operation(
                "One domain of the summary",
                [
                    {
                        "name": "domain",
                        "in": "path",
                        "required": True,
                        "schema": {"type": "string", "enum": domains},
                    }
                ],
            ),
            "/prometheus/metrics/summary": _summary_operation(
                "The summary at the gateway's original path",
                [
                    {
                        "name": "category",
                        "in": "query",
                        "required": False,
                        "schema": {"type": "string", "enum": domains},
                    }
                ],
            ),
            "/metrics": {
                "get": {
                    "summary": "Gauges and self-metrics in Prometheus exposition format",
                    "responses": {
                        "200": {
                            "description": "Exposition text",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        },
                        "401": _error("Credentials are required"),
                    },
                }
            },
            "/health": _on_call_operation(
                "Health for people: the overall status and every check",
                {_JSON: {"schema": {"$ref": "#/components/schemas/Health"}}},
                [_flag("strict", "1 answers 503 when the status is critical.")],
            ),
            "/": _on_call_operation(
                "The status page", {"text/html": {"schema": {"type": "string"}}}, []
            ),
            "/healthz": _probe("The process is alive", status),
            "/readyz": _probe("Listening with the catalog loaded", status),
            "/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {
                        "200": {"description": "OpenAPI", "content": {_JSON: {"schema": {}}}}
                    },
                }
            },
        },
        "components": {
            "parameters": {
                "window": {
                    "name": "window",
                    "in": "query",
                    "required": False,
                    "description": "A Prometheus duration such as 5m or 1h30m, up to the"
                    " maximum; the document names it as written.",
                    "schema": {"type": "string", "maxLength": MAX_LENGTH, "pattern": _DURATION},
                },
                "time": {
                    "name": "time",
                    "in": "query",
                    "required": False,
                    "description": "Evaluation instant: RFC 3339 or unix seconds, not future.",
                    "schema": {
                        "type": "string",
                        "maxLength": MAX_LENGTH,
                        "pattern": INSTANT_PATTERN,
                    },
                },
            },
            "schemas": {
                "Summary": _summary_schema(catalog),
                "Health": _HEALTH,
                "Error": {
                    "type": "object",
                    "required": ["error"],
                    "properties": {"error": {"type": "string"}},
                },
            },
        },
    }


def _probe(summary: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "responses": {"200": {"description": summary, "content": {_JSON: {"schema": schema}}}},
        }
    }


def _flag(name: str, description: str) -> dict[str, Any]:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": description,
        "schema": {"type": "string", "enum": ["0", "1", "false", "true"]},
    }


def _on_call_operation(
    summary: str, content: dict[str, Any], extra_parameters: list[dict[str, Any]]
) -> dict[str, Any]:
    return {
        "get": {
            "summary": summary,
            "parameters": [
                {"$ref": "#/components/parameters/window"},
                {"$ref": "#/components/parameters/time"},
                *extra_parameters,
            ],
            "responses": {
                "200": {"description": summary, "content": content},
                "400": _error("A parameter is invalid"),
                "401": _error("Credentials are required (when the exporter is configured so)"),
                "429": _error("Too many on-demand evaluations; retry after Retry-After seconds"),
                "503": {
                    "description": "Critical, with strict=1",
                    "content": {_JSON: {"schema": {"$ref": "#/components/schemas/Health"}}},
                },
            },
        }
    }


_CHECK = {
    "type": "object",
    "required": ["status", "value", "display", "threshold", "limits", "promql", "reason"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "critical", "unknown"]},
        "value": {"type": "number", "nullable": True},
        "display": {"type": "string"},
        "threshold": {"type": "string"},
        "limits": {"type": "object"},
        "promql": {"type": "array", "items": {"type": "string"}},
        "reason": {"type": "string", "nullable": True},
        "names": {"type": "array", "items": {"type": "string"}},
        "detail": {"type": "string", "nullable": True},
        "help": {"type": "string"},
    },
}
_HEALTH = {
    "type": "object",
    "required": ["status", "timestamp", "window", "source", "liveness", "checks"],
    "properties": {
        "status": {"type": "string", "enum": ["ok", "degraded", "critical"]},
        "timestamp": {"type": "string", "format": "date-time", "nullable": True},
        "window": {"type": "string", "nullable": True},
        "source": {"type": "string", "nullable": True},
        "liveness": _LIVENESS,
        "checks": {"type": "object", "additionalProperties": _CHECK},
    },
}

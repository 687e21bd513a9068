"""The OpenAPI 3 document of the REST API, made from the endpoint table so it never drifts."""

from __future__ import annotations

from typing import Any

from bitdust_node.api.routes import ENDPOINTS, Endpoint

_ENVELOPE_OK = {
    "type": "object",
    "required": ["status"],
    "properties": {"status": {"const": "OK"}, "result": {}, "execution": {"type": "string"}},
}
_ENVELOPE_ERROR = {
    "type": "object",
    "required": ["status", "errors"],
    "properties": {
        "status": {"const": "ERROR"},
        "errors": {"type": "array", "items": {"type": "string"}},
        "execution": {"type": "string"},
    },
}
_ERRORS = {
    "400": "bad input",
    "401": "api_secret header missing or wrong",
    "404": "unknown object",
    "409": "conflict with existing state",
    "413": "body too large",
    "503": "the service this needs is not ON",
}


def _operation(e: Endpoint) -> dict[str, Any]:
    op: dict[str, Any] = {
        "summary": e.summary,
        "operationId": e.handler.__name__,
        "responses": {
            "200": {
                "description": "OK",
                "content": {"application/json": {"schema": {} if e.raw else _ENVELOPE_OK}},
            },
            **{
                code: {"description": text, "content": {"application/json": {"schema": _ENVELOPE_ERROR}}}
                for code, text in _ERRORS.items()
            },
        },
    }
    if e.method in ("GET", "DELETE"):
        op["parameters"] = [
            {"name": p, "in": "query", "required": False, "schema": {"type": "string"}} for p in e.params
        ]
    elif e.params:
        op["requestBody"] = {
            "content": {
                "application/json": {
                    "schema": {"type": "object", "properties": {p: {} for p in e.params}},
                },
            },
        }
    return op


def document() -> dict[str, Any]:
    paths: dict[str, dict[str, Any]] = {}
    for e in sorted(ENDPOINTS, key=lambda e: (e.path, e.method)):
        paths.setdefault(e.path, {})[e.method.lower()] = _operation(e)
    return {
        "openapi": "3.0.3",
        "info": {"title": "bitdust-node REST API", "version": "1"},
        "components": {
            "securitySchemes": {"api_secret": {"type": "apiKey", "in": "header", "name": "api_secret"}},
        },
        "security": [{"api_secret": []}],
        "paths": paths,
    }

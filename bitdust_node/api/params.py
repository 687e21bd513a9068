"""Reading numbers from a request's query or body, with the range each parameter allows."""

from __future__ import annotations

from bitdust_node.api.routes import ApiRequest
from bitdust_node.errors import InvalidInput


def number(req: ApiRequest, name: str, default: float, most: float, least: float = 0.0) -> float:
    """A number from the query (or the JSON body), `default` if absent; InvalidInput outside (least, most]."""
    raw = req.args.get(name, req.body.get(name, default))
    try:
        value = float(raw)
    except (TypeError, ValueError):
        raise InvalidInput(f"{name} must be a number") from None
    if not least <= value <= most:
        raise InvalidInput(f"{name} must be between {least:g} and {most:g}")
    return value


def whole(req: ApiRequest, name: str, default: int, most: int, least: int = 0) -> int:
    """Like number, for a whole number."""
    value = number(req, name, default, most, least)
    if value != int(value):
        raise InvalidInput(f"{name} must be a whole number")
    return int(value)

"""REST endpoints of private messages: send, history, and the long poll of incoming messages."""

from __future__ import annotations

from typing import Any

from bitdust_node.api.endpoints.p2p import user_idurl
from bitdust_node.api.params import whole
from bitdust_node.api.routes import ApiContext, ApiRequest, WithMessage, endpoint
from bitdust_node.errors import InvalidInput
from bitdust_node.messages.messenger import Messenger
from bitdust_node.services.private_messages import PrivateMessagesService

SERVICE = "service_private_messages"
MAX_POLL = 300.0


def _messenger(api: ApiContext) -> Messenger:
    messenger = api.running(PrivateMessagesService).messenger
    assert messenger is not None
    return messenger


@endpoint("POST", "/message/send/v1", "Send a private message to a user", service=SERVICE,
          params=("id", "data", "message_ack_timeout"))
async def message_send(api: ApiContext, req: ApiRequest) -> WithMessage:
    data = req.body.get("data")
    if not isinstance(data, dict) or not data:
        raise InvalidInput("data must be a JSON object, e.g. {\"message\": \"hello\"}")
    idurl = await user_idurl(api, req)
    timeout = whole(req, "message_ack_timeout", 15, 120, least=1)
    consumed = await _messenger(api).send(idurl, data, ack_timeout=float(timeout))
    return WithMessage({"consumed": consumed}, ["message sent"])


@endpoint("GET", "/message/history/v1", "Messages sent and received, oldest first", service=SERVICE,
          params=("id", "offset", "limit"))
async def message_history(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    named = any(req.args.get(k) for k in ("id", "idurl", "global_id", "recipient_id"))
    peer = await user_idurl(api, req) if named else None
    offset, limit = whole(req, "offset", 0, 10**9), whole(req, "limit", 100, 1000)
    return [{"doc": m.describe()} for m in _messenger(api).conversation(peer, offset, limit)]


@endpoint("GET", "/message/receive/<consumer>/v1", "Wait for incoming messages (long poll)", service=SERVICE,
          params=("polling_timeout",))
async def message_receive(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    timeout = whole(req, "polling_timeout", 60, int(MAX_POLL))
    return await _messenger(api).receive(req.args["consumer"], float(timeout))

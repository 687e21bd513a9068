"""DHT domain errors, each mapped to a REST status through its BitDustError base."""

from __future__ import annotations

from bitdust_node.errors import (
    BitDustError,
    Conflict,
    InvalidInput,
    NotFound,
    ServiceOff,
    TooLarge,
)


class DhtError(BitDustError):
    """Base of DHT failures; `kind` names the failure for counters and log-once."""

    kind = "dht_error"


class InvalidValue(DhtError, InvalidInput):
    kind = "invalid_value"


class ValueTooLarge(DhtError, TooLarge):
    kind = "value_too_large"


class TypeChanged(DhtError, Conflict):
    kind = "type_changed"


class RevisionLower(DhtError, Conflict):
    kind = "revision_lower"


class StoreFull(DhtError, Conflict):
    kind = "store_full"


class ValueNotFound(DhtError, NotFound):
    kind = "value_not_found"


class DhtNotReady(DhtError, ServiceOff):
    kind = "dht_not_ready"


class RemoteError(DhtError):
    """A peer answered an RPC with an error reply."""

    kind = "remote_error"

    def __init__(self, error_type: str, text: str) -> None:
        super().__init__(f"{error_type}: {text}")
        self.error_type = error_type
        self.text = text


class RpcTimeout(DhtError):
    """No answer after every retry."""

    kind = "rpc_timeout"

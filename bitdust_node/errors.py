"""Domain errors: one class per kind of failure, each mapped once to a REST status and a CLI exit code."""


class BitDustError(Exception):
    """Base of every error a user may cause; never shown as a traceback."""

    http_status = 400
    exit_code = 2

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message

    def __str__(self) -> str:
        return self.message


class InvalidInput(BitDustError):
    """Malformed or ill-typed input (400)."""


class Unauthorized(BitDustError):
    """Missing or wrong API secret (401)."""

    http_status = 401


class NotFound(BitDustError):
    """Unknown object or endpoint (404)."""

    http_status = 404
    exit_code = 1


class Conflict(BitDustError):
    """The request contradicts existing state (409)."""

    http_status = 409
    exit_code = 1


class TooLarge(BitDustError):
    """A body or value over its size cap (413)."""

    http_status = 413


class ServiceOff(BitDustError):
    """The service needed for this request is not ON (503)."""

    http_status = 503
    exit_code = 1


class UnknownSetting(InvalidInput):
    """A settings key that does not exist."""


class InvalidSettingValue(InvalidInput):
    """A value that does not fit the key's type."""

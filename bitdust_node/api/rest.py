"""The REST API: one twisted.web resource over the endpoint table, bound to loopback, behind the API secret.

Bodies are capped while they arrive (CappedRequest), so an oversize upload is answered 413
without ever being held in memory or on disk. Every path goes to one async handler (the front's own paths,
the web interface's, to the front), so no routing framework is loaded: Klein, which did only that here, held
4 MB of every node.
"""

from __future__ import annotations

import hmac
import importlib
import json
import pkgutil
import re
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol

from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request, Site

from bitdust_node.api.routes import ENDPOINTS, ApiContext, ApiRequest, Endpoint, TextReply, WithMessage
from bitdust_node.errors import BitDustError, InvalidInput, NotFound, ServiceOff, TooLarge, Unauthorized

log = Logger()

MAX_BODY = 1024 * 1024
SECRET_HEADER = b"api_secret"


class CappedRequest(Request):
    """Counts body bytes as they arrive and stops keeping them past the cap."""

    max_body = MAX_BODY

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.body_too_large = False
        self._body_seen = 0

    def gotLength(self, length: int | None) -> None:
        if length is not None and length > self.max_body:
            self.body_too_large = True
            length = 0
        super().gotLength(length)

    def handleContentChunk(self, data: bytes) -> None:
        self._body_seen += len(data)
        if self._body_seen > self.max_body:
            self.body_too_large = True
        if not self.body_too_large:
            super().handleContentChunk(data)


def load_endpoint_modules() -> None:
    """Import every module of api/endpoints so their @endpoint lines fill the table."""
    from bitdust_node.api import endpoints

    for info in pkgutil.iter_modules(endpoints.__path__):
        importlib.import_module(f"{endpoints.__name__}.{info.name}")


# scraped without the secret when interface/api/metrics-public says so
METRICS_PATH = "/metrics"


def envelope_ok(result: Any, started: float, bare: bool = False) -> dict[str, Any]:
    out: dict[str, Any] = {"status": "OK", "execution": f"{time.perf_counter() - started:.6f}"}
    if not bare:
        out["result"] = result
    return out


def envelope_error(errors: list[str], started: float) -> dict[str, Any]:
    return {"status": "ERROR", "errors": errors, "execution": f"{time.perf_counter() - started:.6f}"}


def _pattern(path: str) -> str:
    """`/a/<name>/v1` -> a regex with a named group for each `<name>` (one path segment)."""
    return re.sub(r"<([a-z_]+)>", r"(?P<\1>[A-Za-z0-9_.@$-]{1,100})", re.escape(path))


class WebFront(Protocol):
    """Pages served on the REST port beside the API (the web interface, which the node hands in: the API
    knows nothing of it)."""

    def serves(self, path: bytes) -> bool: ...

    def handle(self, request: Any) -> Awaitable[bytes]: ...


# makes the front, given the check of the API secret (its login is opened by a token that wants the secret)
FrontFactory = Callable[[Callable[[Any], None]], WebFront]


# the methods the API and the web interface answer; any other is 405
METHODS = frozenset({b"GET", b"POST", b"PUT", b"DELETE", b"PATCH", b"HEAD", b"OPTIONS"})


class _Dispatch(Resource):
    """Every path to one async handler whose bytes are the reply; a client that goes away cancels it."""

    isLeaf = True

    def __init__(self, handler: Callable[[Any], Coroutine[Any, Any, bytes]], api: RestAPI) -> None:
        super().__init__()
        self._handler = handler
        self.api = api  # what serves this site (the tests' way to its web interface)

    def render(self, request: Request) -> Any:
        if request.method not in METHODS:
            request.setResponseCode(405)
            return b""
        # finished by the handler itself (a stream of live updates), or the client went away
        finished: list[bool] = []
        request.notifyFinish().addBoth(lambda _: finished.append(True))
        handling = defer.ensureDeferred(self._handler(request))
        request.notifyFinish().addErrback(lambda _: handling.cancel())

        def reply(body: bytes) -> None:
            if not finished:
                request.write(body)
                request.finish()

        def failed(failure: Failure) -> None:
            if finished:
                if not failure.check(defer.CancelledError):
                    log.failure("REST request failed after it ended", failure)
                return
            log.failure("REST request failed", failure)
            request.setResponseCode(500)
            request.finish()

        handling.addCallbacks(reply, failed)
        return NOT_DONE_YET


class RestAPI:
    def __init__(self, api: ApiContext, secret: str, front: FrontFactory | None = None) -> None:
        self.api = api
        self._secret = secret
        load_endpoint_modules()
        self.routes: dict[tuple[str, str], Endpoint] = {(e.method, e.path): e for e in ENDPOINTS if "<" not in e.path}
        # paths with a part that varies, like /message/receive/<consumer>/v1
        self.patterns = [(e, re.compile(_pattern(e.path))) for e in ENDPOINTS if "<" in e.path]
        self.front = front(self._check_secret) if front is not None else None

    def site(self) -> Site:
        site = Site(_Dispatch(self.dispatch, self), requestFactory=CappedRequest)
        site.noisy = False
        site.displayTracebacks = False
        return site

    def _check_secret(self, request: CappedRequest) -> None:
        if not self.api.ctx.settings.get("interface/api/auth-secret-enabled"):
            return
        given = request.getHeader(SECRET_HEADER) or b""
        if not given or not hmac.compare_digest(given, self._secret.encode()):
            raise Unauthorized("api_secret header is missing or wrong")

    def _route(self, method: str, path: str) -> tuple[Endpoint, dict[str, str]]:
        endpoint = self.routes.get((method, path))
        if endpoint is not None:
            return endpoint, {}
        for candidate, pattern in self.patterns:
            match = pattern.fullmatch(path)
            if candidate.method == method and match:
                return candidate, match.groupdict()
        raise NotFound(f"method {method} {path} was not found")

    @staticmethod
    def _parse(request: CappedRequest) -> ApiRequest:
        # CappedRequest flags it while the body arrives; the read bound covers any other request class
        raw = request.content.read(MAX_BODY + 1) if request.content is not None else b""
        if getattr(request, "body_too_large", False) or len(raw) > MAX_BODY:
            raise TooLarge(f"request body over {MAX_BODY} bytes")
        args = {k.decode(errors="replace"): v[-1].decode(errors="replace") for k, v in request.args.items()}
        body: Any = {}
        if raw.strip():
            try:
                body = json.loads(raw)
            except ValueError:
                raise InvalidInput("request body is not valid JSON") from None
            if not isinstance(body, dict):
                raise InvalidInput("request body must be a JSON object")
        return ApiRequest(args=args, body=body)

    async def dispatch(self, request: CappedRequest) -> bytes:
        if self.front is not None and self.front.serves(request.path):
            return await self.front.handle(request)
        started = time.perf_counter()
        request.setHeader(b"content-type", b"application/json")
        try:
            method = request.method.decode()
            path = request.path.decode(errors="replace")
            if not (path == METRICS_PATH and self.api.ctx.settings.get("interface/api/metrics-public")):
                self._check_secret(request)
            endpoint, path_args = self._route(method, path)
            parsed = self._parse(request)
            if path_args:
                parsed = ApiRequest(args={**parsed.args, **path_args}, body=parsed.body)
            if endpoint.service and self.api.graph.state(endpoint.service.removeprefix("service_")) != "ON":
                raise ServiceOff(f"{endpoint.service} is not started")
            result = await defer.maybeDeferred(endpoint.handler, self.api, parsed)
            if isinstance(result, TextReply):
                request.setHeader(b"content-type", result.content_type)
                return result.body
            if isinstance(result, WithMessage):
                reply = envelope_ok(result.result, started, endpoint.bare)
                reply["message"] = result.message
            else:
                reply = result if endpoint.raw else envelope_ok(result, started, endpoint.bare)
        except BitDustError as err:
            request.setResponseCode(err.http_status)
            reply = envelope_error([err.message], started)
        except defer.CancelledError:
            raise  # the client went away: nothing crashed, and nobody is there to answer
        except Exception:
            log.failure("REST handler crashed", Failure())
            request.setResponseCode(500)
            reply = envelope_error(["internal error; see the node's log"], started)
        return json.dumps(reply, indent=2, sort_keys=True, default=str).encode() + b"\n"

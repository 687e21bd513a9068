"""The web interface's requests: checked (Host, session, CSRF, origin), routed, answered.

The REST API hands over `/` and every path under `/gui/`. Pages and their live updates want a session;
a session is opened only by a one-time token from `POST /gui/token/v1`, which wants the API secret. The
session never authorises the REST API's own paths: the pages change the node through `/gui/api/<path>`,
a short allow-list of the REST endpoints called through their own handlers, with the CSRF header.
"""

from __future__ import annotations

import json
import re
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import Any

from twisted.internet import defer
from twisted.logger import Logger
from twisted.protocols.basic import FileSender
from twisted.python.failure import Failure
from twisted.web.template import tags

from bitdust_node.api.routes import ApiContext
from bitdust_node.errors import BitDustError, InvalidInput, NotFound, ServiceOff, TooLarge, Unauthorized
from bitdust_node.gui import guard, pages
from bitdust_node.gui.endpoints import Endpoints
from bitdust_node.gui.live import LiveHub
from bitdust_node.gui.logtail import LogTail
from bitdust_node.gui.panels.base import PANELS, View, html, section
from bitdust_node.gui.paths import serves_gui
from bitdust_node.gui.probes import PROBE_TIMEOUT, ServerProbes
from bitdust_node.gui.session import Session, SessionStore
from bitdust_node.gui.transfers import MAX_PIECE, BrowserDownloads, BrowserUploads
from bitdust_node.logs import level_for
from bitdust_node.net.clock import TimeSource
from bitdust_node.net.http import CappedHttp

log = Logger()

STATIC = Path(__file__).parent / "static"
STATIC_TYPES = {".js": b"text/javascript; charset=utf-8", ".css": b"text/css; charset=utf-8",
                ".svg": b"image/svg+xml"}
_STATIC_NAME = re.compile(r"[a-z0-9_-]{1,40}\.(js|css|svg)")
# what the pages may change through /gui/api/: nothing that writes a key or reads a local path
GUI_API = {
    ("POST", "/config/set/v1"),
    ("POST", "/message/send/v1"),
    ("DELETE", "/file/delete/v1"),
    ("POST", "/file/upload/stop/v1"),
    ("POST", "/file/download/stop/v1"),
}
# a JSON body of the pages is small
MAX_JSON = 64 * 1024
TEMP = "temp"


serves = serves_gui


class GuiSite:
    def __init__(
        self, api: ApiContext, check_secret: Callable[[Any], None], clock: TimeSource | None = None,
        tail: LogTail | None = None,
    ) -> None:
        self.api = api
        self.clock: TimeSource = clock if clock is not None else api.ctx.reactor
        self._check_secret = check_secret
        self.sessions = SessionStore(self.clock)
        self.endpoints = Endpoints(api)
        settings = api.ctx.settings
        if tail is None:
            tail = LogTail(lambda: level_for(int(settings.get("logs/debug-level") or 0)))
            tail.watch()
        self.tail = tail
        self.probes = ServerProbes(CappedHttp(api.ctx.reactor, timeout=PROBE_TIMEOUT), self.clock)
        self.live = LiveHub(self.clock, self.render_panels, self.endpoints)
        self.uploads = BrowserUploads(api.ctx.home / TEMP / "gui-uploads", self.clock)
        self.downloads = BrowserDownloads(api.ctx.home / TEMP / "gui-downloads", self.clock)
        self._static: dict[str, bytes] = {}

    # -- the way in

    def serves(self, path: bytes) -> bool:
        return serves(path)

    async def handle(self, request: Any) -> bytes:
        for name, value in guard.SECURITY_HEADERS.items():
            request.setHeader(name, value)
        allowed = guard.allowed_hosts(self.api.rest_url())
        if not guard.host_ok(request.getHeader(b"host"), allowed):
            # DNS rebinding: a foreign name resolved to this address gets nothing
            request.setResponseCode(421)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            names = " or ".join(f"http://{a}" for a in sorted(allowed))
            return f"this address serves only {names}\n".encode()
        path = request.path.decode("utf-8", errors="replace")
        method = request.method.decode("ascii", errors="replace")
        try:
            return await self._route(request, method, path, allowed)
        except BitDustError as err:
            return self._json(request, {"ok": False, "error": err.message}, err.http_status)
        except defer.CancelledError:
            raise  # the browser went away: nothing crashed
        except Exception:
            log.failure("web interface request {method} {path} failed", Failure(), method=method, path=path)
            return self._json(request, {"ok": False, "error": "internal error; see the node's log"}, 500)

    async def _route(self, request: Any, method: str, path: str, allowed: frozenset[str]) -> bytes:
        if path == "/gui/token/v1" and method == "POST":
            return self._token(request)
        if path.startswith("/gui/static/") and method == "GET":
            return self._static_file(request, path.removeprefix("/gui/static/"))
        if path == "/gui/login" and method == "GET":
            return await self._login(request)
        cookie = guard.cookie_value(request.getHeader(b"cookie"), guard.cookie_name(self.api.rest_url()))
        session = self.sessions.session(cookie)
        page = pages.BY_PATH.get(path)
        if session is None:
            if page is not None or path in ("/gui", "/gui/"):
                request.setResponseCode(401)
                return await self._anonymous(request)
            raise Unauthorized("no session: run `bitdust gui` on this machine")
        assert cookie is not None
        if method == "GET":
            if page is not None:
                return await self._page(request, page, session)
            if path in ("/gui", "/gui/"):
                return self._redirect(request, "/")
            if path == "/gui/events":
                return await self._events(request, cookie)
            if path.startswith("/gui/download/"):
                return await self._send_download(request, cookie, path.removeprefix("/gui/download/"))
            raise NotFound(f"{path} was not found")
        # everything else changes something: our own pages only, with the session's CSRF token
        if not guard.change_allowed(request.getHeader(b"origin"), request.getHeader(b"sec-fetch-site"), allowed):
            raise Unauthorized("refused: this request does not come from the node's own pages")
        if not session.csrf_matches(request.getHeader(guard.CSRF_HEADER)):
            raise Unauthorized("refused: the CSRF token is missing or wrong; reload the page")
        return await self._change(request, method, path, cookie)

    async def _change(self, request: Any, method: str, path: str, cookie: str) -> bytes:
        if path == "/gui/logout" and method == "POST":
            self.sessions.end(cookie)
            request.setHeader(b"set-cookie", guard.expired_cookie(guard.cookie_name(self.api.rest_url())))
            return self._json(request, {"ok": True})
        if path.startswith("/gui/api/") and (method, path.removeprefix("/gui/api")) in GUI_API:
            answer = await self.endpoints.call(method, path.removeprefix("/gui/api"), {}, self._body(request))
            if answer.ok:
                self.live.poke()
                return self._json(request, {"ok": True, "result": answer.result})
            return self._json(request, {"ok": False, "error": answer.error}, answer.status)
        if path == "/gui/upload/start" and method == "POST":
            body = self._body(request)
            upload_id = self.uploads.start(cookie, str(body.get("name", "")), body.get("size"))
            return self._json(request, {"ok": True, "id": upload_id, "piece": MAX_PIECE})
        match = re.fullmatch(r"/gui/upload/([A-Za-z0-9_-]{8,64})/(piece|finish)", path)
        if match and method == "POST":
            if match.group(2) == "piece":
                data = self._raw(request)
                offset = request.args.get(b"offset", [b""])[-1].decode("ascii", errors="replace")
                received = self.uploads.piece(cookie, match.group(1), offset, data)
                return self._json(request, {"ok": True, "received": received})
            return await self._finish_upload(request, cookie, match.group(1))
        if path == "/gui/download/prepare" and method == "POST":
            return await self._prepare_download(request, cookie)
        raise NotFound(f"{method} {path} was not found")

    # -- login

    def _token(self, request: Any) -> bytes:
        self._check_secret(request)
        token = self.sessions.issue_token()
        url = f"{self.api.rest_url()}/gui/login?{urllib.parse.urlencode({'token': token})}"
        request.setHeader(b"content-type", b"application/json")
        reply = {"status": "OK", "result": {"url": url, "expires_in": int(self.sessions.token_ttl)}}
        return json.dumps(reply).encode() + b"\n"

    async def _login(self, request: Any) -> bytes:
        token = request.args.get(b"token", [b""])[-1].decode("ascii", errors="replace")
        session_id = self.sessions.redeem(token)
        if session_id is None:
            request.setResponseCode(403)
            return await pages.plain_page(
                "This link has expired",
                tags.p("A link of ", tags.code("bitdust gui"), " works once, within a minute. Run ",
                       tags.code("bitdust gui"), " again on the machine of the node."))
        request.setHeader(b"set-cookie", guard.session_cookie(session_id, guard.cookie_name(self.api.rest_url())))
        # the token leaves the address bar and the history at once
        return self._redirect(request, "/")

    async def _anonymous(self, request: Any) -> bytes:
        return await pages.plain_page(
            "bitdust-node",
            tags.p("This is the web interface of a BitDust node. To open it, run ", tags.code("bitdust gui"),
                   " on this machine, as the user who runs the node (or ", tags.code("bitdust gui --print-url"),
                   " and open the address it prints)."))

    # -- pages

    async def render_panels(self, page_name: str, args: tuple[tuple[str, str], ...]) -> dict[str, str]:
        page = pages.BY_NAME[page_name]
        view = View(self.endpoints, dict(args), self.tail, self.probes)
        return {name: await html(await section(PANELS[name], view)) for name in page.panels}

    def _page_args(self, request: Any, page: pages.Page) -> dict[str, str]:
        found = {}
        for name in page.args:
            values = request.args.get(name.encode())
            if values:
                found[name] = values[-1].decode("utf-8", errors="replace")[:300]
        return found

    async def _page(self, request: Any, page: pages.Page, session: Session) -> bytes:
        args = self._page_args(request, page)
        panels = await self.render_panels(page.name, tuple(sorted(args.items())))
        view_id = self.live.drawn(panels) if page.live else ""
        me = await self.endpoints.get("/identity/get/v1")
        who = me.result["global_id"] if me.ok else "no identity yet"
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        return await pages.document(page, panels, session.csrf, view_id, args, who)

    async def _events(self, request: Any, cookie: str) -> bytes:
        name = request.args.get(b"page", [b""])[-1].decode("ascii", errors="replace")
        page = pages.BY_NAME.get(name)
        if page is None or not page.live:
            raise InvalidInput("page must name a page with live updates")
        args = tuple(sorted(self._page_args(request, page).items()))
        view_id = request.args.get(b"view", [b""])[-1].decode("ascii", errors="replace")
        closed = self.live.open(request, page.name, args, lambda: self.sessions.session(cookie) is not None, view_id)
        if closed is None:
            raise ServiceOff(f"{self.live.max_streams} live views are open already; close a tab of this interface")
        return await closed

    # -- files through the browser

    async def _finish_upload(self, request: Any, cookie: str, upload_id: str) -> bytes:
        body = self._body(request)
        staged = self.uploads.seal(cookie, upload_id)
        remote = str(body.get("remote_path") or "").strip() or staged.name
        work = defer.ensureDeferred(self.endpoints.call(
            "POST", "/file/upload/start/v1", {}, {"local_path": str(staged.path), "remote_path": remote,
                                                  "wait_result": True}))
        # a refusal (bad path, customer off) comes back before anything is sent to suppliers
        if work.called:
            answer = await work
            self.uploads.drop(upload_id)
            if not answer.ok:
                return self._json(request, {"ok": False, "error": answer.error}, answer.status)
            return self._json(request, {"ok": True, "remote_path": remote, "state": "done"})

        def done(answer: Any) -> None:
            self.uploads.drop(upload_id)
            self.live.poke()

        work.addBoth(done)
        self.live.poke()
        return self._json(request, {"ok": True, "remote_path": remote, "state": "running"})

    async def _prepare_download(self, request: Any, cookie: str) -> bytes:
        body = self._body(request)
        download_id, folder = self.downloads.folder()
        answer = await self.endpoints.call("POST", "/file/download/start/v1", {}, {
            "remote_path": str(body.get("remote_path") or ""), "destination_folder": str(folder),
            "wait_result": True})
        if not answer.ok:
            self.downloads.abandon(folder)
            return self._json(request, {"ok": False, "error": answer.error}, answer.status)
        # the customer restores a file into the folder under its own name
        restored = Path(answer.result["local_path"]) / answer.result["remote_path"].rsplit("/", 1)[-1]
        self.downloads.offer(cookie, download_id, restored, folder)
        return self._json(request, {"ok": True, "id": download_id})

    async def _send_download(self, request: Any, cookie: str, download_id: str) -> bytes:
        offered = self.downloads.take(cookie, download_id)
        name = offered.path.name
        request.setHeader(b"content-type", b"application/octet-stream")
        request.setHeader(b"content-length", str(offered.path.stat().st_size).encode())
        request.setHeader(b"content-disposition",
                          f"attachment; filename*=UTF-8''{urllib.parse.quote(name)}".encode())
        try:
            with open(offered.path, "rb") as handle:
                await FileSender().beginFileTransfer(handle, request)
        finally:
            self.downloads.drop(offered)
        return b""

    # -- small answers

    def _static_file(self, request: Any, name: str) -> bytes:
        if not _STATIC_NAME.fullmatch(name) or not (STATIC / name).is_file():
            raise NotFound(f"{name} was not found")
        if name not in self._static:
            self._static[name] = (STATIC / name).read_bytes()
        request.setHeader(b"content-type", STATIC_TYPES[Path(name).suffix])
        return self._static[name]

    @staticmethod
    def _raw(request: Any) -> bytes:
        data = request.content.read(MAX_PIECE + 1) if request.content is not None else b""
        if getattr(request, "body_too_large", False) or len(data) > MAX_PIECE:
            raise TooLarge(f"a piece is at most {MAX_PIECE} bytes")
        return bytes(data)

    @staticmethod
    def _body(request: Any) -> dict[str, Any]:
        raw = request.content.read(MAX_JSON + 1) if request.content is not None else b""
        if getattr(request, "body_too_large", False) or len(raw) > MAX_JSON:
            raise TooLarge(f"request body over {MAX_JSON} bytes")
        if not raw.strip():
            return {}
        try:
            body = json.loads(raw)
        except ValueError:
            raise InvalidInput("request body is not valid JSON") from None
        if not isinstance(body, dict):
            raise InvalidInput("request body must be a JSON object")
        return body

    @staticmethod
    def _json(request: Any, value: Any, status: int = 200) -> bytes:
        request.setResponseCode(status)
        request.setHeader(b"content-type", b"application/json")
        return json.dumps(value, default=str).encode() + b"\n"

    @staticmethod
    def _redirect(request: Any, where: str) -> bytes:
        request.setResponseCode(303)
        request.setHeader(b"location", where.encode())
        return b""


"""What every request to the web interface is checked for before anything else: the Host it names, where
a change comes from, the session cookie; and the headers every answer carries.

The Host check stops DNS rebinding: a page of evil.example whose name is made to resolve to 127.0.0.1
reaches this port with `Host: evil.example:8180` and is refused. Only the address and port the node
listens on, and `localhost` with that port, are accepted.
"""

from __future__ import annotations

from http.cookies import CookieError, SimpleCookie

COOKIE = "bitdust_gui"
CSRF_HEADER = b"x-csrf-token"

# no inline script or style anywhere: a value of the node that slipped through escaping still runs nothing
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS: dict[bytes, bytes] = {
    b"content-security-policy": CONTENT_SECURITY_POLICY.encode(),
    b"x-frame-options": b"DENY",
    b"referrer-policy": b"no-referrer",
    b"x-content-type-options": b"nosniff",
    b"cross-origin-opener-policy": b"same-origin",
    b"cross-origin-resource-policy": b"same-origin",
    b"cache-control": b"no-store",
}
# a longer Host, Origin or Cookie header is not one a browser of ours sends
MAX_HEADER = 4096


def allowed_hosts(rest_url: str) -> frozenset[str]:
    """`host:port` values a browser may send for the REST address `http://HOST:PORT` (lower case)."""
    netloc = rest_url.split("://", 1)[-1].rstrip("/")
    host, _sep, port = netloc.rpartition(":")
    host = host.strip("[]").lower()
    if not host or not port.isdigit():
        return frozenset()
    shown = f"[{host}]" if ":" in host else host
    found = {f"{shown}:{port}", f"localhost:{port}"}
    if port == "80":
        found |= {shown, "localhost"}
    return frozenset(found)


def host_ok(header: bytes | None, allowed: frozenset[str]) -> bool:
    if not header or len(header) > MAX_HEADER:
        return False
    return header.decode("ascii", errors="replace").strip().lower() in allowed


def change_allowed(origin: bytes | None, fetch_site: bytes | None, allowed: frozenset[str]) -> bool:
    """Whether a request that changes something comes from our own pages.

    Browsers send Origin on every POST and Sec-Fetch-Site on every request; a page of another port of
    this machine is "same-site" (SameSite cookies do not tell ports apart), so only same-origin passes.
    """
    if fetch_site is not None and fetch_site not in (b"same-origin", b"none"):
        return False
    if origin is None:
        return True
    if len(origin) > MAX_HEADER:
        return False
    text = origin.decode("ascii", errors="replace").strip().lower()
    return text.startswith("http://") and text.removeprefix("http://") in allowed


def cookie_value(header: bytes | None, name: str = COOKIE) -> str | None:
    """The value of cookie `name` in a Cookie header, or None."""
    if not header or len(header) > MAX_HEADER:
        return None
    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(header.decode("latin-1"))
    except CookieError:
        return None
    morsel = jar.get(name)
    return morsel.value if morsel is not None else None


def cookie_name(rest_url: str) -> str:
    """The session cookie's name for this port: browsers keep cookies by host, not port, so two nodes
    on one machine would otherwise overwrite each other's."""
    port = rest_url.rpartition(":")[2]
    return f"{COOKIE}_{port}" if port.isdigit() else COOKIE


def session_cookie(session_id: str, name: str = COOKIE) -> bytes:
    # no Max-Age: the browser forgets it when it closes; the node forgets it after IDLE_TTL
    return f"{name}={session_id}; HttpOnly; SameSite=Strict; Path=/".encode()


def expired_cookie(name: str = COOKIE) -> bytes:
    return f"{name}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0".encode()

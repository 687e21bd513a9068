"""Login to the web interface: one-time tokens, the sessions they open, and each session's CSRF token.

`bitdust gui` asks the REST API (with its secret) for a token; the browser brings it once, within
TOKEN_TTL, and gets a session cookie instead. Tokens and session ids are kept only as SHA-256
digests, so neither a lookup's timing nor a dump of this object gives one away.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets

import attrs

from bitdust_node.net.clock import TimeSource

# a token is for the browser `bitdust gui` opens right now
TOKEN_TTL = 60.0
# a session left alone this long ends; none lasts longer than MAX_AGE
IDLE_TTL = 12 * 3600.0
MAX_AGE = 7 * 24 * 3600.0
# bounds on what callers of the token endpoint and browsers can make the node hold
MAX_TOKENS = 16
MAX_SESSIONS = 32
# longer input is not a token of ours: refused before hashing
MAX_SECRET_TEXT = 128


def _digest(secret: str) -> bytes:
    return hashlib.sha256(secret.encode("ascii", errors="replace")).digest()


@attrs.define(eq=False)
class Session:
    csrf: str
    created: float
    last_seen: float

    def csrf_matches(self, given: str | bytes | None) -> bool:
        if not given:
            return False
        text = given.decode("ascii", errors="replace") if isinstance(given, bytes) else given
        return hmac.compare_digest(text.encode(), self.csrf.encode())


@attrs.define
class SessionStore:
    """Tokens and sessions, timed by an injected clock (IReactorTime)."""

    clock: TimeSource
    token_ttl: float = TOKEN_TTL
    idle_ttl: float = IDLE_TTL
    max_age: float = MAX_AGE
    max_tokens: int = MAX_TOKENS
    max_sessions: int = MAX_SESSIONS
    # sha256(token) -> when it stops working
    _tokens: dict[bytes, float] = attrs.field(factory=dict)
    # sha256(session id) -> the session
    _sessions: dict[bytes, Session] = attrs.field(factory=dict)

    def issue_token(self) -> str:
        """A new one-time token; the oldest unused one goes when MAX_TOKENS are waiting."""
        now = self.clock.seconds()
        self._tokens = {k: t for k, t in self._tokens.items() if t > now}
        while len(self._tokens) >= self.max_tokens:
            del self._tokens[min(self._tokens, key=self._tokens.__getitem__)]
        token = secrets.token_urlsafe(32)
        self._tokens[_digest(token)] = now + self.token_ttl
        return token

    def redeem(self, token: str | None) -> str | None:
        """The id of a new session for a valid, unexpired, unused token (which is used up); else None."""
        if not token or len(token) > MAX_SECRET_TEXT:
            return None
        expires = self._tokens.pop(_digest(token), None)
        now = self.clock.seconds()
        if expires is None or expires <= now:
            return None
        self._forget_stale(now)
        while len(self._sessions) >= self.max_sessions:
            del self._sessions[min(self._sessions, key=lambda k: self._sessions[k].last_seen)]
        session_id = secrets.token_urlsafe(32)
        self._sessions[_digest(session_id)] = Session(secrets.token_urlsafe(32), now, now)
        return session_id

    def session(self, session_id: str | None) -> Session | None:
        """The live session of this id (its idle time starts again), or None."""
        if not session_id or len(session_id) > MAX_SECRET_TEXT:
            return None
        key = _digest(session_id)
        found = self._sessions.get(key)
        now = self.clock.seconds()
        if found is None:
            return None
        if self._stale(found, now):
            del self._sessions[key]
            return None
        found.last_seen = now
        return found

    def end(self, session_id: str | None) -> None:
        if session_id and len(session_id) <= MAX_SECRET_TEXT:
            self._sessions.pop(_digest(session_id), None)

    @property
    def open_sessions(self) -> int:
        return len(self._sessions)

    def _stale(self, session: Session, now: float) -> bool:
        return now - session.last_seen >= self.idle_ttl or now - session.created >= self.max_age

    def _forget_stale(self, now: float) -> None:
        self._sessions = {k: s for k, s in self._sessions.items() if not self._stale(s, now)}

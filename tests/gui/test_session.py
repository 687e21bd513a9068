"""The web interface's login: one-time tokens, sessions, CSRF tokens, and the Host, origin and cookie checks."""

from __future__ import annotations

from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.gui import guard
from bitdust_node.gui.session import MAX_SECRET_TEXT, SessionStore


class TokenTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.store = SessionStore(self.clock, token_ttl=60, idle_ttl=3600, max_age=86400)

    def test_a_token_opens_one_session_once(self) -> None:
        token = self.store.issue_token()
        session_id = self.store.redeem(token)
        self.assertIsNotNone(session_id)
        self.assertIsNotNone(self.store.session(session_id))
        self.assertIsNone(self.store.redeem(token), "a token works once")

    def test_a_token_expires(self) -> None:
        token = self.store.issue_token()
        self.clock.advance(59.9)
        other = self.store.issue_token()
        self.clock.advance(0.1)
        self.assertIsNone(self.store.redeem(token))
        self.assertIsNotNone(self.store.redeem(other))

    def test_unknown_empty_and_oversized_tokens_open_nothing(self) -> None:
        self.store.issue_token()
        for given in (None, "", "x", "a" * (MAX_SECRET_TEXT + 1), "\u00e9" * 10):
            self.assertIsNone(self.store.redeem(given))
        self.assertEqual(self.store.open_sessions, 0)

    def test_waiting_tokens_are_bounded_oldest_first(self) -> None:
        store = SessionStore(self.clock, max_tokens=3)
        tokens = []
        for _ in range(4):
            tokens.append(store.issue_token())
            self.clock.advance(1)
        self.assertIsNone(store.redeem(tokens[0]))
        self.assertTrue(all(store.redeem(t) for t in tokens[1:]))

    def test_tokens_and_sessions_are_kept_only_as_digests(self) -> None:
        token = self.store.issue_token()
        session_id = self.store.redeem(self.store.issue_token())
        kept = repr(self.store)
        self.assertNotIn(token, kept)
        self.assertNotIn(str(session_id), kept)


class SessionTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.store = SessionStore(self.clock, idle_ttl=100, max_age=1000)

    def open(self) -> str:
        session_id = self.store.redeem(self.store.issue_token())
        assert session_id is not None
        return session_id

    def test_a_session_ends_when_idle(self) -> None:
        session_id = self.open()
        self.clock.advance(99)
        self.assertIsNotNone(self.store.session(session_id), "use keeps it alive")
        self.clock.advance(99)
        self.assertIsNotNone(self.store.session(session_id))
        self.clock.advance(100)
        self.assertIsNone(self.store.session(session_id))
        self.assertEqual(self.store.open_sessions, 0)

    def test_a_session_ends_at_its_maximum_age_even_in_use(self) -> None:
        session_id = self.open()
        for _ in range(19):
            self.clock.advance(50)
            self.assertIsNotNone(self.store.session(session_id))
        self.clock.advance(50)
        self.assertIsNone(self.store.session(session_id))

    def test_logging_out_ends_it(self) -> None:
        session_id = self.open()
        other = self.open()
        self.store.end(session_id)
        self.assertIsNone(self.store.session(session_id))
        self.assertIsNotNone(self.store.session(other))

    def test_sessions_are_bounded_least_recently_used_first(self) -> None:
        store = SessionStore(self.clock, max_sessions=2)
        first = store.redeem(store.issue_token())
        self.clock.advance(1)
        second = store.redeem(store.issue_token())
        self.clock.advance(1)
        store.session(first)
        third = store.redeem(store.issue_token())
        self.assertIsNotNone(store.session(first))
        self.assertIsNone(store.session(second))
        self.assertIsNotNone(store.session(third))

    def test_each_session_has_its_own_csrf_token(self) -> None:
        one, two = self.store.session(self.open()), self.store.session(self.open())
        assert one is not None and two is not None
        self.assertNotEqual(one.csrf, two.csrf)
        self.assertTrue(one.csrf_matches(one.csrf))
        self.assertTrue(one.csrf_matches(one.csrf.encode()))
        for wrong in (two.csrf, "", None, one.csrf[:-1], one.csrf + "x"):
            self.assertFalse(one.csrf_matches(wrong))


class GuardTests(SynchronousTestCase):
    allowed = guard.allowed_hosts("http://127.0.0.5:8180")

    def test_only_the_listening_address_and_localhost_with_its_port(self) -> None:
        self.assertEqual(self.allowed, {"127.0.0.5:8180", "localhost:8180"})
        for good in (b"127.0.0.5:8180", b"localhost:8180", b"LOCALHOST:8180"):
            self.assertTrue(guard.host_ok(good, self.allowed), good)
        for bad in (None, b"", b"evil.example:8180", b"127.0.0.5", b"127.0.0.5:8181", b"localhost",
                    b"127.0.0.5:8180.evil.example", b"x" * 5000):
            self.assertFalse(guard.host_ok(bad, self.allowed), bad)

    def test_ipv6_and_port_80(self) -> None:
        self.assertEqual(guard.allowed_hosts("http://::1:8180"), {"[::1]:8180", "localhost:8180"})
        self.assertEqual(guard.allowed_hosts("http://127.0.0.1:80"),
                         {"127.0.0.1:80", "localhost:80", "127.0.0.1", "localhost"})
        self.assertEqual(guard.allowed_hosts(""), frozenset())

    def test_changes_only_from_our_own_origin(self) -> None:
        ok = guard.change_allowed
        self.assertTrue(ok(b"http://127.0.0.5:8180", b"same-origin", self.allowed))
        self.assertTrue(ok(b"http://localhost:8180", None, self.allowed))
        self.assertTrue(ok(None, None, self.allowed), "a client that is not a browser sends neither")
        # another port of this machine is "same-site" to a browser, never same-origin
        self.assertFalse(ok(b"http://127.0.0.5:3000", b"same-site", self.allowed))
        self.assertFalse(ok(b"http://127.0.0.5:3000", None, self.allowed))
        self.assertFalse(ok(None, b"cross-site", self.allowed))
        self.assertFalse(ok(b"null", None, self.allowed))
        self.assertFalse(ok(b"https://127.0.0.5:8180", None, self.allowed))

    def test_the_session_cookie(self) -> None:
        header = guard.session_cookie("abc")
        self.assertEqual(header, b"bitdust_gui=abc; HttpOnly; SameSite=Strict; Path=/")
        self.assertIn(b"Max-Age=0", guard.expired_cookie())
        self.assertEqual(guard.cookie_value(b"a=1; bitdust_gui=abc; b=2"), "abc")
        self.assertIsNone(guard.cookie_value(b"a=1"))
        self.assertIsNone(guard.cookie_value(None))
        self.assertIsNone(guard.cookie_value(b"bitdust_gui=" + b"x" * 5000))
        # one cookie a port: two nodes of one machine keep their own sessions
        self.assertEqual(guard.cookie_name("http://127.0.0.1:8180"), "bitdust_gui_8180")
        self.assertEqual(guard.cookie_value(b"bitdust_gui_8181=a; bitdust_gui_8180=b", "bitdust_gui_8180"), "b")

    def test_the_headers_forbid_inline_script_and_framing(self) -> None:
        policy = guard.SECURITY_HEADERS[b"content-security-policy"].decode()
        self.assertIn("script-src 'self'", policy)
        self.assertNotIn("unsafe-inline", policy)
        self.assertIn("frame-ancestors 'none'", policy)
        self.assertEqual(guard.SECURITY_HEADERS[b"x-frame-options"], b"DENY")
        self.assertEqual(guard.SECURITY_HEADERS[b"referrer-policy"], b"no-referrer")

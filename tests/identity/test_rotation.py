"""The `id_rotator` machine with a Clock and fake identity servers: when a rotation starts, which servers are
chosen, which revision is signed, what is published, adopted and announced, and what is left alone."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import attrs
from twisted.internet import defer
from twisted.internet.task import Clock
from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.errors import InvalidInput
from bitdust_node.fsm import Registry
from bitdust_node.identity.holder import MyIdentityHolder
from bitdust_node.identity.known_servers import parse_known_servers
from bitdust_node.identity.my_identity import MyIdentity
from bitdust_node.identity.rotation import (
    CandidateAnswer,
    FirstSourceWatch,
    PeerDirectory,
    Rotation,
    RotationFailed,
    RotationSettings,
    Rotator,
    SourceHealth,
    candidate_servers,
    new_sources,
    next_revision,
)
from bitdust_node.identity.signing import sign_identity, verify_identity
from bitdust_node.wire import identity_xml
from bitdust_node.wire.identity_xml import IdUrl
from tests.identity import vectors

A, S2, S3, S4 = "127.0.0.1:8084", "127.0.0.2:8085", "127.0.0.3:8086", "127.0.0.4:8087"
INTERVAL = 300.0


def url(server: str, name: str = "alice") -> str:
    return f"http://{server}/{name}.xml"


def me_on(*servers: str, revision: int = 2, key: str = "alice") -> MyIdentity:
    identity = identity_xml.Identity(
        sources=tuple(url(s) for s in servers), contacts=("tcp://127.0.0.1:7774",), date="Dec 06, 2026",
        version="sources", revision=revision,
    )
    return MyIdentity(sign_identity(identity, vectors.private_key(key)), vectors.private_key(key))


@attrs.define
class FakeServers:
    """Identity servers as the rotator sees them: which serve my identity (and which revision), which would
    take it; every question is recorded."""

    serving: dict[str, int] = attrs.field(factory=dict)
    # candidate URL -> its answer (missing: the server is down)
    answers: dict[str, CandidateAnswer] = attrs.field(factory=dict)
    # servers that keep my POSTed identity (a GET confirms it)
    taking: set[str] = attrs.field(factory=set)
    checked: list[str] = attrs.field(factory=list)
    probed: list[str] = attrs.field(factory=list)
    published: list[tuple[tuple[str, ...], bytes]] = attrs.field(factory=list)
    held: dict[str, defer.Deferred[Any]] = attrs.field(factory=dict)
    # a publication waits for this, when set
    publishing: defer.Deferred[None] | None = None

    # servers alive that lost my identity (they answer 404)
    lost: set[str] = attrs.field(factory=set)

    def check(self, idurl: str, me: MyIdentity) -> defer.Deferred[SourceHealth]:
        self.checked.append(idurl)
        if idurl in self.held:
            return self.held[idurl]
        if idurl in self.serving:
            return defer.succeed(SourceHealth(idurl, True, self.serving[idurl]))
        if idurl in self.lost:
            return defer.succeed(SourceHealth(idurl, False, None, "HTTP 404", missing=True))
        return defer.succeed(SourceHealth(idurl, False, None, "unreachable: connection refused"))

    def probe(self, idurl: IdUrl, me: MyIdentity) -> defer.Deferred[CandidateAnswer]:
        self.probed.append(idurl.url)
        return defer.succeed(self.answers.get(idurl.url, CandidateAnswer(idurl.url, False, None, "unreachable")))

    async def publish(self, idurls: list[IdUrl], xml: bytes) -> list[IdUrl]:
        self.published.append((tuple(u.url for u in idurls), xml))
        if self.publishing is not None:
            await self.publishing
        revision = identity_xml.parse(xml).revision
        for u in idurls:
            if u.url in self.taking:
                self.serving[u.url] = revision
        return [u for u in idurls if u.url in self.taking]


class RotatorTests(SynchronousTestCase):
    def setUp(self) -> None:
        self.clock = Clock()
        self.home = Path(self.mktemp())
        self.holder = MyIdentityHolder(self.home, me_on(A, S2))
        self.servers = FakeServers(serving={url(A): 2, url(S2): 2}, taking={url(S2), url(S3), url(S4)})
        self.settings = RotationSettings(True, INTERVAL, 2, 5, tuple(parse_known_servers(f"{A} {S2} {S3}")))
        self.registry = Registry()
        self.rotator = Rotator(self.holder, self.servers, self.servers, self.clock, lambda: self.settings,
                               self.registry.register("id_rotator", "AT_STARTUP"))
        self.told: list[MyIdentity] = []
        self.rotator.add_announcer(lambda me: defer.succeed(self.told.append(me)))
        self.addCleanup(self.rotator.stop)

    def free(self, server: str) -> None:
        self.servers.answers[url(server)] = CandidateAnswer(url(server), True, None, "free")

    def kill(self, server: str) -> None:
        self.servers.serving.pop(url(server), None)
        self.servers.taking.discard(url(server))

    def test_checks_every_source_at_start_then_at_each_interval(self) -> None:
        self.rotator.start()
        self.assertEqual(self.servers.checked, [url(A), url(S2)])
        self.assertEqual(self.rotator.state, "READY")
        self.clock.advance(INTERVAL - 1)
        self.assertEqual(len(self.servers.checked), 2)
        self.clock.advance(1)
        self.assertEqual(len(self.servers.checked), 4)
        self.assertEqual(self.rotator.core.last_checks, (SourceHealth(url(A), True, 2), SourceHealth(url(S2), True, 2)))
        self.assertEqual(self.holder.require().idurl, url(A))

    def test_rotates_after_the_first_source_failed_two_checks_in_a_row(self) -> None:
        self.free(S3)
        self.rotator.start()
        self.kill(A)
        self.clock.advance(INTERVAL)
        # one failed check is not enough: a server restarting must not move anyone
        self.assertEqual(self.rotator.core.watch.failures, 1)
        self.assertEqual(self.holder.require().idurl, url(A))
        self.assertEqual(self.servers.published, [])
        self.clock.advance(INTERVAL)
        me = self.holder.require()
        # the live S2 comes first and is my IDURL now; the free S3 tops the list up to min-servers
        self.assertEqual(me.identity.sources, (url(S2), url(S3)))
        self.assertEqual(me.identity.revision, 3)
        self.assertTrue(verify_identity(me.identity))
        self.assertEqual(me.identity.contacts, ("tcp://127.0.0.1:7774",))
        self.assertEqual(self.servers.published, [((url(S2), url(S3)), me.xml)])
        self.assertEqual(self.holder.former, (url(A),))
        self.assertEqual(self.told, [me])
        rotation = self.rotator.core.rotations[-1]
        self.assertEqual((rotation.old_idurl, rotation.new_idurl, rotation.confirmed),
                         (url(A), url(S2), (url(S2), url(S3))))
        self.assertEqual(self.rotator.state, "READY")
        self.assertEqual(self.registry.find("id_rotator").past[-2:], ["ID_SERVERS?", "MY_ID_ROTATE"])  # type: ignore[union-attr]
        # the next checks ask the new sources, and all is well
        self.clock.advance(INTERVAL)
        self.assertEqual(self.servers.checked[-2:], [url(S2), url(S3)])
        self.assertEqual(self.rotator.core.watch.failures, 0)

    def test_a_first_source_that_comes_back_starts_the_count_again(self) -> None:
        self.rotator.start()
        self.kill(A)
        self.clock.advance(INTERVAL)
        self.servers.serving[url(A)] = 2
        self.clock.advance(INTERVAL)
        self.kill(A)
        self.clock.advance(INTERVAL)
        self.assertEqual(self.servers.published, [])
        self.assertEqual(self.holder.require().idurl, url(A))

    def test_a_first_server_that_lost_my_identity_is_given_it_again_not_left(self) -> None:
        self.rotator.start()
        self.kill(A)
        self.servers.lost.add(url(A))
        self.servers.taking.add(url(A))
        self.clock.pump([INTERVAL, INTERVAL])
        self.assertEqual(self.holder.require().idurl, url(A))
        self.assertEqual(self.servers.published, [((url(A),), self.holder.require().xml)])
        self.assertEqual(self.rotator.core.watch.failures, 0)
        # one that answers 404 and refuses my identity too is dead to me
        self.servers.lost.add(url(A))
        self.kill(A)
        self.free(S3)
        self.clock.pump([INTERVAL, INTERVAL])
        self.assertEqual(self.holder.require().identity.sources, (url(S2), url(S3)))

    def test_two_servers_are_enough(self) -> None:
        # official nodes need a third server they do not hold yet; the live one I hold is enough here
        self.settings = attrs.evolve(self.settings, known=tuple(parse_known_servers(f"{A} {S2}")))
        self.rotator.start()
        self.kill(A)
        self.clock.pump([INTERVAL, INTERVAL])
        self.assertEqual(self.holder.require().identity.sources, (url(S2),))
        self.assertEqual(self.holder.require().identity.revision, 3)

    def test_a_dead_second_source_is_dropped_and_replaced(self) -> None:
        self.holder = MyIdentityHolder(self.home, me_on(A, S2, S3))
        self.rotator.core.me = self.holder
        self.free(S4)
        self.settings = attrs.evolve(self.settings, min_servers=3,
                                     known=tuple(parse_known_servers(f"{A} {S2} {S3} {S4}")))
        self.servers.serving[url(S3)] = 2
        self.rotator.start()
        self.kill(A)
        self.kill(S2)
        self.clock.pump([INTERVAL, INTERVAL])
        self.assertEqual(self.holder.require().identity.sources, (url(S3), url(S4)))

    def test_a_server_holding_another_users_name_is_skipped(self) -> None:
        self.settings = attrs.evolve(self.settings, known=tuple(parse_known_servers(f"{A} {S2} {S3} {S4}")))
        self.servers.answers[url(S3)] = CandidateAnswer(url(S3), False, None, "name taken: another key")
        self.free(S4)
        self.rotator.start()
        self.kill(A)
        self.clock.pump([INTERVAL, INTERVAL])
        self.assertEqual(self.holder.require().identity.sources, (url(S2), url(S4)))

    def test_the_revision_is_above_any_a_server_holds(self) -> None:
        self.servers.serving[url(S2)] = 5
        self.servers.answers[url(S3)] = CandidateAnswer(url(S3), True, 7, "holds my identity")
        self.rotator.start()
        self.kill(A)
        self.clock.pump([INTERVAL, INTERVAL])
        self.assertEqual(self.holder.require().identity.revision, 8)

    def test_no_server_takes_it_then_the_next_check_tries_again_without_looping(self) -> None:
        self.kill(A)
        self.kill(S2)
        self.rotator.start()
        self.clock.advance(INTERVAL)
        self.assertEqual(self.holder.require().idurl, url(A))
        self.assertIn("no identity server takes my identity", self.rotator.core.last_error)
        self.assertEqual(self.servers.probed, [url(S3)])
        self.assertEqual(self.rotator.state, "READY")
        # S3 comes up: the next check moves me there
        self.free(S3)
        self.clock.advance(INTERVAL)
        self.assertEqual(self.servers.probed, [url(S3), url(S3)])
        self.assertEqual(self.holder.require().identity.sources, (url(S3),))

    def test_a_new_first_source_that_does_not_confirm_changes_nothing(self) -> None:
        self.servers.taking.discard(url(S2))
        self.free(S3)
        self.rotator.start()
        self.kill(A)
        self.clock.pump([INTERVAL, INTERVAL])
        self.assertEqual(self.holder.require().idurl, url(A))
        self.assertEqual(self.told, [])
        self.assertIn("did not take my identity", self.rotator.core.last_error)

    def test_automatic_rotation_can_be_switched_off(self) -> None:
        self.settings = attrs.evolve(self.settings, enabled=False)
        self.rotator.start()
        self.kill(A)
        self.clock.pump([INTERVAL] * 3)
        self.assertEqual(self.holder.require().idurl, url(A))
        self.assertEqual(self.rotator.core.watch.failures, 3)
        self.assertEqual(self.servers.published, [])

    def test_an_operator_retires_a_live_server(self) -> None:
        self.free(S3)
        self.rotator.start()
        done: list[Rotation | None] = []
        self.rotator.rotate_now().addCallback(done.append)
        self.assertEqual(self.holder.require().identity.sources, (url(S2), url(S3)))
        self.assertEqual(done[0].old_idurl, url(A))  # type: ignore[union-attr]
        self.assertEqual(self.rotator.state, "READY")
        # by host and port; a server I do not use is a mistake, said plainly
        self.failureResultOf(self.rotator.rotate_now("127.0.0.9:8084"), InvalidInput)
        self.rotator.rotate_now("127.0.0.3:8086")
        self.assertEqual(self.holder.require().identity.sources, (url(S2),))

    def test_an_operator_is_told_when_nothing_else_takes_it(self) -> None:
        self.rotator.start()
        self.settings = attrs.evolve(self.settings, known=())
        self.holder = MyIdentityHolder(self.home, me_on(A))
        self.rotator.core.me = self.holder
        failure = self.failureResultOf(self.rotator.rotate_now(), RotationFailed)
        self.assertIn("no identity server takes my identity", failure.getErrorMessage())
        self.assertEqual(self.holder.require().idurl, url(A))

    def held_check(self, server: str) -> list[object]:
        """The check of `server` waits until cancelled; what cancelled it is recorded."""
        held: defer.Deferred[Any] = defer.Deferred()
        cancelled: list[object] = []
        held.addErrback(lambda f: cancelled.append(f.check(defer.CancelledError)) or f)
        self.servers.held[url(server)] = held
        return cancelled

    def test_asked_while_checking_the_check_is_cancelled(self) -> None:
        self.free(S3)
        cancelled = self.held_check(A)
        self.rotator.start()
        self.assertEqual(self.rotator.state, "ID_SERVERS?")
        del self.servers.held[url(A)]
        self.rotator.rotate_now()
        self.assertEqual(cancelled, [defer.CancelledError])
        self.assertEqual(self.holder.require().identity.sources, (url(S2), url(S3)))
        self.assertEqual(self.rotator.state, "READY")

    def test_stop_cancels_what_waits(self) -> None:
        cancelled = self.held_check(A)
        self.rotator.start()
        self.rotator.stop()
        self.assertEqual(cancelled, [defer.CancelledError])
        self.assertEqual(self.rotator.state, "CLOSED")
        self.assertEqual(self.clock.getDelayedCalls(), [])
        self.failureResultOf(self.rotator.rotate_now(), RotationFailed)

    def test_stop_while_rotating_fails_the_operator_s_wait(self) -> None:
        self.free(S3)
        self.rotator.start()
        self.servers.publishing = defer.Deferred()
        asked = self.rotator.rotate_now()
        self.assertEqual(self.rotator.state, "MY_ID_ROTATE")
        self.rotator.stop()
        self.failureResultOf(asked, RotationFailed)
        self.assertEqual(self.holder.require().idurl, url(A))


class DecisionTests(SynchronousTestCase):
    def test_candidates_are_told_apart_by_host_and_port(self) -> None:
        known = parse_known_servers("127.0.0.1:8084 127.0.0.1:8085 127.0.0.2:8084 127.0.0.1:8084")
        found = candidate_servers(known, [url(A)], "alice")
        self.assertEqual([u.url for u in found], ["http://127.0.0.1:8085/alice.xml", "http://127.0.0.2:8084/alice.xml"])

    def test_new_sources_keep_live_ones_first_and_respect_the_limits(self) -> None:
        checks = [SourceHealth(url(A), False), SourceHealth(url(S2), True, 1), SourceHealth(url(S3), True, 1)]
        free = [CandidateAnswer(url(S4), True)]
        self.assertEqual(new_sources(checks, free, (), 2, 5), (url(S2), url(S3)))
        self.assertEqual(new_sources(checks, free, (), 3, 5), (url(S2), url(S3), url(S4)))
        self.assertEqual(new_sources(checks, free, (), 3, 2), (url(S2), url(S3)))
        self.assertEqual(new_sources(checks, free, (url(S2),), 2, 5), (url(S3), url(S4)))
        self.assertEqual(new_sources([SourceHealth(url(A), False)], free, (), 2, 5), (url(S4),))
        self.assertEqual(new_sources([SourceHealth(url(A), False)], [], (), 2, 5), ())

    def test_next_revision(self) -> None:
        self.assertEqual(next_revision(3, [SourceHealth(url(A), True, 1)], []), 4)
        self.assertEqual(next_revision(3, [SourceHealth(url(A), True, 9)], [CandidateAnswer(url(S2), True, 4)]), 10)

    def test_the_watch_counts_failures_of_the_first_source_in_a_row(self) -> None:
        watch = FirstSourceWatch()
        dead, live = SourceHealth(url(A), False), SourceHealth(url(A), True, 1)
        seen = [watch.observe([c]) for c in (dead, live, dead, dead, dead)]
        self.assertEqual(seen, [False, False, False, True, True])
        # a dead second source alone is not a reason to move
        self.assertFalse(watch.observe([live, SourceHealth(url(S2), False)]))

    def test_peer_directory_lists_the_router_first_each_peer_once(self) -> None:
        peers = PeerDirectory()
        peers.add("suppliers", lambda: ["http://s/x.xml", "http://s/y.xml"])
        remove = peers.add("router", lambda: ["http://r/r.xml"], first=True)
        peers.add("correspondents", lambda: ["http://s/y.xml", "http://c/z.xml", ""])

        def broken() -> list[str]:
            raise RuntimeError("listing bug")

        peers.add("broken", broken)
        self.assertEqual(peers.peers(), (["http://r/r.xml"], ["http://s/x.xml", "http://s/y.xml", "http://c/z.xml"]))
        remove()
        self.assertEqual(peers.peers()[0], [])
        self.assertEqual(len(self.flushLoggedErrors(RuntimeError)), 2)


class DiagramTests(SynchronousTestCase):
    def test_the_drawn_machine_is_the_machine(self) -> None:
        from bitdust_node.fsm_diagram import machine_dot
        from bitdust_node.identity.rotation import RotatorMachine

        drawn = Path(__file__).resolve().parents[2] / "bitdust_node" / "identity" / "rotation.dot"
        made = machine_dot("id_rotator", RotatorMachine, "bitdust_node/identity/rotation.py")
        self.assertEqual(drawn.read_text(), made, "regenerate rotation.dot with bitdust_node.fsm_diagram")

"""service_identity_propagate: keep my identity on its servers, re-signed when my contacts change, and moved
off a dead server (machine `id_rotator`, `automatic-rotate-enabled`, `health-check-interval-seconds`)."""

from __future__ import annotations

from typing import Any

from twisted.internet import defer
from twisted.internet.task import LoopingCall

from bitdust_node.errors import InvalidInput
from bitdust_node.identity.cache import identity_http
from bitdust_node.identity.contacts import my_contacts
from bitdust_node.identity.known_servers import parse_known_servers
from bitdust_node.identity.propagate import Propagator
from bitdust_node.identity.rotation import HttpSourceProbe, PeerDirectory, RotationSettings, Rotator
from bitdust_node.services.base import Service
from bitdust_node.services.network import NetworkService

# servers expire identities after expire-days (60 by default): a daily touch is plenty
PROPAGATE_INTERVAL = 6 * 3600.0
# how often the node looks for a changed address
CONTACTS_CHECK_INTERVAL = 60.0
WATCHED_SETTINGS = (
    "services/tcp-connections/tcp-port",
    "services/network/bind-address",
)


class IdentityPropagateService(Service):
    name = "identity_propagate"
    needs_identity = True

    propagate_interval = PROPAGATE_INTERVAL
    contacts_interval = CONTACTS_CHECK_INTERVAL

    def start(self) -> defer.Deferred[None]:
        ctx = self.ctx
        self.propagator = Propagator(identity_http(ctx.reactor))
        self.last_confirmed: list[str] = []
        # a proxy router's contacts stand in for my own while it routes me (section 4.2 step 4)
        self.routed_contacts: tuple[str, ...] | None = None
        self._busy: defer.Deferred[Any] | None = None
        self._unsubscribe = [ctx.settings.subscribe(k, self._setting_changed) for k in WATCHED_SETTINGS]
        # a new outside address (learned, or set by hand) makes a new revision at once
        self._network = self.need(NetworkService)
        self._unsubscribe.append(self._network.external.subscribe(lambda _outside: self.check_contacts()))
        # a restart (e.g. after a bind-address change) first brings the contacts up to date
        self._refresh_contacts()
        self._touch = LoopingCall(self.propagate_now)
        self._touch.clock = ctx.reactor
        self._touch.start(self.propagate_interval, now=True)
        self._watch = LoopingCall(self.check_contacts)
        self._watch.clock = ctx.reactor
        self._watch.start(self.contacts_interval, now=False)
        # the peers who hear of a move: the services that have some add them
        self.peers = PeerDirectory()
        # their identities stay in the cache whatever it holds: it is the only keeper of their keys
        self._unpin = ctx.identity_cache.pin(self.peers.every)
        self._rotator_entry = ctx.registry.register("id_rotator", "AT_STARTUP")
        self.rotator = Rotator(ctx.identity, HttpSourceProbe(identity_http(ctx.reactor)), self.propagator, ctx.reactor,
                               self.rotation_settings, self._rotator_entry)
        self.rotator.start()
        return defer.succeed(None)

    def rotation_settings(self) -> RotationSettings:
        """Read at each use: a changed setting counts from the next check."""
        try:
            known = tuple(parse_known_servers(str(self.setting("known-servers"))))
        except InvalidInput as err:
            self.log.warn("known-servers not usable for a rotation: {why}", why=str(err))
            known = ()
        return RotationSettings(
            enabled=bool(self.setting("automatic-rotate-enabled")),
            interval=float(self.setting("health-check-interval-seconds")),
            min_servers=int(self.setting("min-servers")),
            max_servers=int(self.setting("max-servers")),
            known=known,
        )

    def stop(self) -> defer.Deferred[None]:
        self._unpin()
        self.rotator.stop()
        self._rotator_entry.unregister()
        for loop in (self._touch, self._watch):
            if loop.running:
                loop.stop()
        for unsubscribe in self._unsubscribe:
            unsubscribe()
        busy = self._busy
        if busy is None:
            return defer.succeed(None)
        return busy.addBoth(lambda _: None)

    def _setting_changed(self, key: str, old: Any, new: Any) -> None:
        self.check_contacts()

    def use_contacts(self, contacts: tuple[str, ...] | None) -> defer.Deferred[Any]:
        """Publish these contacts in place of mine (None: mine again); fires when the servers were told."""
        self.routed_contacts = contacts
        if self._refresh_contacts():
            return self.propagate_now()
        return defer.succeed(None)

    def own_contacts(self) -> tuple[str, ...]:
        return my_contacts(self.ctx.settings, self._network.external_address())

    def check_contacts(self) -> None:
        """Sign and send a new revision when the contacts I publish are no longer right."""
        if self._refresh_contacts():
            self.propagate_now()

    def _refresh_contacts(self) -> bool:
        """Sign and adopt a new revision if my contacts changed; True when it did."""
        me = self.ctx.identity.current
        if me is None:
            return False
        contacts = self.routed_contacts or self.own_contacts()
        if contacts == me.identity.contacts:
            return False
        newer = me.next_revision(contacts, self.ctx.reactor.seconds())
        self.ctx.identity.adopt(newer)
        self.log.info(
            "contacts changed to {contacts}: identity revision {rev}",
            contacts=list(contacts),
            rev=newer.identity.revision,
        )
        return True

    def propagate_now(self) -> defer.Deferred[Any]:
        if self.ctx.identity.current is None:
            return defer.succeed(None)
        # one propagation at a time; a newer revision waits for the current round
        previous = self._busy or defer.succeed(None)
        chained = previous.addBoth(lambda _: defer.ensureDeferred(self._propagate()))
        # a failed round must not stop the LoopingCall that waits on it
        chained.addErrback(lambda f: self.log.failure("identity propagation failed", f))
        self._busy = chained
        return chained

    async def _propagate(self) -> None:
        # the newest revision at the time this round runs
        me = self.ctx.identity.require()
        confirmed = await self.propagator.propagate(me)
        self.last_confirmed = [u.url for u in confirmed]

    def status(self) -> dict[str, object]:
        me = self.ctx.identity.current
        core = self.rotator.core
        return {
            "revision": me.identity.revision if me else None,
            "confirmed_sources": list(getattr(self, "last_confirmed", [])),
            "id_rotator": self.rotator.state,
            "first_source_failures": core.watch.failures,
            "rotations": core.counters["rotations"],
        }

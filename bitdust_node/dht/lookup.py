"""One iterative parallel Kademlia lookup (findNode or findValue) over a caller-given RPC.

With a Patience, a call unanswered for its stall time stops holding a place among the `alpha` in flight
and among the k closest: the lookup asks the next contact, uses the call's answer if it still comes
before the end, and ends without waiting for it (patience.py). An answer after the end is still followed,
in the background: the nodes it names nearer than the k closest are asked, so the routing table learns
them and they learn us, as when the lookup waited (a join is an announcement as much as a question).

A peer that answers with ever nearer made-up contacts would keep a lookup going for good: the shortlist keeps
only the closest few times k, a lookup makes a bounded number of calls, and it ends by a deadline; one cut
short gives what it has, as any lookup does, and says why in `cut_short`."""

from __future__ import annotations

import functools
import heapq
import ipaddress
from collections.abc import Callable, Iterable, Sequence
from typing import Any

import attrs
from twisted.internet import defer

from bitdust_node.dht.message import Response, is_id
from bitdust_node.dht.patience import Patience
from bitdust_node.dht.routing import Contact, id_int
from bitdust_node.net.clock import DelayedCall, TimeSource

# sends method(key) to a contact on this lookup's layer
CallContact = Callable[[Contact, str, str], "defer.Deferred[Response]"]

MAX_TRIPLES = 64
# the shortlist keeps the closest this many times k: Kademlia needs k, the rest stand in for the failed and
# stalled (the window widens to 2k)
SHORTLIST_PER_K = 4
# calls a lookup makes at most, this many times k: among 1,000 simulated nodes with 30 % dead, 10 on average, 23 at most
CALLS_PER_K = 32
# seconds after which a lookup gives what it has, whatever is still out: there, waiting every call out (10 s, and
# a retry) instead of going on past stalled ones, took up to 100 s
LOOKUP_DEADLINE = 300.0


def _is_ip(host: object) -> bool:
    """Only address literals: a peer must not make us resolve names or send to garbage."""
    return isinstance(host, str) and len(host) <= 45 and _is_ip_text(host)


# a network names the same few thousand addresses in reply after reply
@functools.lru_cache(maxsize=4096)
def _is_ip_text(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def parse_contacts(payload: Any, limit: int = MAX_TRIPLES) -> list[Contact] | None:
    """The contacts of a findNode/findValue reply, or None if it is not a contact list."""
    if not isinstance(payload, list):
        return None
    found = []
    for item in payload[:limit]:
        if not (isinstance(item, list) and len(item) >= 3):
            continue
        node_id, host, port = item[0], item[1], item[2]
        if is_id(node_id) and _is_ip(host) and isinstance(port, int) and 0 < port < 65536:
            found.append(Contact(node_id, host, port))
    return found


def parse_value(payload: Any, key: str) -> Any:
    """The value of a findValue reply that carries one, else None."""
    if isinstance(payload, dict) and key in payload:
        return payload
    return None


@attrs.define
class LookupResult:
    key: str
    closest: list[Contact]
    value_reply: dict[str, Any] | None = None
    rpcs: int = 0
    # the longest chain of calls each waiting on the last: seeds are hop 1, who they name hop 2, ...
    hops: int = 0
    # calls that timed out or were refused (dead contacts, left out of the tables since)
    failed: int = 0
    # calls left unanswered past the stall time: the lookup went on without them (most are dead contacts)
    stalled: int = 0
    # contacts that answered findValue without the value (candidates for caching)
    without_value: list[Contact] = attrs.field(factory=list)
    # every contact that answered, nearest first (closest is the first k of them)
    answered: list[Contact] = attrs.field(factory=list)
    # "" if the lookup ended as lookups do; "calls" if it stopped at its cap of calls, "deadline" if time ran out
    cut_short: str = ""


@attrs.define(eq=False)
class Lookup:
    """Keeps up to `alpha` calls in flight and stops when the k closest known have answered, stalled calls
    counting for neither (with a Patience)."""

    key: str
    own_id: str
    seeds: list[Contact]
    call: CallContact
    k: int = 4
    alpha: int = 4
    find_value: bool = False
    first_wave: int = 2
    # told of every contact a reply names, so sparse routing tables fill up for free
    learn: Callable[[Contact], object] | None = None
    # without it, every call is waited for until it answers or times out
    patience: Patience | None = None
    # with it, the lookup ends `deadline` seconds after it started, given or not
    clock: TimeSource | None = None
    deadline: float = LOOKUP_DEADLINE
    # the closest contacts known, at most SHORTLIST_PER_K * k
    _shortlist: dict[str, Contact] = attrs.field(factory=dict)
    # node id -> the hop of the call made to it (seeds are hop 1)
    _queried: dict[str, int] = attrs.field(factory=dict)
    _answered: dict[str, Contact] = attrs.field(factory=dict)
    # node id -> the hop at which a call would reach it, for those in the shortlist
    _hop: dict[str, int] = attrs.field(factory=dict)
    # calls made, the background's included
    _calls_made: int = 0
    # calls neither answered, failed nor stalled
    _in_flight: int = 0
    # node ids whose call stalled and is still open
    _stalled: set[str] = attrs.field(factory=set)
    # node id -> (when it was called, the contact) for the calls in flight
    _sent: dict[str, tuple[float, Contact]] = attrs.field(factory=dict)
    # one timer for the earliest call in flight to stall: the calls of a wave go out together
    _timer: DelayedCall | None = None
    _deadline_call: DelayedCall | None = None
    _result: LookupResult = attrs.field(init=False)
    _done: defer.Deferred[LookupResult] = attrs.field(factory=defer.Deferred)
    # the result was given
    _finished: bool = False
    # nothing more to do: the value was found, or the result was given and no call is left open
    _over: bool = False
    _target: int = attrs.field(init=False)

    def __attrs_post_init__(self) -> None:
        self._target = id_int(self.key)

    def run(self, answered: Sequence[tuple[Contact, Any]] = ()) -> defer.Deferred[LookupResult]:
        """Start; `answered` are replies already in hand (a seed's), not asked again."""
        self._result = LookupResult(self.key, [])
        if self.clock is not None:
            self._deadline_call = self.clock.callLater(self.deadline, self._deadline_passed)
        for contact in self.seeds:
            self._consider(contact)
        for contact, payload in answered:
            self._consider(contact)
            self._queried[contact.node_id] = 1
            self._answered[contact.node_id] = contact
            self._result.hops = 1
            for found in parse_contacts(payload) or []:
                self._consider(found, 2)
        self._trim()
        self._pump()
        return self._done

    def _distance(self, contact: Contact) -> int:
        return contact.value ^ self._target

    def _consider(self, contact: Contact, hop: int = 1) -> None:
        if contact.node_id != self.own_id and contact.node_id not in self._shortlist:
            self._shortlist[contact.node_id] = contact
            self._hop[contact.node_id] = hop

    def _trim(self) -> None:
        """Forget the farthest contacts beyond SHORTLIST_PER_K * k (a reply names up to 64)."""
        excess = len(self._shortlist) - SHORTLIST_PER_K * self.k
        if excess <= 0:
            return
        for contact in heapq.nlargest(excess, self._shortlist.values(), key=self._distance):
            del self._shortlist[contact.node_id]
            del self._hop[contact.node_id]

    def _pending(self) -> list[Contact]:
        """Unqueried contacts among the k closest that have neither failed (failures leave the list)
        nor stalled (the window moves past them)."""
        candidates: Iterable[Contact] = self._shortlist.values()
        if self._stalled:
            candidates = [c for c in candidates if c.node_id not in self._stalled]
        ranked = sorted(candidates, key=self._distance)
        return [c for c in ranked[: self._width()] if c.node_id not in self._queried]

    def _width(self) -> int:
        """How many of the closest must answer: k, and one more for each call that failed or stalled (at most
        2k). The dead crowd the k-long lists that others answer with, so fewer name the live ones behind them:
        with 2 of the 4 closest dead, 1 lookup in 5 missed one of the 4 closest live, 1 in 10 with this."""
        return self.k + min(self.k, self._result.failed + self._result.stalled)

    def _pump(self) -> None:
        if self._over:
            return
        method = "findValue" if self.find_value else "findNode"
        moved = True
        while moved and not self._over:
            moved = False
            # a value lookup opens with fewer calls: the nearest known node often holds it
            limit = self.alpha if self._answered or not self.find_value else self.first_wave
            for contact in self._pending():
                if self._over or self._in_flight >= limit:
                    break
                if self._calls_made >= CALLS_PER_K * self.k:
                    # someone was left to ask: a liar naming ever nearer contacts, or a network gone wild
                    if not self._finished:
                        self._result.cut_short = "calls"
                    break
                # a call that failed at once pumps again before this loop goes on
                if contact.node_id not in self._queried:
                    moved = self._send(contact, method) or moved
        if self._in_flight == 0:
            # stalled calls are not waited for, unless nobody has answered yet: then they are all there is
            if not self._finished and (self._answered or not self._stalled):
                self._finish()
            if self._finished and not self._stalled:
                self._end()

    def _send(self, contact: Contact, method: str) -> bool:
        """Call `contact`; True if the call is stalled at once (its place is free again)."""
        self._queried[contact.node_id] = self._hop.get(contact.node_id, 1)
        self._calls_made += 1
        self._in_flight += 1
        if not self._finished:
            self._result.rpcs += 1
        patience = self.patience
        # asked before the call, which would count as the address's own unanswered call
        silent = patience is not None and patience.silent(contact.address)
        d = self.call(contact, method, self.key)
        d.addCallbacks(self._answer, self._failed, callbackArgs=(contact,), errbackArgs=(contact,))
        if patience is None or d.called:
            return False
        if silent:
            # it left another call unanswered that long already: no need to wait to see it stall
            self._mark_stalled(contact)
            return True
        self._sent[contact.node_id] = (patience.clock.seconds(), contact)
        if self._timer is None:
            self._timer = patience.clock.callLater(patience.stall_after, self._stall_due)
        return False

    def _mark_stalled(self, contact: Contact) -> None:
        self._stalled.add(contact.node_id)
        self._in_flight -= 1
        if not self._finished:
            self._result.stalled += 1

    def _stall_due(self) -> None:
        """Stall the calls unanswered for the stall time; the timer follows the earliest call left."""
        self._timer = None
        patience = self.patience
        if self._over or patience is None:
            return
        now = patience.clock.seconds()
        # a hair of slack: the timer's time is a sum of floats, compared here with another
        due = [contact for sent, contact in self._sent.values() if sent + patience.stall_after <= now + 1e-6]
        for contact in due:
            del self._sent[contact.node_id]
            self._mark_stalled(contact)
        if self._sent:
            earliest = min(sent for sent, _contact in self._sent.values())
            self._timer = patience.clock.callLater(max(0.0, earliest + patience.stall_after - now), self._stall_due)
        if due:
            self._pump()

    def _settled(self, contact: Contact) -> None:
        """The call to `contact` answered or failed: it no longer counts as in flight or stalled."""
        self._sent.pop(contact.node_id, None)
        if contact.node_id in self._stalled:
            self._stalled.discard(contact.node_id)
        else:
            self._in_flight -= 1

    def _answer(self, response: Response, contact: Contact) -> None:
        self._settled(contact)
        if self._over:
            # an answer after the value was found: too late for the lookup, not for the routing table
            if self.learn is not None:
                for found in parse_contacts(response.payload) or []:
                    if found.node_id != self.own_id:
                        self.learn(found)
            return
        self._answered[contact.node_id] = contact
        hop = self._queried.get(contact.node_id, 1)
        if not self._finished:
            self._result.hops = max(self._result.hops, hop)
        if self.find_value:
            reply = parse_value(response.payload, self.key)
            if reply is not None:
                if not self._finished:
                    self._result.value_reply = reply
                    self._finish()
                self._end()
                return
            if not self._finished:
                self._result.without_value.append(contact)
        bound = self._kth_distance()
        improved = False
        for found in parse_contacts(response.payload) or []:
            if found.node_id not in self._shortlist and found.node_id != self.own_id:
                if self.learn is not None:
                    self.learn(Contact(found.node_id, found.host, found.port))
                improved = improved or bound is None or self._distance(found) < bound
            self._consider(found, hop + 1)
        self._trim()
        # a reply that named nobody nearer leaves the next calls to the replies still due: they may
        # push the pending contacts out of the k closest, and so save their calls
        if improved or self._in_flight == 0:
            self._pump()

    def _kth_distance(self) -> int | None:
        """How far the k-th closest known contact is, or None while fewer than k are known."""
        if len(self._shortlist) < self.k:
            return None
        return heapq.nsmallest(self.k, map(self._distance, self._shortlist.values()))[-1]

    def _failed(self, _failure: object, contact: Contact) -> None:
        self._settled(contact)
        if self._over:
            return
        if not self._finished:
            self._result.failed += 1
        if self._shortlist.pop(contact.node_id, None) is not None:
            del self._hop[contact.node_id]
        self._pump()

    def _finish(self) -> None:
        """Give the result; stalled calls may still answer, and are followed (see _end)."""
        if self._finished:
            return
        self._finished = True
        # nothing is in flight but the stalled: a call made in the background sets the timer again
        self._stop_stall_timer()
        ranked = sorted(self._answered.values(), key=self._distance)
        self._result.answered = ranked
        self._result.closest = ranked[: self.k]
        self._done.callback(self._result)

    def _end(self) -> None:
        if self._over:
            return
        self._over = True
        self._stop_stall_timer()
        if self._deadline_call is not None and self._deadline_call.active():
            self._deadline_call.cancel()
        self._deadline_call = None

    def _deadline_passed(self) -> None:
        """Give what the lookup has, and follow no answer still due (the calls themselves are the caller's)."""
        self._deadline_call = None
        if not self._finished:
            self._result.cut_short = "deadline"
            self._finish()
        self._end()

    def _stop_stall_timer(self) -> None:
        """Forget the calls timed for stalling, and their timer: the result no longer waits on them."""
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None
        self._sent.clear()

"""Learning my outside IP as official nodes do (their `stun_client`): DHT nodes name their STUN port
(`request("stun_port")`), I send each `1s` from my UDP datagrams port and read `1m<ip>:<port>` back.

Unlike the official client, one answer is not enough: the IP that more than half of the servers that
answered agree on, and at least two distinct servers (one vote per server IP), so a lone liar cannot
set it. Answers that are malformed, unasked, from an address I did not ask, or that disagree are
ignored and counted. Learned again at an interval, and at once when the local addresses change.

States: AT_STARTUP -> FINDING (holds the search for servers) -> ASKING (holds the round and its
timer) -> WAITING (holds the timer of the next round) -> FINDING ...; any -> STOPPED.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs
from automat import TypeMachineBuilder
from twisted.internet import defer
from twisted.logger import Logger
from twisted.python.failure import Failure

from bitdust_node.net.clock import DelayedCall, TimeSource
from bitdust_node.wire import stun

log = Logger()

Address = tuple[str, int]
# a vote needs company: the fewest distinct servers that must agree
MIN_AGREEING = 2
MAX_SERVERS = 8
ROUND_SECONDS = 5.0
RELEARN_INTERVAL = 600.0
FIRST_RETRY = 2.0
MAX_RETRY = 60.0


class StunServers(Protocol):
    def find(self) -> defer.Deferred[list[Address]]:
        """(host, STUN port) of DHT nodes found now; an empty list when none is known yet."""


class StunSender(Protocol):
    def send_request(self, address: Address) -> None:
        """Send `1s` to `address` from my UDP datagrams port."""


def majority(votes: Mapping[str, str]) -> str | None:
    """The IP that more than half of the voters saw, if at least MIN_AGREEING of them did."""
    if not votes:
        return None
    ip, count = collections.Counter(votes.values()).most_common(1)[0]
    if count >= MIN_AGREEING and count * 2 > len(votes):
        return ip
    return None


@attrs.define
class StunRound:
    """One round: whom I asked (one server per IP) and what each answered."""

    asked: dict[str, Address]
    started: float
    # server IP -> the address it saw me at
    votes: dict[str, Address] = attrs.field(factory=dict)
    timer: DelayedCall | None = None

    def complete(self) -> bool:
        return len(self.votes) == len(self.asked)

    def cancel_timer(self) -> None:
        if self.timer is not None and self.timer.active():
            self.timer.cancel()
        self.timer = None


@attrs.frozen
class RoundResult:
    at: float
    asked: int
    answered: int
    learned: str | None
    votes: dict[str, str]


@attrs.define
class StunCore:
    servers: StunServers
    sender: StunSender
    clock: TimeSource
    on_learned: Callable[[str], object]
    round_seconds: float = ROUND_SECONDS
    relearn_interval: float = RELEARN_INTERVAL
    first_retry: float = FIRST_RETRY
    max_retry: float = MAX_RETRY
    max_servers: int = MAX_SERVERS
    retry_delay: float = FIRST_RETRY
    next_delay: float = FIRST_RETRY
    learned: str | None = None
    learned_at: float | None = None
    last_round: RoundResult | None = None
    rounds: int = 0
    # why answers were ignored: malformed, unasked, not_asked_address, repeated, disagreeing
    ignored: collections.Counter[str] = attrs.field(factory=collections.Counter)

    def ignore(self, why: str, sender: Address) -> None:
        self.ignored[why] += 1
        log.debug("STUN answer from {sender} ignored: {why}", sender=f"{sender[0]}:{sender[1]}", why=why)

    def conclude(self, current: StunRound) -> None:
        """Decide on the round's votes; the next round comes after the interval, or sooner when undecided."""
        self.rounds += 1
        seen = {server: address[0] for server, address in current.votes.items()}
        ip = majority(seen)
        self.ignored["disagreeing"] += sum(1 for v in seen.values() if v != ip)
        now = self.clock.seconds()
        self.last_round = RoundResult(now, len(current.asked), len(current.votes), ip, seen)
        if ip is None:
            self.next_delay = self.retry_delay
            self.retry_delay = min(self.retry_delay * 2, self.max_retry)
            log.debug("STUN round undecided: {votes} from {asked} asked", votes=seen, asked=len(current.asked))
            return
        self.retry_delay = self.first_retry
        self.next_delay = self.relearn_interval
        if ip != self.learned:
            log.info("STUN: {count} servers see me at {ip}", count=sum(1 for v in seen.values() if v == ip), ip=ip)
        self.learned, self.learned_at = ip, now
        self.on_learned(ip)


class StunInputs(Protocol):
    def start(self) -> None:
        "Begin: look for STUN servers now."

    def found(self, servers: list[Address]) -> None:
        "DHT nodes named their STUN ports (maybe none)."

    def reply(self, data: bytes, sender: Address) -> None:
        "A datagram other than a `1s` request came to my UDP datagrams port."

    def round_over(self, current: StunRound) -> None:
        "Every server asked has answered, or the round's time is up."

    def relearn(self) -> None:
        "Time for the next round, or the local addresses changed."

    def stop(self) -> None:
        "The service stops."


def _find(inputs: StunInputs, core: StunCore) -> defer.Deferred[list[Address]]:
    finding = core.servers.find()

    def failed(failure: Failure) -> None:
        if not failure.check(defer.CancelledError):
            log.info("finding STUN servers failed: {why}", why=failure.getErrorMessage())
        inputs.found([])

    finding.addCallbacks(inputs.found, failed)
    return finding


def _ask(inputs: StunInputs, core: StunCore, servers: list[Address]) -> StunRound:
    asked: dict[str, Address] = {}
    for address in servers:
        # one vote per server IP: a host running many nodes is still one witness
        if address[0] not in asked and len(asked) < core.max_servers:
            asked[address[0]] = address
    current = StunRound(asked, core.clock.seconds())
    for address in asked.values():
        core.sender.send_request(address)
    if asked:
        current.timer = core.clock.callLater(core.round_seconds, inputs.round_over, current)
    else:
        inputs.round_over(current)
    return current


def _wait(inputs: StunInputs, core: StunCore, current: StunRound) -> DelayedCall:
    """The round is decided on entering WAITING, whose timer depends on the outcome."""
    current.cancel_timer()
    core.conclude(current)
    return core.clock.callLater(core.next_delay, inputs.relearn)


builder = TypeMachineBuilder(StunInputs, StunCore)
AT_STARTUP = builder.state("AT_STARTUP")
FINDING = builder.state("FINDING", _find)
ASKING = builder.state("ASKING", _ask)
WAITING = builder.state("WAITING", _wait)
STOPPED = builder.state("STOPPED")

AT_STARTUP.upon(StunInputs.start).to(FINDING).returns(None)
FINDING.upon(StunInputs.found).to(ASKING).returns(None)
# a round is already under way
FINDING.upon(StunInputs.relearn).loop().returns(None)
ASKING.upon(StunInputs.relearn).loop().returns(None)
AT_STARTUP.upon(StunInputs.relearn).loop().returns(None)


@AT_STARTUP.upon(StunInputs.reply).loop()
@FINDING.upon(StunInputs.reply, nodata=True).loop()
@WAITING.upon(StunInputs.reply, nodata=True).loop()
def _unasked(inputs: StunInputs, core: StunCore, data: bytes, sender: Address) -> None:
    core.ignore("unasked", sender)


@ASKING.upon(StunInputs.reply).loop()
def _answer(inputs: StunInputs, core: StunCore, current: StunRound, data: bytes, sender: Address) -> None:
    server = current.asked.get(sender[0])
    if server is None or server[1] != sender[1]:
        core.ignore("not_asked_address", sender)
        return
    if sender[0] in current.votes:
        core.ignore("repeated", sender)
        return
    try:
        seen = stun.parse_reply(data)
    except stun.StunFormatError as exc:
        core.ignore("malformed", sender)
        log.debug("malformed STUN answer from {sender}: {why}", sender=sender[0], why=str(exc))
        return
    current.votes[sender[0]] = seen
    if current.complete():
        inputs.round_over(current)


ASKING.upon(StunInputs.round_over).to(WAITING).returns(None)


@WAITING.upon(StunInputs.relearn).to(FINDING)
def _again(inputs: StunInputs, core: StunCore, timer: DelayedCall) -> None:
    if timer.active():
        timer.cancel()


@FINDING.upon(StunInputs.stop).to(STOPPED)
def _stop_finding(inputs: StunInputs, core: StunCore, finding: defer.Deferred[Any]) -> None:
    finding.cancel()


@ASKING.upon(StunInputs.stop).to(STOPPED)
def _stop_asking(inputs: StunInputs, core: StunCore, current: StunRound) -> None:
    current.cancel_timer()


@WAITING.upon(StunInputs.stop).to(STOPPED)
def _stop_waiting(inputs: StunInputs, core: StunCore, timer: DelayedCall) -> None:
    if timer.active():
        timer.cancel()


AT_STARTUP.upon(StunInputs.stop).to(STOPPED).returns(None)
# a round's timer and its last answer may both end it: the second is a no-op
WAITING.upon(StunInputs.round_over).loop().returns(None)
for _input in (StunInputs.found, StunInputs.reply, StunInputs.round_over, StunInputs.relearn, StunInputs.stop):
    STOPPED.upon(_input).loop().returns(None)

StunMachine = builder.build()

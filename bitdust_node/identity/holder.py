"""The one owner of my identity: who I am now, kept in the home, and who must hear of a change.

Registration, recovery, propagation and rotation return a new MyIdentity; the caller `adopt`s it. The
service graph, the transport, the proxy client and the DHT's `idurl` answer subscribe. The IDURLs a
rotation left behind stay mine: peers that still know only those reach me by them.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from twisted.logger import Logger

from bitdust_node.crypto.keys import write_secret_file
from bitdust_node.errors import Conflict, NotFound
from bitdust_node.identity import my_identity
from bitdust_node.identity.my_identity import IDENTITY_DIR, MyIdentity
from bitdust_node.wire.identity_xml import IdentityFormatError, parse_idurl

log = Logger()
Subscriber = Callable[[MyIdentity], object]
FORMER_FILE = "my_former_sources"
# rotations remembered: far more than a node ever makes, few enough to scan on every packet
MAX_FORMER = 32


class MyIdentityHolder:
    def __init__(self, home: Path, current: MyIdentity | None = None, former: tuple[str, ...] = ()) -> None:
        self._home = home
        self._current = current
        self._former = former
        self._subscribers: list[Subscriber] = []

    @classmethod
    def load(cls, home: Path) -> MyIdentityHolder:
        """The identity kept in the home (None before one is created or restored)."""
        current = my_identity.load(home)
        return cls(home, current, _read_former(home) if current is not None else ())

    @property
    def current(self) -> MyIdentity | None:
        return self._current

    def require(self) -> MyIdentity:
        if self._current is None:
            raise NotFound(my_identity.NOT_EXIST)
        return self._current

    def refuse_if_exists(self) -> None:
        if self._current is not None:
            raise Conflict(my_identity.ALREADY_EXIST)

    @property
    def former(self) -> tuple[str, ...]:
        """IDURLs my identity listed before a rotation and no longer does, oldest first."""
        return self._former

    def answers_to(self, idurl: str) -> bool:
        """Whether a packet addressed to `idurl` is for me: any source of mine, now or before a rotation."""
        me = self._current
        return me is not None and (idurl in me.identity.sources or idurl in self._former)

    def is_my_key_id(self, key_id: str) -> bool:
        """Whether `key_id` names my master key, by any IDURL of mine (`master$alice@<old host>` too)."""
        alias, _, global_id = key_id.partition("$")
        me = self._current
        if alias != "master" or me is None:
            return False
        return any(parse_idurl(u).global_id == global_id for u in (*me.identity.sources, *self._former))

    def adopt(self, new: MyIdentity) -> None:
        """Save `new` to the home, make it current, then tell every subscriber, in order."""
        old = self._current
        my_identity.save(self._home, new)
        if old is not None and old.identity.publickey == new.identity.publickey:
            left = [u for u in (*self._former, *old.identity.sources) if u not in new.identity.sources]
            former = tuple(dict.fromkeys(left))[-MAX_FORMER:]
        else:
            former = ()
        if former != self._former:
            _write_former(self._home, former)
            self._former = former
        self._current = new
        for subscriber in list(self._subscribers):
            try:
                subscriber(new)
            except Exception:
                # one broken listener must not keep the others from hearing of the change
                log.failure("identity subscriber {who} failed", who=getattr(subscriber, "__qualname__", subscriber))

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call `callback(new)` after every adopt; returns the function that unsubscribes."""
        self._subscribers.append(callback)

        def unsubscribe() -> None:
            if callback in self._subscribers:
                self._subscribers.remove(callback)

        return unsubscribe


def _former_path(home: Path) -> Path:
    return home / IDENTITY_DIR / FORMER_FILE


def _read_former(home: Path) -> tuple[str, ...]:
    try:
        lines = _former_path(home).read_text(encoding="ascii").split()
    except (OSError, UnicodeDecodeError):
        return ()
    valid = []
    for line in lines[-MAX_FORMER:]:
        try:
            parse_idurl(line)
        except IdentityFormatError:
            continue
        valid.append(line)
    return tuple(valid)


def _write_former(home: Path, former: tuple[str, ...]) -> None:
    write_secret_file(_former_path(home), "".join(u + "\n" for u in former).encode("ascii"))

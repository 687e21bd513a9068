"""The settings tree: typed keys with defaults, validation, persistence in the home, change notices."""

from __future__ import annotations

import ipaddress
import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import attrs
from twisted.logger import Logger

from bitdust_node.errors import InvalidSettingValue, UnknownSetting
from bitdust_node.home import SETTINGS_FILE, ensure_home
from bitdust_node.sizes import BadSize, normalize_size, size_to_bytes

log = Logger()

Listener = Callable[[str, Any, Any], None]

_TRUE = {"true", "1", "yes", "on"}
_FALSE = {"false", "0", "no", "off"}


@attrs.frozen
class Setting:
    """One key: its type name (as BitDust labels it), default, limits and a label for humans."""

    key: str
    type: str
    default: Any
    label: str = ""
    min: int | None = None
    max: int | None = None
    choices: tuple[Any, ...] = ()
    readonly: bool = False
    # False: a running node applies it only at its next start
    live: bool = True
    check: Callable[[Any], str | None] | None = None

    def parse(self, raw: Any) -> Any:
        """Return the typed value or raise InvalidSettingValue naming the key and the type."""
        try:
            value = _PARSERS[self.type](raw)
        except (ValueError, TypeError, BadSize) as err:
            raise self._refuse(raw, str(err)) from None
        if self.min is not None and value < self.min:
            raise self._refuse(raw, f"at least {self.min}")
        if self.max is not None and value > self.max:
            raise self._refuse(raw, f"at most {self.max}")
        if self.choices and value not in self.choices:
            raise self._refuse(raw, "one of " + ", ".join(map(str, self.choices)))
        problem = self.check(value) if self.check else None
        if problem:
            raise self._refuse(raw, problem)
        return value

    def _refuse(self, raw: Any, why: str) -> InvalidSettingValue:
        return InvalidSettingValue(f"{self.key}: expected {self.type} ({why}), got {raw!r}")

    def describe(self, value: Any) -> dict[str, Any]:
        """The entry shape of /config/get/v1 and /config/list/v1."""
        out: dict[str, Any] = {
            "key": self.key,
            "type": self.type,
            "label": self.label or self.key.rsplit("/", 1)[-1],
            "default": self.default,
            "value": value,
            "readonly": self.readonly,
        }
        if self.min is not None:
            out["min"] = self.min
        if self.max is not None:
            out["max"] = self.max
        if self.choices:
            out["possible_values"] = list(self.choices)
        if not self.live:
            out["needs_restart"] = True
        return out


def _boolean(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError("true or false")


def _integer(raw: Any) -> int:
    if isinstance(raw, bool):
        raise ValueError("a whole number")
    if isinstance(raw, int):
        return raw
    text = str(raw).strip()
    if not text.lstrip("-").isdigit():
        raise ValueError("a whole number")
    return int(text)


def _text(raw: Any) -> str:
    if raw is None:
        return ""
    if not isinstance(raw, (str, int, float)) or isinstance(raw, bool):
        raise ValueError("text")
    return str(raw)


_PARSERS: dict[str, Callable[[Any], Any]] = {
    "boolean": _boolean,
    "port number": _integer,
    "positive integer": _integer,
    "non zero positive integer": _integer,
    "selection": _integer,
    "string": _text,
    "text": _text,
    "disk space": lambda raw: normalize_size(_text(raw)),
    "ip address": lambda raw: str(ipaddress.ip_address(_text(raw).strip())),
}


def _loopback_only(value: str) -> str | None:
    return None if ipaddress.ip_address(value).is_loopback else "a loopback address (127.0.0.0/8 or ::1)"


_HOST_LABEL = re.compile(r"(?!-)[a-z0-9-]{1,63}(?<!-)")


def _ip_or_host_name(value: str) -> str | None:
    """Empty, an IP address, or a host name (RFC 1123 labels): what a contact may name."""
    text = value.strip()
    if not text:
        return None
    try:
        ipaddress.ip_address(text)
        return None
    except ValueError:
        pass
    labels = text.lower().rstrip(".").split(".")
    if len(text) <= 253 and all(_HOST_LABEL.fullmatch(label) for label in labels) and not labels[-1].isdigit():
        return None
    return "an IP address or a host name"


def _port(key: str, default: int, label: str = "") -> Setting:
    return Setting(key, "port number", default, label, min=1, max=65535)


def _count(key: str, default: int, label: str, most: int) -> Setting:
    return Setting(key, "non zero positive integer", default, label, min=1, max=most)


def _switch(name: str, default: bool) -> Setting:
    return Setting(f"services/{name}/enabled", "boolean", default, "enabled")


# Every service of SPEC.md with its default switch: the defaults serve an end user.
SERVICE_DEFAULTS = {
    "network": True,
    "udp-datagrams": True,
    "tcp-connections": True,
    "gateway": True,
    "tcp-transport": True,
    "entangled-dht": True,
    "my-ip-port": True,
    "identity-server": False,
    "identity-propagate": True,
    "p2p-hookups": True,
    "nodes-lookup": True,
    "proxy-server": False,
    "proxy-transport": True,
    "private-messages": True,
    "supplier": True,
    "customer": True,
}

DEFINITIONS: list[Setting] = [
    *[_switch(name, on) for name, on in SERVICE_DEFAULTS.items()],
    Setting("services/network/bind-address", "ip address", "0.0.0.0", "listen address"),
    Setting(
        "services/network/receive-budget", "disk space", "64 MB", "memory all peers' unfinished and unverified packets"
        " may hold together (shared fairly by address; past it the newest are refused)",
        check=lambda value: None if size_to_bytes(value) >= 1024 * 1024 else "at least 1 MB",
    ),
    Setting(
        "services/network/external-address", "string", "", "the address peers use to reach me (IP or host name);"
        " empty: learn it by STUN through DHT nodes", check=_ip_or_host_name,
    ),
    Setting(
        "services/network/upnp-enabled", "boolean", False, "ask a home router (UPnP IGD or NAT-PMP) to forward my"
        " TCP port and DHT port",
    ),
    _port("services/udp-datagrams/udp-port", 8882, "udp-port"),
    _port("services/tcp-connections/tcp-port", 7771, "tcp-port"),
    _port("services/entangled-dht/udp-port", 14441, "UDP port number"),
    Setting("services/entangled-dht/known-nodes", "string", "", "override seed-nodes list"),
    Setting("services/entangled-dht/attached-layers", "string", "", "override attached DHT layers"),
    _count("services/entangled-dht/bucket-size", 4, "k: contacts per bucket", 64),
    _count("services/entangled-dht/parallel-calls", 4, "alpha: parallel lookup calls", 32),
    _count("services/entangled-dht/rpc-timeout", 10, "RPC timeout, seconds", 120),
    _count("services/entangled-dht/maintenance-interval", 60, "seconds between DHT upkeep rounds", 3600),
    Setting("services/identity-server/host", "string", "", "your server host name"),
    _port("services/identity-server/web-port", 8084, "HTTP port number"),
    _port("services/identity-server/tcp-port", 6661, "TCP port number"),
    Setting("services/identity-server/expire-days", "non zero positive integer", 60, "expire days", min=1),
    Setting("services/identity-server/max-hosted-size", "disk space", "256 MB",
            "identity files hosted at most (new names refused past it)"),
    Setting("services/identity-propagate/known-servers", "string", "", "known-servers"),
    Setting("services/identity-propagate/min-servers", "non zero positive integer", 2, "min-servers", min=1),
    Setting("services/identity-propagate/max-servers", "non zero positive integer", 5, "max-servers", min=1),
    Setting("services/identity-propagate/automatic-rotate-enabled", "boolean", True, "move my identity off a dead"
            " identity server"),
    Setting("services/identity-propagate/health-check-interval-seconds", "non zero positive integer", 300,
            "seconds between checks of my identity servers", min=1, max=86400),
    Setting("services/proxy-server/routes-limit", "positive integer", 20, "maximum simultaneous connections", min=0),
    Setting(
        "services/proxy-server/route-rate-limit", "disk space", "16 MB", "bytes per second one routed user may relay"
        " (0 = no limit)",
    ),
    Setting(
        "services/proxy-server/total-rate-limit", "disk space", "0", "bytes per second all routes together may relay"
        " (0 = no limit)",
    ),
    Setting("services/proxy-transport/preferred-routers", "text", "", "preferred-routers"),
    Setting("services/supplier/donated-space", "disk space", "8 GB", "donated space"),
    Setting("services/customer/needed-space", "disk space", "256 MB", "needed space"),
    Setting("services/customer/block-size", "disk space", "4 MB", "files are sealed and spread in blocks of this size"),
    Setting("services/customer/preferred-suppliers", "text", "", "IDURLs of suppliers to hire first"),
    Setting(
        "services/customer/suppliers-number", "selection", 2, "number of suppliers",
        choices=(2, 4, 7, 13, 18, 26, 64),
    ),
    Setting(
        "services/customer/health-check-interval-seconds", "non zero positive integer", 3600,
        "how often a customer checks what its suppliers hold", min=1,
    ),
    Setting(
        "services/customer/replace-offline-after-seconds", "non zero positive integer", 86400,
        "a supplier silent this long is replaced", min=1,
    ),
    Setting(
        "services/customer-patrol/customer-idle-days", "non zero positive integer", 14,
        "a supplier frees the space of a customer silent this long", min=1,
    ),
    Setting(
        "interface/api/rest-http-host", "ip address", "127.0.0.1", "rest-http-host", live=False, check=_loopback_only,
    ),
    Setting("interface/api/rest-http-port", "port number", 8180, "rest-http-port", min=1, max=65535, live=False),
    Setting("interface/api/auth-secret-enabled", "boolean", True, "auth-secret-enabled"),
    Setting("interface/api/metrics-public", "boolean", False, "GET /metrics without the api secret (for Prometheus)"),
    Setting("logs/debug-level", "positive integer", 0, "debug level (0: info and above, 1 or more: debug too)", min=0),
    Setting("logs/format", "string", "text", "log lines as text or json", choices=("text", "json")),
    Setting(
        "logs/max-size", "disk space", "10 MB", "the log file is rotated at this size", live=False,
        check=lambda value: None if size_to_bytes(value) >= 64 * 1024 else "at least 64 KB",
    ),
    Setting("logs/max-files", "non zero positive integer", 5, "rotated log files kept", min=1, max=1000, live=False),
    Setting(
        "personal/private-key-size", "selection", 2048, "RSA private key size", choices=(1024, 2048, 3072, 4096),
    ),
]


@attrs.define
class Settings:
    """The live settings of one home. `set` validates, persists atomically, then notifies."""

    path: Path | None
    definitions: dict[str, Setting] = attrs.field(factory=lambda: {d.key: d for d in DEFINITIONS})
    # what the file holds, including keys this version does not know (kept, never lost)
    _stored: dict[str, Any] = attrs.field(factory=dict)
    _listeners: list[tuple[str, Listener]] = attrs.field(factory=list)

    @classmethod
    def load(cls, home: Path | None) -> Settings:
        """Read the home's settings; a corrupt file is set aside (never deleted) and defaults used."""
        settings = cls(home / SETTINGS_FILE if home else None)
        if settings.path is None or not settings.path.exists():
            return settings
        try:
            stored = json.loads(settings.path.read_text(encoding="utf-8"))
            if not isinstance(stored, dict):
                raise ValueError("not a JSON object")
        except (ValueError, UnicodeDecodeError) as err:
            aside = settings.path.with_name(f"{SETTINGS_FILE}.corrupt-{int(time.time())}")
            os.replace(settings.path, aside)
            log.error("settings file {path} is corrupt ({err}); kept as {aside}, using defaults",
                      path=str(settings.path), err=str(err), aside=str(aside))
            return settings
        settings._stored = stored
        return settings

    def definition(self, key: str) -> Setting:
        try:
            return self.definitions[key]
        except KeyError:
            raise UnknownSetting(f"unknown setting {key!r}") from None

    def get(self, key: str) -> Any:
        definition = self.definition(key)
        if key not in self._stored:
            return definition.default
        try:
            return definition.parse(self._stored[key])
        except InvalidSettingValue as err:
            log.warn("ignoring stored value: {err}", err=str(err))
            return definition.default

    def set(self, key: str, raw: Any) -> Any:
        """Validate, persist, notify; return the typed value. A refused value changes nothing."""
        definition = self.definition(key)
        if definition.readonly:
            raise InvalidSettingValue(f"{key} is read-only")
        value = definition.parse(raw)
        old = self.get(key)
        self._stored[key] = value
        self._save()
        if value != old:
            for prefix, listener in list(self._listeners):
                if key.startswith(prefix):
                    listener(key, old, value)
        return value

    def describe(self, key: str) -> list[dict[str, Any]]:
        """The entry of one key, or of every key under a prefix (`services/supplier`)."""
        if key in self.definitions:
            return [self.definitions[key].describe(self.get(key))]
        found = [d.describe(v) for d, v in self.items() if d.key.startswith(key.rstrip("/") + "/")]
        if not found:
            self.definition(key)  # raises UnknownSetting naming the key
        return found

    def items(self) -> list[tuple[Setting, Any]]:
        return [(d, self.get(d.key)) for d in self.definitions.values()]

    def subscribe(self, prefix: str, listener: Listener) -> Callable[[], None]:
        """Call listener(key, old, new) when a key under prefix changes; returns the unsubscriber."""
        entry = (prefix, listener)
        self._listeners.append(entry)
        return lambda: self._listeners.remove(entry) if entry in self._listeners else None

    def _save(self) -> None:
        if self.path is None:
            return
        ensure_home(self.path.parent)
        data = json.dumps(self._stored, indent=2, sort_keys=True) + "\n"
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, self.path)

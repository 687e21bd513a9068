"""The settings tree: types, defaults, persistence, corrupt files, notifications."""

import json
import os
import stat
from pathlib import Path

from twisted.trial.unittest import TestCase

from bitdust_node.errors import InvalidSettingValue, UnknownSetting
from bitdust_node.settings import DEFINITIONS, Settings
from bitdust_node.sizes import size_to_bytes


class SettingsTests(TestCase):
    def setUp(self) -> None:
        self.home = Path(self.mktemp())
        self.settings = Settings.load(self.home)

    def test_defaults_follow_the_guide(self) -> None:
        s = self.settings
        self.assertEqual(s.get("services/entangled-dht/udp-port"), 14441)
        self.assertEqual(s.get("services/identity-server/web-port"), 8084)
        self.assertEqual(s.get("services/identity-server/tcp-port"), 6661)
        self.assertEqual(s.get("services/tcp-connections/tcp-port"), 7771)
        self.assertEqual(s.get("interface/api/rest-http-host"), "127.0.0.1")
        self.assertEqual(s.get("interface/api/rest-http-port"), 8180)
        self.assertIs(s.get("interface/api/auth-secret-enabled"), True)
        self.assertIs(s.get("services/identity-server/enabled"), False)
        self.assertIs(s.get("services/proxy-server/enabled"), False)
        self.assertIs(s.get("services/customer/enabled"), True)
        self.assertEqual(s.get("services/supplier/donated-space"), "8 GB")

    def test_every_spec_key_is_defined(self) -> None:
        keys = {d.key for d in DEFINITIONS}
        for key in (
            "services/entangled-dht/known-nodes", "services/entangled-dht/attached-layers",
            "services/identity-server/host", "services/identity-server/expire-days",
            "services/identity-propagate/known-servers", "services/identity-propagate/min-servers",
            "services/identity-propagate/max-servers", "services/proxy-server/routes-limit",
            "services/proxy-transport/preferred-routers", "services/customer/needed-space",
            "services/customer/suppliers-number", "services/network/bind-address",
            "personal/private-key-size",
        ):
            self.assertIn(key, keys)

    def test_values_are_typed_and_persisted(self) -> None:
        self.settings.set("services/entangled-dht/udp-port", "14442")
        self.settings.set("services/supplier/enabled", "false")
        self.settings.set("services/supplier/donated-space", "1.5TB")
        again = Settings.load(self.home)
        self.assertEqual(again.get("services/entangled-dht/udp-port"), 14442)
        self.assertIs(again.get("services/supplier/enabled"), False)
        self.assertEqual(again.get("services/supplier/donated-space"), "1.5 TB")
        self.assertEqual(size_to_bytes(again.get("services/supplier/donated-space")), int(1.5 * 1024**4))

    def test_sizes(self) -> None:
        for raw, shown in (("50 GB", "50 GB"), ("512 MB", "512 MB"), ("1000000", "1000000 bytes"), ("2kb", "2 KB")):
            self.assertEqual(self.settings.set("services/customer/needed-space", raw), shown)
        for bad in ("lots", "5 XB", "-1 GB", "1.5", ""):
            self.assertRaises(InvalidSettingValue, self.settings.set, "services/customer/needed-space", bad)

    def test_refusals_name_the_key_and_type_and_change_nothing(self) -> None:
        self.settings.set("services/entangled-dht/udp-port", 14442)
        path = self.home / "config.json"
        before = path.read_bytes()
        with self.assertRaises(InvalidSettingValue) as caught:
            self.settings.set("services/entangled-dht/udp-port", "banana")
        self.assertIn("services/entangled-dht/udp-port", str(caught.exception))
        self.assertIn("port number", str(caught.exception))
        self.assertRaises(InvalidSettingValue, self.settings.set, "services/entangled-dht/udp-port", 70000)
        self.assertRaises(InvalidSettingValue, self.settings.set, "services/customer/suppliers-number", 3)
        self.assertRaises(InvalidSettingValue, self.settings.set, "services/supplier/enabled", "maybe")
        with self.assertRaises(UnknownSetting) as unknown:
            self.settings.set("no/such/key", 1)
        self.assertIn("no/such/key", str(unknown.exception))
        self.assertEqual(path.read_bytes(), before)
        self.assertEqual(self.settings.get("services/entangled-dht/udp-port"), 14442)

    def test_rest_host_must_be_loopback(self) -> None:
        for good in ("127.0.0.1", "127.0.0.9", "::1"):
            self.settings.set("interface/api/rest-http-host", good)
        for bad in ("0.0.0.0", "192.168.1.5", "example.com"):
            self.assertRaises(InvalidSettingValue, self.settings.set, "interface/api/rest-http-host", bad)

    def test_write_is_atomic_and_readable(self) -> None:
        self.settings.set("services/supplier/donated-space", "50 GB")
        path = self.home / "config.json"
        self.assertEqual(json.loads(path.read_text()), {"services/supplier/donated-space": "50 GB"})
        self.assertFalse((self.home / "config.json.tmp").exists())

    def test_crash_mid_write_leaves_the_old_file(self) -> None:
        self.settings.set("services/supplier/donated-space", "50 GB")
        # a crash between writing the temp file and the rename leaves a stray temp file only
        (self.home / "config.json.tmp").write_text('{"services/supplier/donated-space": "1')
        self.assertEqual(Settings.load(self.home).get("services/supplier/donated-space"), "50 GB")

    def test_corrupt_file_is_kept_aside_and_defaults_used(self) -> None:
        self.home.mkdir()
        (self.home / "config.json").write_text("{not json")
        settings = Settings.load(self.home)
        self.assertEqual(settings.get("services/entangled-dht/udp-port"), 14441)
        kept = [p for p in os.listdir(self.home) if p.startswith("config.json.corrupt-")]
        self.assertEqual(len(kept), 1)
        self.assertEqual((self.home / kept[0]).read_text(), "{not json")

    def test_ill_typed_or_unknown_stored_values_are_not_lost(self) -> None:
        self.home.mkdir()
        (self.home / "config.json").write_text(json.dumps({
            "services/entangled-dht/udp-port": "banana", "future/key": 5,
        }))
        settings = Settings.load(self.home)
        self.assertEqual(settings.get("services/entangled-dht/udp-port"), 14441)
        settings.set("services/supplier/enabled", False)
        stored = json.loads((self.home / "config.json").read_text())
        self.assertEqual(stored["future/key"], 5)

    def test_notifications(self) -> None:
        seen: list[tuple[str, object, object]] = []
        unsubscribe = self.settings.subscribe("services/supplier/", lambda *a: seen.append(a))
        self.settings.set("services/supplier/enabled", False)
        self.settings.set("services/supplier/enabled", False)  # no change, no notice
        self.settings.set("services/customer/enabled", False)  # other prefix
        unsubscribe()
        self.settings.set("services/supplier/enabled", True)
        self.assertEqual(seen, [("services/supplier/enabled", True, False)])

    def test_home_is_private(self) -> None:
        self.settings.set("services/supplier/enabled", False)
        self.assertEqual(stat.S_IMODE(self.home.stat().st_mode), 0o700)

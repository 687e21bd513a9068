"""The example settings profiles in conf/settings/: what `bitdust init --profile FILE` takes."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.trial.unittest import SynchronousTestCase

from bitdust_node.cli.commands.init import load_profile
from bitdust_node.dht.bootstrap import parse_known_nodes
from bitdust_node.identity.known_servers import parse_known_servers
from bitdust_node.settings import Settings

PROFILES = Path(__file__).resolve().parents[2] / "conf" / "settings"
ROLES = ("seed-node", "identity-server", "proxy-router", "supplier", "customer")


def profile(role: str) -> dict[str, Any]:
    return load_profile(str(PROFILES / f"{role}.json"))


class ExampleProfiles(SynchronousTestCase):
    def test_one_file_per_role(self) -> None:
        self.assertEqual({p.stem for p in PROFILES.glob("*.json")}, set(ROLES))

    def test_every_value_parses(self) -> None:
        settings = Settings(None)
        for role in ROLES:
            for key, value in profile(role).items():
                # an unknown key raises UnknownSetting, an ill-typed value InvalidSettingValue
                settings.definition(key).parse(value)

    def test_init_writes_them_into_a_home(self) -> None:
        for role in ROLES:
            home = Path(self.mktemp())
            written = Settings.load(home)
            wanted = profile(role)
            for key, value in wanted.items():
                written.set(key, value)
            reread = Settings.load(home)
            for key, value in wanted.items():
                self.assertEqual(reread.get(key), reread.definition(key).parse(value), f"{role}: {key}")

    def test_host_lists_are_well_formed(self) -> None:
        for role in ROLES:
            values = profile(role)
            seeds = parse_known_nodes(values["services/entangled-dht/known-nodes"])
            self.assertEqual(seeds.genesis, role == "seed-node", role)
            self.assertEqual(bool(seeds.hosts), role != "seed-node", role)
            self.assertTrue(parse_known_servers(values["services/identity-propagate/known-servers"]), role)

    def test_roles(self) -> None:
        seed = profile("seed-node")
        self.assertEqual(seed["services/entangled-dht/known-nodes"], "genesis")
        self.assertIs(seed["services/identity-server/enabled"], True)
        self.assertIs(profile("identity-server")["services/identity-server/enabled"], True)
        router = profile("proxy-router")
        self.assertIs(router["services/proxy-server/enabled"], True)
        self.assertIs(router["services/proxy-transport/enabled"], False)
        self.assertIs(profile("supplier")["services/supplier/enabled"], True)
        self.assertIs(profile("customer")["services/customer/enabled"], True)

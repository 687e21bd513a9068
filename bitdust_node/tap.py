"""twistd glue: `twistd bitdust --config DIR` makes a Node whose home is DIR, and logs as `bitdust-node` does."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, cast

from twisted.internet.task import LoopingCall
from twisted.python import usage

from bitdust_node import logs
from bitdust_node.heap import RELEASE_INTERVAL, release_free_memory, tune_node_process
from bitdust_node.home import default_home
from bitdust_node.logs import follow as follow_log_settings
from bitdust_node.net.clock import INodeReactor
from bitdust_node.node import Node

PRIVATE_UMASK = 0o077


class Options(usage.Options):
    optParameters = [
        ["config", "c", None, "the node's home folder (default $BITDUST_HOME or ~/.bitdust)"],
    ]

    def postOptions(self) -> None:
        self["config"] = Path(self["config"]).expanduser().resolve() if self["config"] else default_home()
        twistd = getattr(self, "parent", None)  # twistd's own options, parsed before ours
        if twistd is not None:
            use_node_log(twistd, self["config"])


def use_node_log(twistd: Any, home: Path) -> None:
    """The node's log (level and format from logs/ settings, flood guard, rotation) unless the command line
    names another: `twistd bitdust`, `twistd -n bitdust`, `bitdust-node` and the systemd unit alike."""
    if twistd.get("logger") or twistd.get("logfile") is not None or twistd.get("syslog"):
        return
    logs.prepare(home, to_stdout=bool(twistd.get("nodaemon")))
    twistd["logger"] = logs.NODE_OBSERVER  # twistd imports it by this name once all options are read


def makeService(options: Options) -> Node:
    from twisted.internet import reactor as global_reactor

    reactor = cast(INodeReactor, global_reactor)  # the epoll reactor provides them all
    # what the node writes is its own unless made public on purpose (the identity store)
    os.umask(PRIVATE_UMASK)
    tune_node_process(reactor)
    node = Node(options["config"], reactor=reactor, on_stop_request=reactor.stop)
    follow_log_settings(node.settings)
    # a node at rest returns what a burst of packets left free (a minute of buffers at most)
    release = LoopingCall(release_free_memory)
    release.clock = reactor
    release.start(RELEASE_INTERVAL, now=False)
    return node

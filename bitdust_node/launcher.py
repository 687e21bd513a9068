"""`bitdust-node`: twistd with the bitdust plugin built in and the node's own log.

    bitdust-node [twistd options] [--config DIR]

It needs no plugin discovery (an editable install has no twisted/plugins dropin on the path) and
logs as `logs/` settings say: to stdout with --nodaemon (the journal under systemd), else to
DIR/logs/node.log rotated by size, the flood of a peer's refusals cut to a few lines a second. An explicit
--logfile or --logger is honoured as twistd does. `twistd bitdust` logs the same way (bitdust_node.tap).
"""

from __future__ import annotations

import sys
from typing import Any

# this module imports no Twisted at the top: without_tls() must run before the first Twisted import
NODE_OPTIONS = ("--config",)


def split_argv(argv: list[str]) -> tuple[list[str], list[str]]:
    """twistd's options, and the node's (--config DIR / --config=DIR) that follow the subcommand."""
    twistd: list[str] = []
    node: list[str] = []
    items = iter(argv)
    for arg in items:
        name = arg.split("=", 1)[0]
        if name in NODE_OPTIONS:
            node.append(arg)
            if "=" not in arg:
                node.append(next(items, ""))
        elif arg == "bitdust":
            continue  # `bitdust-node bitdust --config DIR`, as twistd would be called, works too
        else:
            twistd.append(arg)
    return twistd, node


def server_options() -> Any:
    from twisted.scripts.twistd import ServerOptions

    from bitdust_node.plugin import SERVICE_MAKER

    class NodeServerOptions(ServerOptions):  # type: ignore[misc, valid-type]
        """twistd's options with one subcommand, ours, instead of every installed plugin."""

        synopsis = (
            "Usage: bitdust-node [twistd options] [--config DIR]\n"
            "  --config DIR         the node's home (default $BITDUST_HOME, else ~/.bitdust)"
        )

        @staticmethod
        def _getPlugins(interface: Any, package: Any = None) -> Any:
            return [SERVICE_MAKER]

    return NodeServerOptions()


def without_tls() -> None:
    """Keep pyOpenSSL and the standard `ssl` module out of this process: Twisted loads the first
    eagerly (twisted.internet.tcp and .endpoints try it at import) and http.client, asyncio and
    werkzeug the second, all for TLS, which no BitDust port or client speaks; they cost 3 MB and
    1 MB. Each of them takes an ImportError as "no TLS here". Must run before anything imports the reactor."""
    sys.modules.setdefault("OpenSSL", None)  # type: ignore[arg-type]
    sys.modules.setdefault("ssl", None)  # type: ignore[arg-type]


def run(argv: list[str] | None = None) -> None:
    without_tls()
    from twisted.scripts.twistd import runApp

    twistd_args, node_args = split_argv(list(sys.argv[1:] if argv is None else argv))
    config = server_options()
    try:
        config.parseOptions([*twistd_args, "bitdust", *node_args])
    except Exception as err:  # usage.UsageError, as twistd reports it
        print(config)
        sys.exit(f"bitdust-node: {err}")
    runApp(config)  # the node's log was chosen while the options were read (bitdust_node.tap.use_node_log)

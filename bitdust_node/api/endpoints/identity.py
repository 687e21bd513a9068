"""REST endpoints of the local identity (its servers and its moves) and the identity cache."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from twisted.internet import defer

from bitdust_node.api.routes import ApiContext, ApiRequest, endpoint
from bitdust_node.errors import InvalidInput, NotFound
from bitdust_node.identity import backup, registration
from bitdust_node.identity.cache import identity_http
from bitdust_node.identity.my_identity import describe_identity
from bitdust_node.identity.rotation import Rotation, SourceHealth
from bitdust_node.services.identity_propagate import IdentityPropagateService
from bitdust_node.services.network import NetworkService

_TRUE = {"1", "true", "yes", "on"}
PROPAGATE = "service_identity_propagate"


@endpoint(
    "POST",
    "/identity/create/v1",
    "Create my identity on the known identity servers",
    params=("username",),
)
def identity_create(api: ApiContext, req: ApiRequest) -> defer.Deferred[dict[str, Any]]:
    username = req.body.get("username", req.args.get("username"))

    async def run() -> dict[str, Any]:
        ctx = api.ctx
        network = api.graph.service("network")
        # my contact names my outside address from revision 0 on
        host = network.external_address() if isinstance(network, NetworkService) else None
        me = await registration.create(ctx.settings, ctx.reactor, ctx.identity, username, host=host)
        ctx.identity.adopt(me)
        return me.describe(include_xml=True)

    return defer.ensureDeferred(run())


@endpoint("GET", "/identity/get/v1", "My identity", params=("include_xml_source",))
def identity_get(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    include = str(req.args.get("include_xml_source", "")).lower() in _TRUE
    return api.ctx.identity.require().describe(include_xml=include)


def _path_arg(req: ApiRequest, *names: str) -> Path:
    for name in names:
        value = req.body.get(name, req.args.get(name))
        if value:
            if not isinstance(value, str):
                raise InvalidInput(f"{name} must be a string")
            return Path(value)
    raise InvalidInput(f"{' or '.join(names)} is required")


@endpoint(
    "POST",
    "/identity/backup/v1",
    "Write my IDURL sources and private key to a file (mode 0600)",
    params=("destination_path", "destination_filepath"),
)
def identity_backup(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    me = api.ctx.identity.require()
    target = _path_arg(req, "destination_filepath", "destination_path")
    try:
        written = backup.write_backup(me, target)
    except OSError as err:
        raise InvalidInput(f"cannot write {target}: {err.strerror}") from None
    return {
        "destination_path": str(written),
        "idurl": me.idurl,
        "global_id": me.global_id,
    }


@endpoint(
    "POST",
    "/identity/recover/v1",
    "Restore my identity from a backup file or its text",
    params=("private_key_source", "source_path", "source_filepath"),
)
def identity_recover(api: ApiContext, req: ApiRequest) -> defer.Deferred[dict[str, Any]]:
    text = req.body.get("private_key_source")
    if isinstance(text, str) and text:
        data = text.encode("utf-8")
    else:
        source = _path_arg(req, "source_filepath", "source_path")
        try:
            data = source.expanduser().read_bytes()[: backup.MAX_BACKUP_BYTES + 1]
        except OSError as err:
            raise NotFound(f"cannot read {source}: {err.strerror}") from None

    async def run() -> dict[str, Any]:
        me = await backup.recover(api.ctx.identity, identity_http(api.ctx.reactor), data)
        api.ctx.identity.adopt(me)
        return me.describe(include_xml=True)

    return defer.ensureDeferred(run())


@endpoint("GET", "/identity/cache/list/v1", "Identities of others known to this node")
def identity_cache_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    return [describe_identity(i) for i in api.ctx.identity_cache.items()]


def _rotation(rotation: Rotation) -> dict[str, Any]:
    return {
        "old_idurl": rotation.old_idurl,
        "new_idurl": rotation.new_idurl,
        "old_sources": list(rotation.old_sources),
        "sources": list(rotation.sources),
        "revision": rotation.revision,
        "confirmed": list(rotation.confirmed),
        "reason": rotation.reason,
        "time": rotation.at,
    }


@endpoint("POST", "/identity/rotate/v1", "Move my identity off an identity server now (my first one by default)",
          service=PROPAGATE, params=("server",))
def identity_rotate(api: ApiContext, req: ApiRequest) -> defer.Deferred[dict[str, Any]]:
    server = req.body.get("server", req.args.get("server", ""))
    if not isinstance(server, str) or len(server) > 300:
        raise InvalidInput("server must be host[:port] of one of my identity servers")
    rotator = api.running(IdentityPropagateService).rotator

    def shaped(done: Rotation | None) -> dict[str, Any]:
        me = api.ctx.identity.require()
        if done is None:
            return {"rotated": False, "idurl": me.idurl, "sources": list(me.identity.sources)}
        return {"rotated": True, "idurl": me.idurl, **_rotation(done)}

    return rotator.rotate_now(server).addCallback(shaped)


@endpoint("GET", "/identity/sources/v1", "The servers of my identity, each asked now whether it serves it",
          service=PROPAGATE)
def identity_sources(api: ApiContext, req: ApiRequest) -> defer.Deferred[dict[str, Any]]:
    me = api.ctx.identity.require()
    service = api.running(IdentityPropagateService)
    core = service.rotator.core

    def shaped(checks: tuple[SourceHealth, ...]) -> dict[str, Any]:
        last = core.rotations[-1] if core.rotations else None
        return {
            "idurl": me.idurl,
            "revision": me.identity.revision,
            "sources": [{"idurl": c.idurl, "reachable": c.reachable, "revision": c.revision, "error": c.detail}
                        for c in checks],
            "former_idurls": list(api.ctx.identity.former),
            "automatic_rotate": service.rotation_settings().enabled,
            "health_check_interval": service.rotation_settings().interval,
            "id_rotator": service.rotator.state,
            "first_source_failures": core.watch.failures,
            "last_check": core.last_checked_at,
            "last_error": core.last_error,
            "last_rotation": _rotation(last) if last is not None else None,
        }

    return service.rotator.check_now().addCallback(shaped)

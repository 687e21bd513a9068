"""REST of the customer (PROTOCOL-P2P.md 7): files in and out, their list, the suppliers, the space used."""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bitdust_node.api.routes import ApiContext, ApiRequest, WithMessage, endpoint
from bitdust_node.errors import InvalidInput, NotFound
from bitdust_node.services.customer import CustomerService

if TYPE_CHECKING:
    from bitdust_node.storage.customer import Customer
    from bitdust_node.storage.transfers import Transfer

CUSTOMER = "service_customer"


def _customer(api: ApiContext) -> Customer:
    customer = api.running(CustomerService).customer
    assert customer is not None
    return customer


def remote_path(api: ApiContext, req: ApiRequest) -> str:
    """`remote_path` as official clients give it (`master$me@host:docs/a.txt`) or bare (`docs/a.txt`)."""
    raw = {**req.args, **req.body}.get("remote_path")
    if not isinstance(raw, str) or not raw:
        raise InvalidInput("remote_path is needed, e.g. docs/report.pdf")
    me = api.ctx.identity.require()
    key_id, sep, path = raw.partition(":")
    if sep and "@" in key_id:
        if key_id.removeprefix("master$") != me.global_id:
            raise InvalidInput(f"{key_id} is not my key: only my own files are stored here")
        raw = path
    # only a running customer gets here: the storage room is loaded by then
    from bitdust_node.storage.catalog import CatalogError, normalize

    try:
        return normalize(raw)
    except CatalogError as err:
        raise InvalidInput(str(err)) from None


def _flag(req: ApiRequest, name: str) -> bool:
    value = {**req.args, **req.body}.get(name, False)
    return value in (True, 1, "1", "true", "True")


@endpoint("POST", "/file/create/v1", "Register a remote file or folder path", service=CUSTOMER,
          params=("remote_path", "as_folder"))
async def file_create(api: ApiContext, req: ApiRequest) -> WithMessage:
    customer = _customer(api)
    entry, created = await customer.create(remote_path(api, req), "dir" if _flag(req, "as_folder") else "file")
    me = api.ctx.identity.require()
    return WithMessage({
        "created": created, "customer": me.idurl, "global_id": f"{me.key_id}:{entry.path_id}",
        "key_id": me.key_id, "path": entry.path, "path_id": entry.path_id, "remote_path": f"{me.key_id}:{entry.path}",
        "type": entry.kind,
    }, [f"new {entry.kind} created in {me.key_id}:{entry.path_id} successfully"])


@endpoint("POST", "/file/upload/start/v1", "Store a local file or folder on the suppliers", service=CUSTOMER,
          params=("local_path", "remote_path", "wait_result"))
async def file_upload_start(api: ApiContext, req: ApiRequest) -> WithMessage:
    customer = _customer(api)
    local = req.body.get("local_path")
    if not isinstance(local, str) or not local:
        raise InvalidInput("local_path is needed")
    remote = remote_path(api, req) if req.body.get("remote_path") else Path(local).name
    transfer, work = customer.start_upload(Path(local), remote)
    if _flag(req, "wait_result"):
        await work
    else:
        work.addErrback(lambda _f: None)  # the failure is in the transfer's state
    me = api.ctx.identity.require()
    entry = customer.catalog.entry(transfer.remote_path)
    return WithMessage({
        "key_id": me.key_id, "remote_path": f"{me.key_id}:{transfer.remote_path}", "source_path": transfer.local_path,
        "path_id": entry.path_id if entry else "", "version": transfer.version, "state": str(transfer.state),
    }, [f"item {me.key_id}:{transfer.remote_path} is uploading, local path is {transfer.local_path}"])


@endpoint("POST", "/file/download/start/v1", "Bring a stored file or folder back", service=CUSTOMER,
          params=("remote_path", "destination_folder", "wait_result"))
async def file_download_start(api: ApiContext, req: ApiRequest) -> WithMessage:
    customer = _customer(api)
    destination = req.body.get("destination_folder") or str(api.ctx.home / "restored")
    if not isinstance(destination, str):
        raise InvalidInput("destination_folder must be a folder path")
    transfer, work = customer.start_download(remote_path(api, req), Path(destination))
    if _flag(req, "wait_result"):
        await work
    else:
        work.addErrback(lambda _f: None)
    me = api.ctx.identity.require()
    return WithMessage({
        "downloaded": transfer.state == "done", "key_id": me.key_id, "remote_path": transfer.remote_path,
        "local_path": transfer.local_path, "state": str(transfer.state),
    }, [f"{transfer.remote_path} {'downloaded to' if transfer.state == 'done' else 'downloading into'} "
        f"{transfer.local_path}"])


def _stop(api: ApiContext, req: ApiRequest, kind: str, doing: str) -> tuple[list[Transfer], list[str]]:
    """Stop the running transfers of `kind` of a path (a folder's: its files' too); they and what to say of each."""
    from bitdust_node.storage.transfers import TransferKind

    path = remote_path(api, req)
    customer = _customer(api)
    asked = customer.transfer_log.stop(TransferKind(kind), path)
    if not asked:
        # as official nodes do: a path of the catalog with nothing running is no error; an unknown one is
        if customer.catalog.entry(path) is None:
            raise NotFound(f"{path} is not in the catalog, and no {kind} of it is running")
        return [], [f"no {kind} of {path} is running"]
    # one past its last wait (stored whole, or written) ends as it would have: said as stopping, not aborted
    return asked, [f'{doing} "{t.remote_path}" aborted' if t.state == "stopped" else
                   f'{doing} "{t.remote_path}" is stopping' for t in asked]


@endpoint("POST", "/file/upload/stop/v1", "Stop uploading a file or folder", service=CUSTOMER,
          params=("remote_path",))
def file_upload_stop(api: ApiContext, req: ApiRequest) -> WithMessage:
    asked, said = _stop(api, req, "upload", "uploading")
    # as official nodes answer: the backup ids (`key:path id/version`) of the uploads stopped
    return WithMessage([t.version for t in asked], said)


@endpoint("POST", "/file/download/stop/v1", "Stop bringing a file or folder back", service=CUSTOMER,
          params=("remote_path",))
def file_download_stop(api: ApiContext, req: ApiRequest) -> WithMessage:
    asked, said = _stop(api, req, "download", "restoring of")
    # as official nodes answer, with the transfer's path and state beside
    return WithMessage([{"backup_id": t.version, "aborted": t.state == "stopped", "remote_path": t.remote_path,
                         "state": str(t.state)} for t in asked], said)


def transfer_row(transfer: Transfer) -> dict[str, Any]:
    return {
        "kind": str(transfer.kind), "remote_path": transfer.remote_path, "local_path": transfer.local_path,
        "total": transfer.total, "done": transfer.done, "state": str(transfer.state), "error": transfer.error,
        "started": transfer.started, "finished": transfer.finished, "version": transfer.version,
        "percent": round(100 * transfer.done / transfer.total, 1) if transfer.total else 100.0,
    }


def _transfers(api: ApiContext, kind: str) -> list[dict[str, Any]]:
    return [transfer_row(t) for t in _customer(api).transfers.values() if t.kind == kind]


@endpoint("GET", "/file/upload/v1", "Uploads and their progress", service=CUSTOMER)
def file_upload_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    return _transfers(api, "upload")


@endpoint("GET", "/file/download/v1", "Downloads and their progress", service=CUSTOMER)
def file_download_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    return _transfers(api, "download")


@endpoint("GET", "/file/list/v1", "Stored files and folders with their versions", service=CUSTOMER)
def file_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    customer = _customer(api)
    me = api.ctx.identity.require()
    rows = []
    for entry in sorted(customer.catalog.entries.values(), key=lambda e: e.path):
        latest = entry.latest()
        ok, total = customer.file_health(entry)
        rows.append({
            "remote_path": f"{me.key_id}:{entry.path}",
            "path": entry.path,
            "name": entry.path.rsplit("/", 1)[-1],
            "path_id": entry.path_id,
            "global_id": f"{me.key_id}:{entry.path_id}",
            "key_id": me.key_id,
            "key_alias": "master",
            "customer": me.global_id,
            "idurl": me.idurl,
            "type": entry.kind,
            "size": latest.size if latest else 0,
            "latest": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(latest.created)) if latest else "",
            "versions": [{"backup_id": f"{me.key_id}:{entry.path_id}/{v.version}", "size": v.size,
                          "blocks": len(v.blocks), "complete": v.complete} for v in entry.versions],
            # the healthy shares of the weakest block at the last check
            "health": {"ok": ok, "total": total},
        })
    return rows


@endpoint("DELETE", "/file/delete/v1", "Forget a file or folder and delete its pieces", service=CUSTOMER,
          params=("remote_path",))
async def file_delete(api: ApiContext, req: ApiRequest) -> WithMessage:
    path = remote_path(api, req)
    removed = await _customer(api).delete(path)
    return WithMessage({"deleted": removed, "remote_path": path}, [f"{path} deleted"])


@endpoint("GET", "/supplier/list/v1", "My suppliers by position", service=CUSTOMER)
def supplier_list(api: ApiContext, req: ApiRequest) -> list[dict[str, Any]]:
    customer = _customer(api)
    unreachable = customer.health.unreachable()
    rows = []
    for slot in customer.suppliers.slots:
        known = customer.identities.get(slot.idurl) if slot.idurl else None
        check = customer.health.check_of(slot.position) if slot.idurl else None
        rows.append({
            "position": slot.position,
            "idurl": slot.idurl,
            "global_id": known.global_id if known is not None else "",
            "supplier_state": str(slot.state),
            "contact_state": "OFFLINE" if slot.position in unreachable else "CONNECTED",
            "connected": slot.since,
            # what the health checks found there
            "last_answer": check.last_answer if check else 0.0,
            "last_check": check.last_check if check else 0.0,
            "pieces_held": check.held if check else 0,
            "pieces_expected": check.expected if check else 0,
            "failed_checks": check.failed if check else 0,
            "verified_pieces": check.verified if check else 0,
        })
    return rows


@endpoint("GET", "/space/consumed/v1", "Space my files take on the suppliers", service=CUSTOMER)
def space_consumed(api: ApiContext, req: ApiRequest) -> dict[str, Any]:
    space = _customer(api).space()
    return {
        "suppliers_num": space.suppliers,
        "needed": space.needed,
        "needed_per_supplier": space.per_supplier,
        "used": space.stored,
        # each supplier keeps 1/k of the data, in base64
        "used_per_supplier": round(space.stored * 4 / 3 / space.shares_needed),
        "available": max(0, space.needed - space.stored),
        "used_percent": f"{100 * space.stored / space.needed:.3f}%" if space.needed else "0%",
        "my_files": space.files,
        "my_files_size": space.files_size,
        "my_folders": space.folders,
        "my_catalog_items": space.items,
    }


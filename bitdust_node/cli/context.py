"""What a CLI command needs: the home, whether the node runs, and a REST caller."""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import attrs

from bitdust_node import home as home_paths
from bitdust_node.settings import Settings


class CliError(Exception):
    """One clear line for the user, with its exit code."""

    def __init__(self, message: str, exit_code: int = 1, http_status: int = 0) -> None:
        super().__init__(message)
        self.message = message
        self.exit_code = exit_code
        self.http_status = http_status  # the REST API's answer, when it gave one


# HTTP status of an ERROR envelope -> CLI exit code (bad input is 2, as for local checks)
_EXIT_BY_STATUS = {400: 2, 413: 2}


@attrs.define
class CliContext:
    home: Path
    # over the longest the node itself waits on a call: a catalog save waits 30 s for a supplier that stays silent,
    # and may wait for the save before it
    timeout: float = 120.0

    def settings(self) -> Settings:
        return Settings.load(self.home)

    def pid(self) -> int | None:
        return home_paths.running_pid(self.home)

    def is_running(self) -> bool:
        return self.pid() is not None

    def require_running(self) -> None:
        """CliError with what to do when no node runs in this home."""
        if not self.is_running():
            raise CliError(f"no node is running in {self.home}; start one with `bitdust daemon`")

    def api_base(self) -> str:
        s = self.settings()
        host = s.get("interface/api/rest-http-host")
        port = s.get("interface/api/rest-http-port")
        if ":" in str(host):
            host = f"[{host}]"
        return f"http://{host}:{port}"

    def api(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        query: dict[str, Any] | None = None,
        timeout: float | None = None,
    ) -> Any:
        """Call the running node's REST API; return `result` or raise CliError with its errors."""
        url = self.api_base() + path
        if query:
            url += "?" + urllib.parse.urlencode(query)
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(url, data=data, method=method)
        req.add_header("Content-Type", "application/json")
        secret = home_paths.read_api_secret(self.home)
        if secret:
            req.add_header("api_secret", secret)
        try:
            with urllib.request.urlopen(req, timeout=timeout or self.timeout) as resp:
                payload = json.loads(resp.read() or b"{}")
        except urllib.error.HTTPError as err:
            try:
                payload = json.loads(err.read() or b"{}")
            except ValueError:
                raise CliError(f"node answered HTTP {err.code}") from None
            errors = payload.get("errors") or [f"HTTP {err.code}"]
            raise CliError("; ".join(errors), _EXIT_BY_STATUS.get(err.code, 1), err.code) from None
        except (urllib.error.URLError, OSError) as err:
            raise CliError(f"cannot reach the node's REST API at {url}: {err}") from None
        if payload.get("status") != "OK":
            raise CliError("; ".join(payload.get("errors") or ["node answered ERROR"]))
        return payload.get("result")

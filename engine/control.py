"""`liqdesk ctl`: steer a running engine through a local Unix socket.

The headless runner serves the socket (default `<db path>.sock`, or
`engine.control_socket`), created with mode 0600 so that only its owner can
send commands. The protocol is one JSON line each way:
`{"cmd": "approve", "arg": "3"}` -> `{"ok": true, "text": "...", "status": {...}}`.
Commands run on the engine's event loop between two events, exactly like the
console's keys; nothing a client sends can crash the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import socket
import stat
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from .config import ConfigError, Settings

if TYPE_CHECKING:
    from .engine import Engine

# command -> (argument name or "", argument required)
COMMANDS: dict[str, tuple[str, bool]] = {
    "status": ("", False), "halt": ("REASON", False), "resume": ("", False), "cancel_all": ("", False),
    "flatten": ("", False), "approve": ("ID", True), "reject": ("ID", True), "approve_all": ("", False),
    "pause": ("NAME", True), "unblacklist": ("SYMBOL", True),
}
MAX_REQUEST = 4096
FLAT_WAIT_S = 10.0  # how long `ctl flatten` waits for the broker to confirm "flat"
SUN_PATH_MAX = 107  # bytes in sockaddr_un.sun_path, less the terminating NUL (Linux)


def socket_path(settings: Settings, db: str) -> str:
    return settings.engine.control_socket or f"{db}.sock"


def check_command(cmd: str, arg: str | None) -> None:
    """Usage errors are configuration errors: one line, exit 2."""
    if cmd not in COMMANDS:
        raise ConfigError(f"config error: ctl command {cmd!r}: allowed: {', '.join(COMMANDS)}")
    name, required = COMMANDS[cmd]
    if required and not arg:
        raise ConfigError(f"config error: ctl {cmd} needs {name}")
    if not name and arg:
        raise ConfigError(f"config error: ctl {cmd} takes no argument (got {arg!r})")


# --------------------------------------------------------------------------------------------
# server (inside the engine's process)
# --------------------------------------------------------------------------------------------
class ControlServer:
    def __init__(self, engine: Engine, path: str):
        self.engine = engine
        self.path = path
        self._server: asyncio.AbstractServer | None = None

    async def start(self) -> None:
        if len(os.fsencode(self.path)) > SUN_PATH_MAX:
            raise ConfigError(f"config error: control socket path {self.path!r} is longer than "
                              f"{SUN_PATH_MAX} bytes; set engine.control_socket to a shorter path")
        if os.path.lexists(self.path):
            if _is_socket(self.path) and _answers(self.path):
                raise ConfigError(f"config error: another engine is running on this database (control socket "
                                  f"{self.path} answers); stop it or use another --db")
            if not _is_socket(self.path):
                raise ConfigError(f"config error: control socket path {self.path} exists and is not a socket")
            os.unlink(self.path)  # left over by a run that was killed
        old = os.umask(0o177)  # the socket is born 0600: no window where others may connect
        try:
            self._server = await asyncio.start_unix_server(self._handle, path=self.path, limit=MAX_REQUEST)
        finally:
            os.umask(old)
        os.chmod(self.path, 0o600)
        # No path in the line: identical runs on different --db paths must log identically.
        self.engine.log("control socket ready for `liqdesk ctl` (mode 0600)")

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        with contextlib.suppress(FileNotFoundError):
            os.unlink(self.path)

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            line = await asyncio.wait_for(reader.readline(), timeout=5.0)
            try:
                req = json.loads(line.decode("utf-8"))
                if not isinstance(req, dict):
                    raise ValueError("request is not an object")
                cmd = str(req.get("cmd", ""))
                arg = req.get("arg")
                arg = None if arg is None else str(arg)
                check_command(cmd, arg)
                resp = await self.execute(cmd, arg)
            except (ValueError, ConfigError) as exc:
                resp = {"ok": False, "text": f"bad request: {exc}"}
            writer.write((json.dumps(resp, default=str) + "\n").encode("utf-8"))
            await writer.drain()
        except (TimeoutError, ConnectionError, asyncio.LimitOverrunError, asyncio.IncompleteReadError,
                ValueError):
            pass  # a client that hangs, disconnects or floods gets nothing; the engine carries on
        except Exception as exc:  # never let a command take the engine down
            with contextlib.suppress(Exception):
                self.engine.log(f"ctl error: {type(exc).__name__}: {exc}", "error")
                writer.write((json.dumps({"ok": False, "text": f"error: {exc}"}) + "\n").encode("utf-8"))
                await writer.drain()
        finally:
            writer.close()
            with contextlib.suppress(Exception):
                await writer.wait_closed()

    async def execute(self, cmd: str, arg: str | None) -> dict[str, Any]:
        e = self.engine
        ok, text = True, ""
        if cmd == "halt":
            e.halt(arg or "ctl")
            text = f"HALTED: no new entries ({e.halt_reason})"
        elif cmd == "resume":
            e.resume()
            text = "RESUMED: entries allowed"
        elif cmd == "cancel_all":
            text = f"cancel sent for {e.cancel_all()} working orders"
        elif cmd == "flatten":
            e.flatten()
            text = await self._wait_flat()
        elif cmd == "approve":
            order = e.approve(arg or "")
            ok = order is not None
            text = f"approved #{arg}: order {order.id} sent" if order is not None else \
                f"approval #{arg} not sent (see the log: unknown id, or refused by the risk gate)"
        elif cmd == "reject":
            ok = e.reject(arg or "")
            text = f"rejected #{arg}" if ok else f"no pending approval #{arg}"
        elif cmd == "approve_all":
            text = f"approved and sent {e.approve_all()} entries"
        elif cmd == "pause":
            ok = e.pause_strategy(arg or "")
            st = e.strategy(arg or "")
            text = f"strategy {arg} {'paused' if st.paused else 'running'}" if ok and st is not None else \
                f"no strategy {arg!r}; running: {', '.join(s.name for s in e.strategies)}"
        elif cmd == "unblacklist":
            ok, text = unblacklist(e, arg or "")
        status = e.status()
        if cmd == "status":
            text = format_status(status)
        return {"ok": ok, "text": text, "status": status}

    async def _wait_flat(self) -> str:
        e = self.engine
        deadline = time.monotonic() + FLAT_WAIT_S
        while not e.flat_confirmed and e.flattening and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if e.flat_confirmed:
            return "flat: the broker confirms no positions and no working orders (halted until resume)"
        held = e.external_positions()  # e.g. funding pairs whose legs' closes are not all confirmed yet
        left = f"{len(e.portfolio.open_positions())} positions{',' if held else ' and'} {len(e.open_orders)} orders"
        return (f"flattening: {left}{f' and {count_held(held)}' if held else ''} not yet confirmed closed; "
                "run `liqdesk ctl status` to follow")


def count_held(items: list[dict]) -> str:
    """External positions counted by kind: "2 funding pairs"."""
    kinds: dict[str, int] = {}
    for it in items:
        k = str(it.get("kind", "position"))
        kinds[k] = kinds.get(k, 0) + 1
    return ", ".join(f"{n} {k}{'s' * (n != 1)}" for k, n in sorted(kinds.items()))


def unblacklist(e: Engine, symbol: str) -> tuple[bool, str]:
    """Lift a symbol's blacklist in every strategy that keeps one (LIT) and in the risk gate's runtime list."""
    sym = symbol.strip().upper()
    lifted = [s.name for s in e.strategies if getattr(s, "unblacklist", None) is not None and s.unblacklist(sym)]
    risk_list = getattr(getattr(e.risk, "state", None), "blacklist", [])
    if sym in risk_list:
        e.risk.blacklist_remove(sym)
        lifted.append("risk")
    if not lifted:
        return False, f"{sym} is not blacklisted"
    e.log(f"UNBLACKLIST {sym} ({', '.join(lifted)})")
    return True, f"{sym} removed from the blacklist ({', '.join(lifted)})"


def _is_socket(path: str) -> bool:
    try:
        return stat.S_ISSOCK(os.lstat(path).st_mode)
    except OSError:
        return False


def _answers(path: str) -> bool:
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(1.0)
        try:
            s.connect(path)
            return True
        except OSError:
            return False


# --------------------------------------------------------------------------------------------
# client (`liqdesk ctl`)
# --------------------------------------------------------------------------------------------
class ControlUnavailable(Exception):
    pass


def request(path: str, cmd: str, arg: str | None = None, timeout: float = FLAT_WAIT_S + 5.0) -> dict:
    """Send one command to the engine at `path` and return its answer."""
    if not _is_socket(path):
        raise ControlUnavailable(f"no running engine: control socket {path} not found (is `liqdesk run` "
                                 "using this --db?)")
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(timeout)
        try:
            s.connect(path)
            s.sendall((json.dumps({"cmd": cmd, "arg": arg}) + "\n").encode("utf-8"))
            data = b""
            while not data.endswith(b"\n"):
                chunk = s.recv(65536)
                if not chunk:
                    break
                data += chunk
        except OSError as exc:
            raise ControlUnavailable(f"no running engine answers on {path}: {exc.strerror or exc}") from None
    try:
        return json.loads(data.decode("utf-8"))
    except ValueError:
        raise ControlUnavailable(f"the engine on {path} sent no answer") from None


def run_ctl(settings: Settings, db: str, cmd: str, arg: str | None, as_json: bool = False,
            echo: Callable[[str], None] = print) -> int:
    check_command(cmd, arg)
    path = socket_path(settings, db)
    try:
        resp = request(path, cmd, arg)
    except ControlUnavailable as exc:
        echo(f"ctl: {exc}")
        return 1
    echo(json.dumps(resp.get("status", {}), indent=2, sort_keys=True, default=str) if as_json
         else str(resp.get("text", "")))
    return 0 if resp.get("ok") else 1


def _num(v: Any, fmt: str = "g") -> str:
    return "-" if v is None else format(v, fmt)


def format_status(st: dict) -> str:
    """`liqdesk ctl status`: halt state, positions, orders, pending approvals, risk."""
    if st.get("flattening"):
        state = "HALTED (flatten: " + ("flat, confirmed by the broker)" if st.get("flat_confirmed") else
                                       "closing in progress)")
    elif st.get("halted"):
        state = f"HALTED ({st.get('halt_reason') or 'manual'}): no new entries"
    else:
        state = "RUNNING: entries allowed"
    risk = st.get("risk") or {}
    lines = [f"liqdesk {st.get('mode', '')} at {st.get('time', '')}  {state}",
             f"equity {st.get('equity', 0.0):,.2f} USD"]
    if risk.get("entries_blocked"):
        lines.append(f"entries blocked: {risk['entries_blocked']}")
    pos = st.get("positions", [])
    lines.append(f"positions ({len(pos)}):" if pos else "positions: none")
    for p in pos:
        lines.append(f"  {p['symbol']:<10} {p['side']:<5} {abs(p['qty']):g} @ {_num(p['entry'])}  mark "
                     f"{_num(p.get('mark'))}  uPnL {p.get('upnl', 0.0):+.2f}  [{p.get('strategy', '')}]")
    orders = st.get("orders", [])
    lines.append(f"orders ({len(orders)}):" if orders else "orders: none")
    for o in orders:
        at = f"@ {_num(o['price'])}" if o.get("price") is not None else f"trigger {_num(o.get('trigger'))}"
        lines.append(f"  {o['id']:<8} {o['symbol']:<10} {o['side']:<4} {o['type']:<6} {o['qty']:g} {at}  "
                     f"{o['purpose']} {o['status']}")
    held = st.get("external_positions", [])
    if held:  # held by strategies on other venues (funding pairs): not in the broker's positions
        lines.append(f"held by strategies ({count_held(held)}):")
        lines += [f"  {h.get('text', h.get('symbol', ''))}  [{h.get('strategy', '')}]" for h in held]
    appr = st.get("pending_approvals", [])
    lines.append(f"pending approvals ({len(appr)}):" if appr else "pending approvals: none")
    for a in appr:
        lines.append(f"  #{a['id']} {a['symbol']} {a['side']} {a['qty']:g} @ {_num(a['price'])} "
                     f"({a['notional']:,.0f} USD) expires in {a['expires_in_s']:g} s: {a['reason']}")
    strategies = st.get("strategies", {})
    if strategies:
        lines.append("strategies: " + ", ".join(f"{k} {v}" for k, v in strategies.items()))
    if risk:
        d, w = risk.get("daily", {}), risk.get("weekly", {})
        lines.append(f"loss today {d.get('loss_pct', 0):.2f}% of {d.get('limit_pct', 0):g}%, this week "
                     f"{w.get('loss_pct', 0):.2f}% of {w.get('limit_pct', 0):g}%")
        if risk.get("cooldowns"):
            lines.append("cooldowns: " + ", ".join(f"{s} {t:g} s" for s, t in risk["cooldowns"].items()))
    return "\n".join(lines)

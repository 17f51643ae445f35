"""Reading a store: `liqdesk history` (closed trades and fills) and `liqdesk db check` (integrity).

Both open the database read-only, so they may run while an engine writes to it; they see
the last committed batch, which is always a consistent checkpoint plus the rows before it.
"""

from __future__ import annotations

import csv
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import orjson

from .config import ConfigError
from .events import NS
from .store import OPEN_STATUSES, open_readonly

Echo = Callable[[str], None]
# Fill quantities are multiples of a qty step >= 1e-8; sums of them drift by ~1e-15.
QTY_TOLERANCE = 1e-9


def parse_since(text: str | None) -> int:
    """`--since` as ns since the epoch (UTC): a date (2025-01-06) or a date and time."""
    if text is None:
        return 0
    t = text.strip().replace("Z", "+00:00")
    try:
        dt = datetime.fromisoformat(t)
    except ValueError:
        raise ConfigError(f"config error: --since = {text!r}: use a date like 2025-01-06 or "
                          "2025-01-06T13:00:00 (UTC)") from None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return int(dt.timestamp()) * NS


def fmt_ts(ts: int | None) -> str:
    if not ts:
        return ""
    return datetime.fromtimestamp(ts / NS, UTC).strftime("%Y-%m-%d %H:%M:%S")


# --------------------------------------------------------------------------------------------
# history
# --------------------------------------------------------------------------------------------
_TRADES_SQL = """SELECT closed_ts, symbol, side, qty, entry_price, exit_price, fees, funding, net_pnl, exit_reason,
                        strategy, opened_ts
                 FROM positions WHERE status = 'closed' AND closed_ts >= ? ORDER BY closed_ts, seq"""
_FILLS_SQL = """SELECT ts, symbol, side, qty, price, fee, liquidity, order_id, kind, fill_id,
                       (SELECT strategy FROM orders WHERE orders.id = fills.order_id)
                FROM fills WHERE ts >= ? ORDER BY ts, seq"""
CSV_COLUMNS = ["record", "time_utc", "symbol", "side", "qty", "price", "exit_price", "fee", "funding", "net_pnl",
               "exit_reason", "liquidity", "order_id", "fill_id", "strategy", "opened_utc"]


def history(db: str, since: str | None, csv_path: str | None, echo: Echo) -> int:
    """Print closed trades and fills since a date; optionally write both to one CSV file."""
    since_ns = parse_since(since)
    conn = open_readonly(db)
    try:
        conn.execute("BEGIN")  # trades and fills from the same commit
        trades = conn.execute(_TRADES_SQL, (since_ns,)).fetchall()
        fills = conn.execute(_FILLS_SQL, (since_ns,)).fetchall()
    finally:
        conn.close()
    echo(f"closed trades: {len(trades)}" + (f" since {fmt_ts(since_ns)} UTC" if since_ns else ""))
    if trades:
        echo(f"{'closed (UTC)':19}  {'symbol':9} {'side':5} {'qty':>10} {'entry':>11} {'exit':>11} "
             f"{'net USD':>9}  {'reason':8} strategy")
    for closed_ts, sym, side, qty, entry, exit_, _fees, _funding, net, reason, strategy, _opened in trades:
        echo(f"{fmt_ts(closed_ts):19}  {sym:9} {side:5} {qty:>10g} {entry:>11g} {exit_ or 0:>11g} "
             f"{net or 0:>+9.2f}  {reason or '':8} {strategy}")
    echo(f"fills: {len(fills)}")
    if fills:
        echo(f"{'time (UTC)':19}  {'symbol':9} {'side':4} {'qty':>10} {'price':>11} {'fee':>8}  {'liq':6} order")
    for ts, sym, side, qty, price, fee, liq, order_id, kind, _fid, _strategy in fills:
        echo(f"{fmt_ts(ts):19}  {sym:9} {side:4} {qty:>10g} {price:>11g} {fee:>8.2f}  {liq:6} {order_id}"
             + ("  (reconciliation)" if kind == "reconcile" else ""))
    if csv_path:
        _write_csv(Path(csv_path), trades, fills)
        echo(f"wrote {len(trades) + len(fills)} rows to {csv_path}")
    return 0


def _write_csv(path: Path, trades: list, fills: list) -> None:
    rows = []
    for closed_ts, sym, side, qty, entry, exit_, fees, funding, net, reason, strategy, opened in trades:
        rows.append((closed_ts, 0, ["trade", fmt_ts(closed_ts), sym, side, qty, entry, exit_, fees, funding, net,
                                    reason, "", "", "", strategy, fmt_ts(opened)]))
    for ts, sym, side, qty, price, fee, liq, order_id, kind, fill_id, strategy in fills:
        rows.append((ts, 1, ["fill" if kind == "trade" else kind, fmt_ts(ts), sym, side, qty, price, "", fee, "",
                             "", "", liq, order_id, fill_id, strategy or "", ""]))
    rows.sort(key=lambda r: (r[0], r[1]))
    try:
        with open(path, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(CSV_COLUMNS)
            w.writerows(r[2] for r in rows)
    except OSError as exc:
        raise ConfigError(f"config error: --csv = {str(path)!r}: {exc.strerror}") from None


# --------------------------------------------------------------------------------------------
# db check
# --------------------------------------------------------------------------------------------
@dataclass
class CheckReport:
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def check_db(conn: sqlite3.Connection) -> CheckReport:
    """Integrity, then the invariants a consistent store keeps."""
    r = CheckReport()
    conn.execute("BEGIN")  # one snapshot for every query, even while an engine commits
    try:
        _check(conn, r)
    finally:
        conn.execute("ROLLBACK")
    return r


def _check(conn: sqlite3.Connection, r: CheckReport) -> None:
    bad = [row[0] for row in conn.execute("PRAGMA integrity_check(20)")]
    if bad != ["ok"]:
        r.problems += [f"integrity: {b}" for b in bad]
        return
    q = conn.execute
    for name, sql in (
            ("runs", "SELECT count(*) FROM runs"),
            ("orders", "SELECT count(*) FROM orders"),
            ("order events", "SELECT count(*) FROM order_events"),
            ("fills", "SELECT count(*) FROM fills"),
            ("open positions", "SELECT count(*) FROM positions WHERE status = 'open'"),
            ("closed positions", "SELECT count(*) FROM positions WHERE status = 'closed'"),
            ("funding payments", "SELECT count(*) FROM funding"),
            ("cascades", "SELECT count(*) FROM cascades"),
            ("signals", "SELECT count(*) FROM signals"),
            ("log lines", "SELECT count(*) FROM log"),
            ("strategy states", "SELECT count(*) FROM strategy_state")):
        r.counts[name] = q(sql).fetchone()[0]

    # Each position is the sum of its fills: one net position per symbol, from flat.
    fills = dict(q("SELECT symbol, sum(CASE side WHEN 'buy' THEN qty ELSE -qty END) FROM fills GROUP BY symbol"))
    open_rows = q("SELECT symbol, CASE side WHEN 'long' THEN qty ELSE -qty END FROM positions "
                  "WHERE status = 'open'").fetchall()
    table: dict[str, float] = {}
    for sym, qty in open_rows:
        if sym in table:
            r.problems.append(f"{sym}: more than one open position row")
        table[sym] = qty
    for sym in sorted(set(fills) | set(table)):
        have, total = table.get(sym, 0.0), fills.get(sym, 0.0) or 0.0
        if abs(have - total) > QTY_TOLERANCE * max(1.0, abs(total)):
            r.problems.append(f"{sym}: position {have:+g} but its fills sum to {total:+g}")

    # The checkpoint's portfolio is the positions table (they commit together).
    row = q("SELECT state, ts, seq FROM engine_state WHERE component = 'portfolio'").fetchone()
    if row is not None:
        saved = {s: p["qty"] for s, p in orjson.loads(row[0]).get("positions", {}).items() if p["qty"]}
        for sym in sorted(set(saved) | set(table)):
            if abs(saved.get(sym, 0.0) - table.get(sym, 0.0)) > QTY_TOLERANCE * max(1.0, abs(saved.get(sym, 0.0))):
                r.problems.append(f"{sym}: checkpoint position {saved.get(sym, 0.0):+g} but positions table "
                                  f"{table.get(sym, 0.0):+g}")
        r.notes.append(f"last checkpoint {fmt_ts(row[1])} UTC (seq {row[2]})")

    # Every fill belongs to a known order, whose filled quantity is the sum of its fills.
    orphans = q("SELECT count(*) FROM fills WHERE kind = 'trade' AND order_id NOT IN (SELECT id FROM orders)")
    n = orphans.fetchone()[0]
    if n:
        r.problems.append(f"{n} fills of unknown orders")
    mismatched = q(f"""SELECT o.id, o.filled_qty, sum(f.qty) FROM orders o JOIN fills f ON f.order_id = o.id
                       WHERE o.source = 'engine' AND f.kind = 'trade' GROUP BY o.id
                       HAVING abs(o.filled_qty - sum(f.qty)) > {QTY_TOLERANCE} * max(1.0, o.filled_qty)""").fetchall()
    for oid, filled, total in mismatched[:10]:
        r.problems.append(f"order {oid}: filled {filled:g} but its fills sum to {total:g}")
    if len(mismatched) > 10:
        r.problems.append(f"... and {len(mismatched) - 10} more orders whose fills do not add up")
    dups = q("SELECT fill_id, count(*) FROM fills WHERE fill_id != '' GROUP BY fill_id, order_id "
             "HAVING count(*) > 1").fetchall()
    for fid, n in dups[:10]:
        r.problems.append(f"fill {fid} recorded {n} times")

    # Working orders: those in the checkpoint are the engine's; any others were placed after it.
    working = {row[0] for row in q(f"SELECT id FROM orders WHERE status IN ({','.join('?' * len(OPEN_STATUSES))})",
                                   OPEN_STATUSES)}
    eng = q("SELECT state FROM engine_state WHERE component = 'engine'").fetchone()
    if eng is not None:
        in_checkpoint = {o["id"] for o in orjson.loads(eng[0]).get("open_orders", [])}
        missing = sorted(in_checkpoint - working)
        if missing:
            r.problems.append(f"{len(missing)} working orders of the checkpoint are not working in the orders "
                              f"table: {', '.join(missing[:5])}")
        after = working - in_checkpoint
        if after:
            r.notes.append(f"{len(after)} order(s) committed after the last checkpoint (a kill between an entry and "
                           "its batch); the next start marks them cancelled")
    r.counts["working orders"] = len(working)


def db_check(db: str, echo: Echo) -> int:
    conn = open_readonly(db)
    try:
        report = check_db(conn)
    finally:
        conn.close()
    c = report.counts
    verdict = "FAILED" if report.problems else "ok"
    echo(f"db check {db}: {verdict}")
    if c:
        echo("  " + ", ".join(f"{k} {v}" for k, v in c.items()))
        if not report.problems:
            echo(f"  integrity ok; every position equals the sum of its fills ({c['fills']} fills); "
                 "every order's filled quantity equals the sum of its fills")
    for note in report.notes:
        echo(f"  {note}")
    for p in report.problems:
        echo(f"  PROBLEM: {p}")
    return 1 if report.problems else 0

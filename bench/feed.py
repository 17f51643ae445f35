"""Bybit feed throughput: order-book deltas per second through parse + sequence check + book apply.

    python -m bench.feed [--messages 200000] [--levels 8] [--seed 1] [--repeat 3] [--json PATH]

Messages are generated first, as the exact bytes Bybit sends on `orderbook.50`
(a 50-level snapshot, then deltas touching `--levels` price levels each, some
of them deletes), with a seeded random walk. Then, in one process on one core:

* parse:         JSON decode + BybitParser (-> BookDelta events)
* parse+book:    + BookSequencer (u continuity) + OrderBook.apply_delta (the goal: >= 100,000/s)
* feed path:     the live feed's per-message handler (pong check, topic state, sequencing,
                 emit to a no-op sink), without the socket
* mixed stream:  parse+book on a realistic mix (60% book deltas, 25% tickers, 14% trades,
                 1% liquidations)

Reported: messages/s of process CPU time (the machine is shared; CPU time is what one core
can do, wall time also counts other processes), median of --repeat runs.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import random
import statistics
import time

import orjson

from engine.book import OrderBook
from engine.config import Settings
from engine.events import BookDelta, BookSnapshot
from engine.feeds.bybit import BybitPublicFeed
from engine.feeds.bybit_parse import BookSequencer, BybitParser, decode, is_pong

SYMBOL = "BTCUSDT"


def book_messages(n: int, levels: int, seed: int) -> list[bytes]:
    rng = random.Random(seed)
    mid = 65_000.0
    ts = 1_736_125_200_000
    u = 1_000_000

    def lv(p: float) -> list[str]:
        return [f"{p:.1f}", f"{rng.uniform(0.001, 5):.3f}"]

    snap = {"b": [lv(mid - 0.1 * (i + 1)) for i in range(50)],
            "a": [lv(mid + 0.1 * (i + 1)) for i in range(50)]}
    out = [orjson.dumps({"topic": f"orderbook.50.{SYMBOL}", "type": "snapshot", "ts": ts,
                         "data": {"s": SYMBOL, **snap, "u": u, "seq": u * 7}, "cts": ts - 2})]
    for _ in range(n):
        mid += rng.choice((-0.1, 0.0, 0.1))
        ts += 20
        u += 1
        bids, asks = [], []
        for _k in range(levels):
            off = 0.1 * rng.randint(1, 50)
            side = bids if rng.random() < 0.5 else asks
            price = mid - off if side is bids else mid + off
            side.append([f"{price:.1f}", "0" if rng.random() < 0.25 else f"{rng.uniform(0.001, 5):.3f}"])
        data = {"s": SYMBOL, "b": bids, "a": asks, "u": u, "seq": u * 7}
        out.append(orjson.dumps({"topic": f"orderbook.50.{SYMBOL}", "type": "delta", "ts": ts, "data": data,
                                 "cts": ts - 2}))
    return out


def mixed_messages(n: int, seed: int) -> list[bytes]:
    rng = random.Random(seed + 1)
    books = book_messages(int(n * 0.6), 8, seed)
    others: list[bytes] = []
    ts = 1_736_125_200_000
    for i in range(n - len(books) + 1):
        ts += 20
        r = rng.random()
        price = f"{65000 + rng.uniform(-50, 50):.1f}"
        if r < 0.625:
            msg = {"topic": f"tickers.{SYMBOL}", "type": "delta", "ts": ts, "cs": i,
                   "data": {"symbol": SYMBOL, "markPrice": price, "bid1Price": "64999.9"}}
        elif r < 0.975:
            msg = {"topic": f"publicTrade.{SYMBOL}", "type": "snapshot", "ts": ts,
                   "data": [{"T": ts - 1, "s": SYMBOL, "S": rng.choice(("Buy", "Sell")),
                             "v": f"{rng.uniform(0.001, 1):.3f}", "p": price, "L": "PlusTick", "i": f"id{i}",
                             "BT": False, "seq": i}]}
        else:
            msg = {"topic": f"allLiquidation.{SYMBOL}", "type": "snapshot", "ts": ts,
                   "data": [{"T": ts - 100, "s": SYMBOL, "S": "Buy", "v": "0.5", "p": "64950.0"}]}
        others.append(orjson.dumps(msg))
    merged = [books[0]]
    rest = books[1:]
    j = 0
    for i, m in enumerate(others):  # interleave, keeping book deltas in order
        merged.append(m)
        while j < len(rest) and j * len(others) <= (i + 1) * len(rest):
            merged.append(rest[j])
            j += 1
    merged.extend(rest[j:])
    return merged


def run_parse(msgs: list[bytes]) -> float:
    p = BybitParser()
    t0 = time.process_time()
    for raw in msgs:
        p.parse_raw(raw)
    return len(msgs) / (time.process_time() - t0)


def run_parse_book(msgs: list[bytes]) -> float:
    p = BybitParser()
    seq = BookSequencer()
    book = OrderBook(SYMBOL)
    apply_ok = BookSequencer.APPLY
    t0 = time.process_time()
    for raw in msgs:
        for ev in p.parse_raw(raw):
            t = type(ev)
            if t is BookDelta:
                if seq.check(ev) == apply_ok:
                    book.apply_delta(ev.bids, ev.asks, ev.ts, ev.update_id)
            elif t is BookSnapshot:
                seq.check(ev)
                book.apply_snapshot(ev.bids, ev.asks, ev.ts, ev.update_id)
    dt = time.process_time() - t0
    assert seq.last[SYMBOL] == book.update_id, "the book must have applied every delta"
    return len(msgs) / dt


def run_feed_path(msgs: list[bytes]) -> float:
    feed = BybitPublicFeed(Settings(engine={"symbols": [SYMBOL]}), [SYMBOL], "ws://127.0.0.1:1/unused")
    emitted = [0]

    def sink(ev) -> None:  # counts, and drops the event as an engine would after dispatch
        emitted[0] += 1
    feed._emit = sink

    async def go() -> float:
        feed._loop = asyncio.get_running_loop()
        t0 = time.process_time()
        for raw in msgs:  # what the socket reader does with each frame
            if not await feed.on_frame(raw, 0):
                msg = decode(raw)
                if not is_pong(msg):
                    await feed.on_message(msg, 0)
        return len(msgs) / (time.process_time() - t0)
    rate = asyncio.run(go())
    assert feed.counters["gaps"] == 0 and emitted[0] == len(msgs)
    return rate


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--messages", type=int, default=200_000)
    ap.add_argument("--levels", type=int, default=8, help="price levels changed per delta")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--json", help="write the results here")
    a = ap.parse_args()
    books = book_messages(a.messages, a.levels, a.seed)
    mixed = mixed_messages(a.messages, a.seed)
    avg_bytes = statistics.mean(len(m) for m in books[1:])
    res: dict[str, float] = {}
    cases = (("parse", run_parse, books), ("parse+book", run_parse_book, books),
             ("feed path", run_feed_path, books), ("mixed stream parse+book", run_parse_book, mixed))
    for name, fn, msgs in cases:
        res[name] = statistics.median(fn(msgs) for _ in range(a.repeat))
    print(f"Bybit feed benchmark: {a.messages:,} orderbook.50 deltas ({a.levels} levels each, "
          f"{avg_bytes:.0f} bytes avg), seed {a.seed}, median of {a.repeat}, "
          f"Python {platform.python_version()} on {platform.machine()}")
    for name, rate in res.items():
        print(f"  {name:<24} {rate:>12,.0f} messages/s")
    goal = res["parse+book"] >= 100_000
    print(f"  goal >= 100,000 deltas/s through parse + book apply: {'met' if goal else 'NOT met'}")
    if a.json:
        with open(a.json, "w", encoding="utf-8") as f:
            json.dump({"messages": a.messages, "levels": a.levels, "seed": a.seed, "rates": res,
                       "avg_bytes": avg_bytes, "goal_met": goal}, f, indent=2)


if __name__ == "__main__":
    main()

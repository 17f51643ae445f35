"""Recorder, replay and inspect: a capture replays into exactly the events the live feed gave."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import json
from pathlib import Path

import pytest
from fake_bybit import FakePublicStream
from test_bybit_feed import SYMS, fast_settings, until

from engine.cli import main
from engine.config import Settings
from engine.events import BookDelta, BookSnapshot, Liquidation, Ticker, Trade
from engine.feeds.bybit import BybitPublicFeed
from engine.feeds.recorder import HOUR_NS, HourlyGzipWriter, record
from engine.feeds.replay import CaptureReader, ReplayFeed, event_record
from engine.runtime import RunOptions, build_engine

T0 = 1_736_125_200 * 10**9  # 2025-01-06 01:00:00 UTC


def gz_lines(path: Path) -> list[str]:
    with gzip.open(path, "rt") as f:
        return f.read().splitlines()


def write_capture(path: Path, lines: list[str]) -> None:
    with gzip.open(path, "wt") as f:
        for line in lines:
            f.write(line + "\n")


def book_line(recv: int, kind: str, u: int, bids, asks, sym: str = "BTCUSDT") -> str:
    msg = {"topic": f"orderbook.50.{sym}", "type": kind, "ts": recv // 10**6,
           "data": {"s": sym, "b": bids, "a": asks, "u": u, "seq": u}}
    return f"{recv} {json.dumps(msg)}"


async def test_recorded_capture_replays_into_the_live_events(tmp_path):
    """Record while the live feed runs (with a gap and a restart in the stream), then replay."""
    server = FakePublicStream(SYMS)
    await server.start()
    writer = HourlyGzipWriter(tmp_path)
    live: list = []
    feed = BybitPublicFeed(fast_settings(), SYMS, server.url, on_raw=writer.write)
    task = asyncio.create_task(feed.run(live.append))
    try:
        await until(lambda: all(feed.book_state(s) == "LIVE" for s in SYMS), what="live")
        await server.liquidations("BTCUSDT", [("Buy", "100.5", "2"), ("Sell", "99.5", "3")])
        await server.trade("ETHUSDT", "Buy", "200.5", "1.5")
        await server.book_delta("BTCUSDT", bids=[("99.7", "4.000")])
        await server.book_delta("BTCUSDT", asks=[("100.9", "1.000")], skip=2)  # gap: resubscribe
        await until(lambda: feed.counters["resubscribes"] == 1 and feed.book_state("BTCUSDT") == "LIVE",
                    what="resynced")
        await server.restart_book("ETHUSDT", {"180.0": "1.000"}, {"181.0": "2.000"})
        await server.ticker_delta("ETHUSDT", {"markPrice": "180.4", "openInterest": "5100"})
        await until(lambda: any(isinstance(e, Ticker) and e.mark == 180.4 for e in live), what="ticker")
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        writer.close()
        await server.stop()
    files = sorted(tmp_path.glob("bybit-public-*.gz"))
    assert files and writer.stats.messages == feed.counters["messages"]
    first = gz_lines(files[0])[0]
    recv, _, raw = first.partition(" ")
    assert recv.isdigit() and json.loads(raw)["op"] == "subscribe"  # everything is recorded, acks too
    replayed = list(ReplayFeed(tmp_path).events())
    assert [event_record(e) for e in replayed] == [event_record(e) for e in live]
    kinds = {type(e) for e in replayed}
    assert {Liquidation, Trade, BookSnapshot, BookDelta, Ticker} <= kinds


def test_hourly_rotation_and_appending(tmp_path):
    w = HourlyGzipWriter(tmp_path)
    w.write(T0 + 10, '{"a":1}')
    w.write(T0 + HOUR_NS - 1, '{"a":2}')
    w.write(T0 + HOUR_NS, '{"a":3}')
    w.close()
    w2 = HourlyGzipWriter(tmp_path)  # a restart in the same hour appends a gzip member
    w2.write(T0 + HOUR_NS + 5, b'{"a":4}')
    w2.close()
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["bybit-public-20250106-01.gz", "bybit-public-20250106-02.gz"]
    assert gz_lines(tmp_path / names[0]) == [f'{T0 + 10} {{"a":1}}', f'{T0 + HOUR_NS - 1} {{"a":2}}']
    assert len(gz_lines(tmp_path / names[1])) == 2


def test_a_killed_recorder_leaves_a_readable_file(tmp_path):
    w = HourlyGzipWriter(tmp_path, flush_s=0)
    for i in range(5):
        w.write(T0 + i, json.dumps({"topic": "publicTrade.BTCUSDT", "ts": 1, "data": [
            {"T": 1736125200000 + i, "s": "BTCUSDT", "S": "Buy", "v": "1", "p": str(100 + i)}]}))
    path = w.path_for(T0)
    data = path.read_bytes()  # as it is on disk now: flushed, but the gzip trailer was never written
    (tmp_path / "cut.gz").write_bytes(data)
    w.close()
    path.unlink()
    errors: list = []
    evs = list(CaptureReader(tmp_path / "cut.gz", on_error=errors.append).events())
    assert [e.price for e in evs] == [100.0, 101.0, 102.0, 103.0, 104.0]
    assert len(errors) == 1 and "unreadable" in errors[0].reason and errors[0].line == 6


def test_replay_drops_deltas_after_a_gap_until_the_next_snapshot(tmp_path):
    lines = [book_line(T0, "snapshot", 10, [["99", "1"]], [["101", "1"]]),
             book_line(T0 + 1, "delta", 11, [["98", "2"]], []),
             book_line(T0 + 2, "delta", 13, [["97", "2"]], []),  # gap
             book_line(T0 + 3, "delta", 14, [["96", "2"]], []),  # no base
             book_line(T0 + 4, "snapshot", 20, [["95", "1"]], [["105", "1"]]),
             book_line(T0 + 5, "delta", 21, [], [["106", "1"]])]
    write_capture(tmp_path / "c.gz", lines)
    feed = ReplayFeed(tmp_path / "c.gz")
    assert [(type(e).__name__, e.update_id) for e in feed.events()] == [
        ("BookSnapshot", 10), ("BookDelta", 11), ("BookSnapshot", 20), ("BookDelta", 21)]
    assert (feed.counters["gaps"], feed.counters["dropped_deltas"]) == (1, 2)


def test_inspect_prints_normalized_events_and_reports_bad_lines(tmp_path, capsys):
    liq = {"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": 1736125200500,
           "data": [{"T": 1736125200400, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "95000.5"}]}
    trade = {"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": 1736125200600,
             "data": [{"T": 1736125200599, "s": "BTCUSDT", "S": "Sell", "v": "0.2", "p": "95001", "i": "x1"}]}
    tick = {"topic": "tickers.BTCUSDT", "type": "delta", "ts": 1736125200700,
            "data": {"symbol": "BTCUSDT", "markPrice": "95002.5"}}
    write_capture(tmp_path / "c.gz", [
        f"{T0} {json.dumps(liq)}", "garbage without a timestamp", f"{T0 + 1} {{not json",
        f"{T0 + 2} {json.dumps(trade)}", book_line(T0 + 3, "snapshot", 5, [["95000", "1"]], [["95001", "2"]]),
        f"{T0 + 4} {json.dumps(tick)}", f"{T0 + 5} {json.dumps({'success': True, 'op': 'subscribe'})}"])
    assert main(["inspect", str(tmp_path / "c.gz")]) == 0
    out, err = capsys.readouterr()
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows[0] == {"type": "liquidation", "ts": 1736125200400 * 10**6, "symbol": "BTCUSDT", "side": "long",
                       "price": 95000.5, "qty": 0.5, "raw_side": "Buy", "recv_ts": T0}
    assert (rows[1]["type"], rows[1]["side"], rows[1]["price"], rows[1]["qty"]) == ("trade", "sell", 95001.0, 0.2)
    assert rows[2]["type"] == "book_snapshot" and rows[2]["bids"] == [[95000.0, 1.0]] and rows[2]["update_id"] == 5
    assert rows[3]["type"] == "ticker" and rows[3]["mark"] == 95002.5 and rows[3]["index"] is None
    assert len(rows) == 4
    bad = [line for line in err.splitlines() if "c.gz:" in line]
    assert [b.split(":")[1] for b in bad] == ["2", "3"]
    assert "4 events, 2 bad lines skipped" in err


def test_inspect_missing_path_is_a_config_error(tmp_path, capsys):
    assert main(["inspect", str(tmp_path / "nope")]) == 2
    assert capsys.readouterr().err.count("\n") == 1


def test_replay_feed_runs_in_the_engine(tmp_path):
    lines = [book_line(T0 + i * 10**8, "snapshot" if i == 0 else "delta", 100 + i, [[f"{99 - i * 0.5}", "1"]],
                       [["101", f"{1 + i}"]]) for i in range(20)]
    write_capture(tmp_path / "bybit-public-20250106-01.gz", lines)
    settings = Settings(engine={"symbols": ["BTCUSDT"], "strategies": []})
    engine, feeds = build_engine(settings, RunOptions(feed=f"replay:{tmp_path}"))
    assert isinstance(feeds[0], ReplayFeed)
    asyncio.run(engine.run(feeds))
    book = engine.market("BTCUSDT").book
    assert engine.stats.events == 20 and book.update_id == 119
    assert book.best_bid == 99.0 and book.asks == {101.0: 20.0}


def test_bad_replay_paths_are_config_errors(tmp_path, capsys):
    for feed in ("replay:", f"replay:{tmp_path / 'missing'}"):
        assert main(["run", "--headless", "--feed", feed]) == 2
    err = capsys.readouterr().err
    assert "give a capture file" in err and "no capture file or directory" in err


async def test_record_command_writes_the_stream(tmp_path):
    server = FakePublicStream(["BTCUSDT"])
    await server.start()
    settings = fast_settings(public_ws_url=server.url)
    stop = asyncio.Event()
    task = asyncio.create_task(record(settings, ["BTCUSDT"], tmp_path, stop=stop))
    await until(lambda: server.count("subscribe") == 1 and server.subs, what="subscribed")
    await server.trade("BTCUSDT", "Buy", "100.1", "1")
    await until(lambda: any(tmp_path.iterdir()), what="file")
    await asyncio.sleep(0.05)
    stop.set()
    stats = await task
    await server.stop()
    evs = list(ReplayFeed(tmp_path).events())
    assert stats.messages >= 4 and any(isinstance(e, Trade) and e.price == 100.1 for e in evs)


@pytest.mark.parametrize("args", [["--symbols", "BTC-USDT"], ["--mode", "moon"], ["--duration", "0"]])
def test_record_rejects_bad_options(args, tmp_path, capsys):
    assert main(["record", "--out", str(tmp_path), *args]) == 2
    assert capsys.readouterr().err.startswith("config error:")


def test_a_restored_replay_continues_after_the_checkpoint(tmp_path):
    lines = [book_line(T0 + i, "snapshot" if i == 0 else "delta", 10 + i, [[f"{99 - i}", "1"]], [])
             for i in range(6)]
    write_capture(tmp_path / "c.gz", lines)
    first = ReplayFeed(tmp_path / "c.gz")
    it = first.events()
    taken = [next(it) for _ in range(4)]
    state = first.snapshot()
    assert state["emitted"] == 4
    again = ReplayFeed(tmp_path / "c.gz")
    again.restore(state)
    assert [e.update_id for e in taken] + [e.update_id for e in again.events()] == [10, 11, 12, 13, 14, 15]
    with pytest.raises(ValueError):
        ReplayFeed(tmp_path / "c.gz").restore({**state, "path": "/elsewhere.gz"})

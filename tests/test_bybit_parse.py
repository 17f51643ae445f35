"""Every Bybit sample message parses into the right events (side normalization included),
malformed input is rejected with a reason, and the book sequencer follows Bybit's rules."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from engine.book import OrderBook
from engine.events import BookDelta, BookSnapshot, Liquidation, Ticker, Trade
from engine.feeds.bybit_parse import (
    BookSequencer,
    BybitParser,
    MalformedMessage,
    UnsupportedTopic,
    decode,
    is_control,
    is_pong,
    parse_private,
)

SHARED = Path(__file__).resolve().parents[2] / "shared"
FIX = SHARED / "fixtures" / "bybit"
pytestmark = pytest.mark.skipif(not FIX.is_dir(), reason="../shared/fixtures/bybit is not present")

MS = 1_000_000


def load(name: str) -> dict:
    return json.loads((FIX / name).read_text())


def parse(name: str, recv_ts: int = 7) -> list:
    return BybitParser().parse(load(name), recv_ts)


def test_all_liquidation_sell_means_a_short_was_liquidated():
    (ev,) = parse("ws_public_allLiquidation.json")
    assert ev == Liquidation(1739502302929 * MS, "ROSEUSDT", "short", 0.04499, 20000.0, "Sell", 7)


def test_all_liquidation_batch_buy_is_long_and_keeps_every_entry():
    msg = {"topic": "allLiquidation.BTCUSDT", "type": "snapshot", "ts": 1700000000500, "data": [
        {"T": 1700000000100, "s": "BTCUSDT", "S": "Buy", "v": "0.5", "p": "35000.5"},
        {"T": 1700000000200, "s": "BTCUSDT", "S": "Sell", "v": "1.25", "p": "35010"},
        {"T": 1700000000300, "s": "BTCUSDT", "S": "Buy", "v": "2", "p": "34990"}]}
    evs = BybitParser().parse(msg)
    assert [(e.side, e.raw_side, e.price, e.qty, e.ts) for e in evs] == [
        ("long", "Buy", 35000.5, 0.5, 1700000000100 * MS),
        ("short", "Sell", 35010.0, 1.25, 1700000000200 * MS),
        ("long", "Buy", 34990.0, 2.0, 1700000000300 * MS)]
    assert evs[0].notional == pytest.approx(17500.25)


def test_legacy_liquidation_object_parses_with_the_same_side_rule():
    (ev,) = parse("ws_public_liquidation_legacy_DEPRECATED.json")
    assert (ev.symbol, ev.side, ev.raw_side, ev.price, ev.qty, ev.ts) == (
        "BTCUSDT", "short", "Sell", 43511.7, 0.003, 1703485237953 * MS)


def test_public_trade_side_is_the_taker():
    (ev,) = parse("ws_public_publicTrade.json")
    assert ev == Trade(1672304486865 * MS, "BTCUSDT", "buy", 16578.5, 0.001,
                       "20f43950-d8dd-5b31-9112-a178eb6023af", 7)


def test_orderbook_snapshot_and_delta_apply_to_the_book():
    (snap,) = parse("ws_public_orderbook50_snapshot.json")
    assert isinstance(snap, BookSnapshot)
    assert snap.bids == [(16493.5, 0.006), (16493.0, 0.1)] and snap.asks == [(16611.0, 0.029), (16612.0, 0.213)]
    assert (snap.update_id, snap.ts, snap.symbol) == (18521288, 1672304484978 * MS, "BTCUSDT")
    (delta,) = parse("ws_public_orderbook50_delta.json")
    assert isinstance(delta, BookDelta) and delta.update_id == 177400507
    assert (30240.0, 0.0) in delta.bids and (30248.7, 0.0) in delta.asks
    book = OrderBook("BTCUSDT")
    book.apply_snapshot([(30240.0, 1.0), (30230.0, 2.0)], [(30248.7, 1.0), (30260.0, 1.0)])
    book.apply_delta(delta.bids, delta.asks)
    assert 30240.0 not in book.bids and 30248.7 not in book.asks  # size "0" deletes
    assert book.bids[30247.2] == 30.028 and book.best_bid == 30247.2
    assert book.best_ask == 30249.3
    assert 30249.6 not in book.asks  # deleting a level we never had is ignored


def test_u_equal_1_delta_is_treated_as_a_snapshot():
    msg = {"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1, "data": {
        "s": "BTCUSDT", "b": [["99", "1"], ["100", "2"], ["98", "0"]], "a": [["102", "1"], ["101", "3"]], "u": 1}}
    (ev,) = BybitParser().parse(msg)
    assert isinstance(ev, BookSnapshot)
    assert ev.bids == [(100.0, 2.0), (99.0, 1.0)] and ev.asks == [(101.0, 3.0), (102.0, 1.0)]


def test_ticker_snapshot_then_partial_delta_merges():
    p = BybitParser()
    (snap,) = p.parse(load("ws_public_tickers_linear_perp_snapshot.json"))
    assert snap == Ticker(1760325052630 * MS, "BTCUSDT", mark=66666.6, index=115418.19, open_interest=492373.72,
                          funding_rate=-0.005, next_funding_ts=1760342400000 * MS, funding_interval_h=8.0,
                          last=66666.6)
    # a bid-only delta changes nothing the engine keeps: no event, but the merged state moves
    assert p.parse({"topic": "tickers.BTCUSDT", "type": "delta", "ts": 1760325052730, "cs": 2,
                    "data": {"symbol": "BTCUSDT", "bid1Price": "66666.5", "bid1Size": "1"}}) == []
    (d,) = p.parse({"topic": "tickers.BTCUSDT", "type": "delta", "ts": 1760325052830, "cs": 3,
                    "data": {"symbol": "BTCUSDT", "markPrice": "66670.1", "fundingRate": ""}})
    assert d.mark == 66670.1 and d.funding_rate is None and d.index is None and d.open_interest is None
    merged = p.tickers["BTCUSDT"]
    assert merged["markPrice"] == "66670.1" and merged["bid1Price"] == "66666.5"
    assert merged["fundingRate"] == "-0.005" and merged["indexPrice"] == "115418.19"


def test_control_messages_give_no_events():
    p = BybitParser()
    for name in ("ws_pong_public_linear.json", "ws_pong_public_spot.json", "ws_pong_private.json",
                 "ws_pong_option_spread.json", "ws_subscribe_response_public_linear.json",
                 "ws_subscribe_response_failure_unknown_topic.json", "ws_auth_response_success.json",
                 "ws_subscribe_response_private.json", "ws_subscribe_response_failure_invalid_symbol.json"):
        msg = load(name)
        assert is_control(msg) and p.parse(msg) == [], name
    assert all(is_pong(load(n)) for n in ("ws_pong_public_linear.json", "ws_pong_public_spot.json",
                                          "ws_pong_private.json", "ws_pong_option_spread.json"))
    assert not is_pong(load("ws_subscribe_response_public_linear.json"))


def test_every_public_fixture_is_handled():
    """No fixture of the public stream is left unparsed or misread."""
    p = BybitParser()
    for f in sorted(FIX.glob("ws_*.json")):
        msg = load(f.name)
        if f.name.startswith("ws_private_"):
            kind, rows = parse_private(msg)
            assert rows and kind in ("order", "execution", "position", "wallet"), f.name
        elif "topic" in msg:
            assert p.parse(msg), f.name
        else:
            assert p.parse(msg) == [], f.name


@pytest.mark.parametrize("raw, reason", [
    (b"not json", "not JSON"),
    (b"[1, 2]", "not a JSON object"),
    (b'{"topic": "orderbook.50.BTCUSDT", "type": "delta", "ts": 1, "data": {"s": "BTCUSDT"}}', "KeyError"),
    (b'{"topic": "publicTrade.BTCUSDT", "ts": 1, "data": [{"T": 1, "s": "X", "S": "Up", "v": "1", "p": "2"}]}',
     "KeyError"),
    (b'{"topic": "allLiquidation.X", "ts": 1, "data": [{"T": 1, "s": "X", "S": "Buy", "v": "", "p": "2"}]}',
     "ValueError"),
    (b'{"topic": "orderbook.50.X", "type": "weird", "ts": 1, "data": {"s": "X", "b": [], "a": [], "u": 3}}',
     "type"),
    (b'{"hello": 1}', "no topic"),
])
def test_malformed_messages_raise_with_a_reason(raw, reason):
    with pytest.raises(MalformedMessage, match=reason):
        BybitParser().parse_raw(raw)


def test_unknown_topic_is_unsupported_not_malformed():
    with pytest.raises(UnsupportedTopic):
        BybitParser().parse({"topic": "kline.1.BTCUSDT", "type": "snapshot", "ts": 1, "data": []})


def test_sequencer_rules():
    seq = BookSequencer()
    d = lambda u: BookDelta(0, "X", [], [], u)  # noqa: E731
    assert seq.check(d(5)) == BookSequencer.NO_BASE
    assert seq.check(BookSnapshot(0, "X", [], [], 10)) == BookSequencer.APPLY
    assert seq.check(d(11)) == BookSequencer.APPLY
    assert seq.check(d(11)) == BookSequencer.DUPLICATE
    assert seq.check(d(13)) == BookSequencer.GAP
    assert seq.check(d(14)) == BookSequencer.NO_BASE  # no base until the next snapshot
    assert seq.check(BookSnapshot(0, "X", [], [], 1)) == BookSequencer.APPLY  # u = 1 restart
    assert seq.check(d(2)) == BookSequencer.APPLY


def test_private_messages():
    kind, (o,) = parse_private(load("ws_private_order.json"))
    assert kind == "order" and (o.order_id, o.status, o.side, o.cum_qty, o.avg_price) == (
        "5cf98598-39a7-459e-97bf-76ca765ee020", "Filled", "sell", 1.0, 75.0)
    kind, (e,) = parse_private(load("ws_private_execution.json"))
    assert kind == "execution" and (e.exec_id, e.order_id, e.side, e.price, e.qty, e.fee, e.is_maker) == (
        "0ab1bdf7-4219-438b-b30a-32ec863018f7", "9aac161b-8ed6-450d-9cab-c5cc67c21784", "sell", 95900.1, 0.5,
        26.3725275, False)
    assert e.ts == 1746270400353 * MS
    kind, (f,) = parse_private(load("ws_private_execution_fast.json"))
    assert kind == "execution" and f.link_id == "test-00001" and f.qty == 3000.0
    kind, (pos,) = parse_private(load("ws_private_position.json"))
    assert kind == "position" and pos.symbol == "BTCUSDT" and pos.qty == 0.0 and pos.leverage == 10.0
    kind, (w,) = parse_private(load("ws_private_wallet.json"))
    assert kind == "wallet" and w.equity == 10262.91335023 and w.available == 9556.6056555
    assert w.coins == {"BTC": 0.00102964}


def test_real_bybit_ob500_capture_keeps_a_consistent_book():
    """The recorded XRPUSDT ob500 file (the v5 WS format): 1 snapshot + 49 contiguous deltas."""
    z = SHARED / "sample-data" / "bybit_ob500" / "xrpusdt-ob500.data.zip"
    if not z.exists():
        pytest.skip("sample data not present")
    with zipfile.ZipFile(z) as zf:
        lines = zf.read(zf.namelist()[0]).decode().splitlines()
    p, seq, book = BybitParser(), BookSequencer(), OrderBook("XRPUSDT")
    applied = 0
    for line in lines:
        for ev in p.parse(decode(line)):
            assert seq.check(ev) == BookSequencer.APPLY
            if isinstance(ev, BookSnapshot):
                book.apply_snapshot(ev.bids, ev.asks, ev.ts, ev.update_id)
            else:
                book.apply_delta(ev.bids, ev.asks, ev.ts, ev.update_id)
            applied += 1
    assert applied == 50
    assert book.best_bid < book.best_ask
    assert 1.9 < book.mid < 2.0
    assert book.update_id == 20254869 + 49


def test_real_all_liquidation_message_from_the_tardis_sample():
    f = SHARED / "sample-data" / "liquidation_ws_messages" / "tardis-node_mappers-test_liquidations.jsonl"
    if not f.exists():
        pytest.skip("sample data not present")
    msgs = [json.loads(line)["message"] for line in f.read_text().splitlines()
            if json.loads(line)["venue"] == "bybit"]
    evs = [ev for m in msgs if str(m.get("topic", "")).startswith("allLiquidation.")
           for ev in BybitParser().parse(m)]
    assert [(e.symbol, e.side, e.price, e.qty) for e in evs] == [("PIPPINUSDT", "short", 0.02456, 2846.0)]

"""Importers: every file in ../shared/sample-data imports and replays; every format's rules on small files.

Sample files are read by path relative to the repo root (../shared/sample-data); those tests skip
with a reason when ../shared is absent. Format rules are checked on small files written here, using
rows quoted from ../shared/reference/data-formats.md where a real row exists.
"""

from __future__ import annotations

import gzip
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from engine.config import Settings
from engine.engine import Engine
from engine.events import (
    EVENT_TYPES,
    LONG,
    SHORT,
    Bar,
    BookDelta,
    BookSnapshot,
    DepthBands,
    Liquidation,
    LongShortRatio,
    Quote,
    Ticker,
    Trade,
)
from engine.feeds.importers import UnreadableFile, cached, detect, get_importer, import_report
from engine.feeds.importers.base import ImportReport, decimal_seconds_to_ns, epoch_to_ns
from engine.feeds.importers.columnar import INT_NONE, build_cache, iter_cache, load_columns
from engine.feeds.importers.feed import ImportedFeed
from engine.strategies.base import Strategy

SAMPLES = (Path(__file__).resolve().parents[1] / ".." / "shared" / "sample-data").resolve()
needs_samples = pytest.mark.skipif(not SAMPLES.is_dir(), reason=f"shared sample data not found at {SAMPLES}")
MS = 1_000_000


def sample_files() -> list[Path]:
    if not SAMPLES.is_dir():
        return []
    return sorted(p for p in SAMPLES.rglob("*") if p.is_file() and p.suffix not in (".md", ".txt"))


def events_of(path: Path, importer=None, **options):
    imp = importer or detect(path)
    report = ImportReport(str(path))
    return list(imp.events(path, report)), report


def kinds(evs) -> dict[str, int]:
    return dict(Counter(type(e).__name__ for e in evs))


class Recorder(Strategy):
    name = "recorder"
    subscriptions = EVENT_TYPES

    def __init__(self, settings, symbols):
        super().__init__(settings, symbols)
        self.seen = []

    def on_event(self, ev, ctx):
        self.seen.append(ev)
        return []


# -- every sample file imports and replays ---------------------------------------------------------

# (importer, event counts, bad rows) per sample file, from ../shared/sample-data/SOURCES.md and the files.
EXPECTED = {
    "btcusdt-depth-snap.csv": ("binance", {"BookSnapshot": 1}, 0),
    "btcusdt-depth-update.csv": ("binance", {"BookDelta": 1}, 0),
    "xrpusdt-ob500.data.zip": ("bybit-ob", {"BookSnapshot": 1, "BookDelta": 49}, 0),
    "btcusd_20250126.gz": ("raw", {"BookSnapshot": 46, "Trade": 64}, 0),
    "btcusdt_20240808.gz": ("raw", {"BookDelta": 6551, "Quote": 66089, "Trade": 21313, "BookSnapshot": 1}, 0),
    "ethusdt_20240808.gz": ("raw", {"BookDelta": 6586, "Quote": 53992, "Trade": 14076, "BookSnapshot": 1}, 0),
    # the BitMEX insert has no time of its own and the file no receive time: one bad row, reported
    "tardis-node_mappers-test_liquidations.jsonl": ("ws-liquidations", {"Liquidation": 34}, 1),
    "binance-futures_book_snapshot_25_BTCUSDT.csv": ("tardis", {"BookSnapshot": 10}, 0),
    "binance-futures_book_snapshot_5_BTCUSDT.csv": ("tardis", {"BookSnapshot": 10}, 0),
    "bitmex_trades_XBTUSD.csv": ("tardis", {"Trade": 10}, 0),
    "deribit_incremental_book_L2_BTC-PERPETUAL.csv": ("tardis", {"BookSnapshot": 1}, 0),
    "huobi-dm-swap_quotes_BTC-USD.csv": ("tardis", {"Quote": 10}, 0),
}


@pytest.fixture(scope="module")
def sample_caches(tmp_path_factory):
    """Each sample file converted once into the columnar cache (the two 3.6 MB captures take seconds)."""
    root = tmp_path_factory.mktemp("sample-cache")
    return {p.name: cached(p, detect(p), root) for p in sample_files()}


@needs_samples
def test_every_sample_file_has_an_expectation():
    assert sorted(p.name for p in sample_files()) == sorted(EXPECTED)


@needs_samples
@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_sample_file_imports(name, sample_caches):
    importer, counts, bad = EXPECTED[name]
    cache = sample_caches[name]
    report = import_report(cache)
    assert report.importer.split(":")[0] == importer
    assert report.bad == bad, report.bad_rows
    evs = list(iter_cache(cache))
    assert kinds(evs) == counts
    keys = [e.recv_ts or e.ts for e in evs]
    assert keys == sorted(keys)  # replay order


@needs_samples
@pytest.mark.parametrize("name", sorted(EXPECTED))
async def test_sample_file_replays_through_the_engine(name, sample_caches, tmp_path):
    s = Settings()
    rec = Recorder(s, s.engine.symbols)
    eng = Engine(s, strategies=[rec])
    feed = ImportedFeed(_source(name), cache_dir=sample_caches[name].parent)  # reuses the module's cache
    await eng.run([feed])
    assert len(rec.seen) == sum(EXPECTED[name][1].values())
    assert eng.stats.events == len(rec.seen)
    assert eng.clock.now() == max(e.ts for e in rec.seen)


def _source(name: str) -> Path:
    return next(p for p in sample_files() if p.name == name)


@needs_samples
def test_binance_capture_values(sample_caches):
    evs = list(iter_cache(sample_caches["btcusdt_20240808.gz"]))
    first = evs[0]
    assert isinstance(first, BookDelta) and first.symbol == "BTCUSDT"
    assert first.ts == 1723161256298 * MS and first.recv_ts == 1723161255030314667  # T and the local ns
    assert first.update_id == 5123107837557 and first.bids[0] == (58710.2, 0.014)
    trade = next(e for e in evs if isinstance(e, Trade))
    assert (trade.side, trade.price, trade.qty, trade.trade_id) == ("buy", 61800.3, 0.006, "5266583935")
    assert trade.ts == 1723161256322 * MS and trade.recv_ts == 1723161255088176367
    snap = next(e for e in evs if isinstance(e, BookSnapshot))
    assert snap.update_id == 5123107852948 and snap.recv_ts == 1723161255319702566
    assert snap.bids[0] == (61800.2, 2.909) and snap.symbol == "BTCUSDT"
    quote = next(e for e in evs if isinstance(e, Quote))
    assert (quote.bid, quote.bid_qty, quote.ask, quote.ask_qty) == (61800.2, 2.507, 61800.3, 2.51)
    # the local clock runs about 1.2 s behind the exchange's
    assert 1.0e9 < trade.ts - trade.recv_ts < 1.4e9


@needs_samples
def test_small_sample_values(sample_caches):
    ob = list(iter_cache(sample_caches["xrpusdt-ob500.data.zip"]))
    assert isinstance(ob[0], BookSnapshot) and len(ob[0].bids) == 500 and len(ob[0].asks) == 500
    assert ob[0].ts == 1733011200691 * MS and ob[0].bids[0][0] > ob[0].bids[1][0]
    trades = list(iter_cache(sample_caches["bitmex_trades_XBTUSD.csv"]))
    t0 = trades[0]
    assert (t0.side, t0.price, t0.qty, t0.trade_id) == (
        "sell",
        8531.5,
        2152.0,
        "ccc3c1fa-212c-e8b0-1706-9b9c4f3d5ecf",
    )
    assert (t0.ts, t0.recv_ts) == (1583020803145000 * 1000, 1583020803307160 * 1000)
    q = list(iter_cache(sample_caches["huobi-dm-swap_quotes_BTC-USD.csv"]))[0]
    assert (q.bid, q.bid_qty, q.ask, q.ask_qty) == (8629.2, 806.0, 8629.3, 5494.0)  # ask fields come first
    l2 = list(iter_cache(sample_caches["deribit_incremental_book_L2_BTC-PERPETUAL.csv"]))[0]
    assert len(l2.bids) + len(l2.asks) == 15 and l2.asks[0] == (6421.5, 18640.0)
    snap25 = list(iter_cache(sample_caches["binance-futures_book_snapshot_25_BTCUSDT.csv"]))[0]
    assert len(snap25.asks) == 25 and len(snap25.bids) == 25
    assert snap25.asks[0] == (11657.08, 1.714) and snap25.bids[0] == (11657.07, 10.896)
    tdepth = list(iter_cache(sample_caches["btcusdt-depth-snap.csv"]))[0]
    assert tdepth.update_id == 2098021528332 and len(tdepth.bids) + len(tdepth.asks) == 100
    hl = list(iter_cache(sample_caches["btcusd_20250126.gz"]))
    assert {e.symbol for e in hl} == {"BTC"} and next(e for e in hl if isinstance(e, Trade)).side == "buy"


@needs_samples
def test_liquidation_messages_normalize_the_liquidated_side(sample_caches):
    evs = list(iter_cache(sample_caches["tardis-node_mappers-test_liquidations.jsonl"]))
    by_raw = {(e.symbol, e.raw_side): e for e in evs}
    binance = by_raw[("BTCUSDT", "BUY")]  # Binance forceOrder: a BUY order closes a short
    assert (binance.side, binance.price, binance.qty, binance.ts) == (
        SHORT,
        4793.91,
        0.014,
        1584059031421 * MS,
    )
    assert by_raw[("PIPPINUSDT", "Sell")].side == SHORT  # Bybit allLiquidation: S is the position side
    assert by_raw[("GALAUSDT", "Buy")].side == LONG
    assert by_raw[("BTC-USD-220624", "buy")].side == SHORT  # OKX v5 posSide short
    assert by_raw[("ETH-USD-210326", "3")].side == LONG  # OKX v3 type 3 closes a long
    assert by_raw[("BTC-PERPETUAL", "T:sell")].side == LONG  # Deribit: the selling taker was liquidated
    assert by_raw[("BTC-PERPETUAL", "M:buy")].side == LONG  # Deribit: the selling maker was liquidated
    assert by_raw[("BTCF0:USTF0", "long")].qty == pytest.approx(0.00268657)  # Bitfinex signed amount
    assert by_raw[("APEUSDT", "buy")].side == LONG  # Bitget: side is the position side
    assert by_raw[("BTC200703", "sell")].side == LONG  # Huobi: a sell order closes a long
    report = import_report(sample_caches["tardis-node_mappers-test_liquidations.jsonl"])
    assert report.bad_rows[0].line == 3 and "BitMEX" in report.bad_rows[0].reason
    assert report.skipped == {"message without a liquidation": 2}  # BitMEX delete, Bitfinex later match


# -- Tardis ----------------------------------------------------------------------------------------

TARDIS_L2 = """exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount
deribit,BTC-PERPETUAL,1000,1100,false,bid,99,5
deribit,BTC-PERPETUAL,2000,2100,true,ask,101,3
deribit,BTC-PERPETUAL,2000,2100,true,bid,100,4
deribit,BTC-PERPETUAL,2000,2100,true,bid,99.5,2
deribit,BTC-PERPETUAL,3000,3100,false,bid,100,0
deribit,BTC-PERPETUAL,3000,3100,false,ask,100.5,1
deribit,BTC-PERPETUAL,4000,4100,false,ask,abc,1
deribit,BTC-PERPETUAL,5000,5100,true,bid,98,1
deribit,BTC-PERPETUAL,5000,5100,true,ask,102,1
"""


def test_tardis_incremental_book_groups_messages_and_resets(tmp_path):
    p = tmp_path / "deribit_incremental_book_L2_2020-04-01_BTC-PERPETUAL.csv.gz"
    with gzip.open(p, "wt") as f:
        f.write(TARDIS_L2)
    evs, report = events_of(p)
    assert [type(e).__name__ for e in evs] == ["BookSnapshot", "BookDelta", "BookSnapshot"]
    snap, delta, reset = evs
    assert snap.bids == [(100.0, 4.0), (99.5, 2.0)] and snap.asks == [(101.0, 3.0)]
    assert (snap.ts, snap.recv_ts) == (2000 * 1000, 2100 * 1000)
    assert delta.bids == [(100.0, 0.0)] and delta.asks == [(100.5, 1.0)]
    assert reset.bids == [(98.0, 1.0)]
    assert report.skipped == {"book update before the first snapshot": 1}
    assert [(b.line, b.reason) for b in report.bad_rows] == [(8, "could not convert string to float: 'abc'")]


def test_tardis_trades_liquidations_and_derivative_ticker(tmp_path):
    liq = tmp_path / "binance-futures_liquidations_2021-09-01_PERPETUALS.csv"
    liq.write_text(
        "exchange,symbol,timestamp,local_timestamp,id,side,price,amount\n"
        "binance-futures,BTCUSDT,1584059031421000,1584059031500000,,buy,4793.91,0.014\n"
        "binance-futures,BTCUSDT,1584059031422000,1584059031600000,,sell,4790,0.5\n"
        "binance-futures,BTCUSDT,1584059031423000,1584059031700000,,short,4790,0.5\n"
    )
    evs, report = events_of(liq)
    assert [(e.side, e.raw_side) for e in evs] == [(SHORT, "buy"), (LONG, "sell")]
    assert all(isinstance(e, Liquidation) for e in evs) and report.bad == 1 and report.bad_rows[0].line == 4
    tick = tmp_path / "binance-futures_derivative_ticker_2020-06-01_BTCUSDT.csv"
    tick.write_text(
        "exchange,symbol,timestamp,local_timestamp,funding_timestamp,funding_rate,"
        "predicted_funding_rate,open_interest,last_price,index_price,mark_price\n"
        "dydx-v4,BTC-USD,1743465600448717,1743465600448717,,0.00004405208333333333,,760.6049,,,82546.76734\n"
        "binance-futures,BTCUSDT,1590969600000000,1590969600100000,1590998400000000,0.0001,,"
        "34653.577,9446.49,9440.1,9445.2\n"
    )
    t1, t2 = events_of(tick)[0]
    assert isinstance(t1, Ticker) and t1.mark == 82546.76734 and t1.open_interest == 760.6049
    assert t1.last is None and t1.index is None and t1.next_funding_ts is None
    assert t2.next_funding_ts == 1590998400000000 * 1000 and t2.funding_rate == 0.0001 and t2.last == 9446.49


# -- Binance data.binance.vision -------------------------------------------------------------------


def _zip(path: Path, inner: str, text: str) -> Path:
    with zipfile.ZipFile(path, "w") as z:
        z.writestr(inner, text)
    return path


AGG_ROW = "1715206948,29223.0,0.639,3643221425,3643221428,1682899200101,false\n"


def test_binance_agg_trades_with_and_without_header(tmp_path):
    no_header = _zip(
        tmp_path / "BTCUSDT-aggTrades-2022-08-10.zip",
        "BTCUSDT-aggTrades-2022-08-10.csv",
        AGG_ROW + "1715206949,29222.9,0.010,3643221429,3643221429,1682899200102,true\n",
    )
    header = tmp_path / "BTCUSDT-aggTrades-2023-05-01.csv"
    header.write_text(
        "agg_trade_id,price,quantity,first_trade_id,last_trade_id,transact_time,is_buyer_maker\n"
        + AGG_ROW
        + "x,1,1,1,1,1682899200103,false\n"
    )
    for path in (no_header, header):
        evs, report = events_of(path)
        t = evs[0]
        assert (t.symbol, t.side, t.price, t.qty, t.trade_id, t.ts) == (
            "BTCUSDT",
            "buy",
            29223.0,
            0.639,
            "1715206948",
            1682899200101 * MS,
        )
    assert events_of(no_header)[0][1].side == "sell"  # is_buyer_maker=true: the taker sold
    assert events_of(header)[1].bad == 0  # the id is kept as text; 'x' is an odd id, not a bad row


def test_binance_trades_with_and_without_header_and_tie_break_by_id(tmp_path):
    rows = [
        "5053880938,68402.7,0.010,684.027,1717113600031,true",
        "5053880937,68402.6,0.024,1641.6624,1717113600031,false",
    ]
    for name, text in (
        ("BTCUSDT-trades-2024-05-31.csv", "\n".join(rows) + "\n"),
        ("BTCUSDT-trades-2024-06-01.csv", "id,price,qty,quote_qty,time,is_buyer_maker\n" + "\n".join(rows)),
    ):
        p = tmp_path / name
        p.write_text(text)
        imp = detect(p)
        evs = list(iter_cache(cached(p, imp, tmp_path / "cache")))
        assert [e.trade_id for e in evs] == ["5053880937", "5053880938"]  # same ms: sorted by id
        assert [e.side for e in evs] == ["buy", "sell"]


def test_binance_book_depth_metrics_funding_and_klines(tmp_path):
    depth = tmp_path / "BTCUSDT-bookDepth-2025-05-19.csv"
    depth.write_text(
        "timestamp,percentage,depth,notional\n2025-05-19 11:07:31,-5,7885.27500000,647368074.36920000\n"
        "2025-05-19 11:07:31,1,2097.41000000,176607765.20950000\n"
        "2025-05-19 11:08:01,1,2100.00000000,176800000.00000000\n"
    )
    d1, d2 = events_of(depth)[0]
    assert isinstance(d1, DepthBands) and d1.bands == [
        (-5.0, 7885.275, 647368074.3692),
        (1.0, 2097.41, 176607765.2095),
    ]
    assert d1.ts == epoch_to_ns(1747652851) and d2.ts - d1.ts == 30_000_000_000

    metrics = tmp_path / "BTCUSD_PERP-metrics-2023-06-25.csv"
    metrics.write_text(
        "create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
        "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio\n"
        '2023-06-25 00:00:00,BTCUSD_PERP,5578700.00000000,18265.00911826,"","","",0.00855776\n'
        "2023-06-25 00:05:00,BTCUSD_PERP,5578800,18266,1.5,1.2,3.0,0.9\n"
    )
    evs, _ = events_of(metrics)
    assert kinds(evs) == {"Ticker": 2, "LongShortRatio": 5}
    assert evs[0].open_interest == 5578700.0 and evs[0].symbol == "BTCUSD_PERP"
    glob = next(e for e in evs if isinstance(e, LongShortRatio) and e.source == "binance:global_accounts")
    assert glob.long_share == pytest.approx(0.75) and glob.ratio == pytest.approx(3.0)

    funding = _zip(
        tmp_path / "BTCUSDT-fundingRate-2024-01.zip",
        "BTCUSDT-fundingRate-2024-01.csv",
        "calc_time,funding_interval_hours,last_funding_rate\n1704067200000,8,0.00037409\n"
        "1704096000000,8,0.00030000\n",
    )
    f1, f2 = events_of(funding)[0]
    assert (f1.funding_rate, f1.funding_interval_h, f1.next_funding_ts) == (0.00037409, 8.0, f2.ts)

    klines = tmp_path / "BTCUSD_PERP-1h-2023-10-27.csv"
    klines.write_text(
        "1698364800000,34161.6,34182.5,33977.4,34024.2,409953,1698368399999,1202.97118037,15095,"
        "192220,564.12041453,0\n"
    )
    (bar,), _ = events_of(klines)
    assert isinstance(bar, Bar) and bar.interval_s == 3600 and bar.ts == 1698368400000 * MS
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (
        34161.6,
        34182.5,
        33977.4,
        34024.2,
        409953.0,
    )


def test_binance_liquidation_snapshot_dedupes_and_maps_sides(tmp_path):
    row = "1687656471926,BUY,LIMIT,IOC,7,30741.3,30631.6,FILLED,6,7\n"
    p = _zip(
        tmp_path / "BTCUSD_PERP-liquidationSnapshot-2023-06-25.zip",
        "BTCUSD_PERP-liquidationSnapshot-2023-06-25.csv",
        "time,side,order_type,time_in_force,original_quantity,price,average_price,order_status,"
        "last_fill_quantity,accumulated_fill_quantity\n"
        + row
        + row
        + "1687656472000,SELL,LIMIT,IOC,2,30700,30650,FILLED,2,2\n"
        + "1687656473000,SELL,LIMIT,IOC,2,30700,0,EXPIRED,0,0\n"
        + "1687656474000,HOLD,LIMIT,IOC,2,30700,30650,FILLED,2,2\n",
    )
    evs, report = events_of(p)
    assert [(e.side, e.price, e.qty, e.raw_side) for e in evs] == [
        (SHORT, 30741.3, 7.0, "BUY"),
        (LONG, 30700.0, 2.0, "SELL"),
    ]
    assert report.skipped == {
        "duplicate row (Binance writes each liquidation twice)": 1,
        "liquidation order with nothing filled": 1,
    }
    assert (
        report.bad == 1
        and report.bad_rows[0].line == 6
        and report.bad_rows[0].path.endswith("!BTCUSD_PERP-liquidationSnapshot-2023-06-25.csv")
    )


def test_unknown_binance_name_is_unreadable(tmp_path):
    p = tmp_path / "notes.csv"
    p.write_text("a,b\n1,2\n")
    with pytest.raises(UnreadableFile):
        detect(p)
    with pytest.raises(UnreadableFile):
        events_of(p, get_importer("binance"))


# -- Bybit ------------------------------------------------------------------------------------------

BYBIT_ROWS = [  # newest first, as older Bybit trade files are; two trades share a timestamp
    "1585267197.3539,BTCUSDT,Sell,0.857,6733.5,MinusTick,b7026545-8675-54e6-9935-6ed6b9d9993f,577060950000.0,0.857,5770.6095",
    "1585267196.1,BTCUSDT,Buy,0.100,6734.0,PlusTick,id-3,0,0.1,673.4",
    "1585267196.1,BTCUSDT,Buy,0.200,6734.0,ZeroPlusTick,id-2,0,0.2,1346.8",
    "1585267195.000123,BTCUSDT,Sell,0.300,6733.0,MinusTick,id-1,0,0.3,2019.9",
]


def test_bybit_trades_newest_first_are_reversed_exactly(tmp_path):
    p = tmp_path / "BTCUSDT2020-03-26.csv.gz"
    header = (
        "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional\n"
    )
    with gzip.open(p, "wt") as f:
        f.write(header + "\n".join(BYBIT_ROWS) + "\nbad,BTCUSDT,Buy,1,1,x,y,0,0,0\n")
    imp = detect(p)
    assert imp.name == "bybit-trades"
    cache = cached(p, imp, tmp_path / "cache")
    evs = list(iter_cache(cache))
    assert [e.trade_id for e in evs] == ["id-1", "id-2", "id-3", "b7026545-8675-54e6-9935-6ed6b9d9993f"]
    assert evs[0].ts == 1585267195_000123000 and evs[-1].ts == decimal_seconds_to_ns("1585267197.3539")
    assert (evs[-1].side, evs[-1].qty, evs[-1].price) == ("sell", 0.857, 6733.5)
    report = import_report(cache)
    assert report.bad == 1 and report.bad_rows[0].line == 6


def test_bybit_trades_with_rpi_column(tmp_path):
    p = tmp_path / "ATOMUSDT2025-09-02.csv"
    p.write_text(
        "timestamp,symbol,side,size,price,tickDirection,trdMatchID,grossValue,homeNotional,foreignNotional,RPI\n"
        "1756771201.5983,ATOMUSDT,Buy,0.1,4.393,PlusTick,5e580a5e-b412-5c7b-bb94-edef31ee0d0c,4.393e+07,0.1,0.4393,0\n"
    )
    (t,), report = events_of(p)
    assert (t.symbol, t.side, t.price, t.qty) == ("ATOMUSDT", "buy", 4.393, 0.1) and report.bad == 0


# -- raw captures, OHLCV, containers -------------------------------------------------------------


def test_raw_capture_binance_extra_streams_and_bad_lines(tmp_path):
    lines = [
        '1584059030000000000 {"stream":"btcusdt@forceOrder","data":{"e":"forceOrder","E":1584059031426,'
        '"o":{"s":"BTCUSDT","S":"BUY","o":"LIMIT","f":"IOC","q":"0.014","p":"4793.91","ap":"4706.04","X":"FILLED",'
        '"l":"0.015","z":"0.014","T":1584059031421}}}',
        '1584059030100000000 {"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1584059031500,'
        '"s":"BTCUSDT","p":"4800.1","i":"4801.0","P":"4799","r":"0.0001","T":1584086400000}}',
        '1584059030200000000 {"stream":"btcusdt@trade","data":{"e":"trade","E":1,"T":1584059031600,'
        '"s":"BTCUSDT","t":7,"p":"4800","q":"1","X":"INSURANCE_FUND","m":false}}',
        '1584059030300000000 {"stream":"btcusdt@kline_1m","data":{"e":"kline"}}',
        "1584059030400000000 {not json",
        '1584059030500000000 {"topic":"allLiquidation.BTCUSDT","type":"snapshot","ts":1740480207578,'
        '"data":[{"T":1740480207110,"s":"BTCUSDT","S":"Buy","v":"0.5","p":"95000"}]}',
    ]
    p = tmp_path / "btcusdt_20200313.gz"
    with gzip.open(p, "wt") as f:
        f.write("\n".join(lines) + "\n")
    evs, report = events_of(p)
    assert [type(e).__name__ for e in evs] == ["Liquidation", "Ticker", "Liquidation"]
    liq, mark, bybit_liq = evs
    assert (liq.side, liq.recv_ts) == (SHORT, 1584059030000000000)
    assert (mark.mark, mark.index, mark.funding_rate, mark.next_funding_ts) == (
        4800.1,
        4801.0,
        0.0001,
        1584086400000 * MS,
    )
    assert (bybit_liq.side, bybit_liq.qty, bybit_liq.recv_ts) == (
        LONG,
        0.5,
        1584059030500000000,
    )  # Bybit Buy: a long
    assert report.skipped == {"non-market trade (INSURANCE_FUND)": 1, "unsupported Binance event 'kline'": 1}
    assert report.bad == 1 and report.bad_rows[0].line == 5


def test_truncated_gzip_is_a_bad_row_not_a_crash(tmp_path):
    full = tmp_path / "full.gz"
    with gzip.open(full, "wt") as f:
        for i in range(2000):
            f.write(
                f'{1723161255030314667 + i} {{"stream":"x@bookTicker","data":{{"e":"bookTicker","u":{i},'
                f'"s":"BTCUSDT","b":"1.0","B":"1","a":"1.1","A":"1","T":{1723161256000 + i},"E":1}}}}\n'
            )
    cut = tmp_path / "btcusdt_cut.gz"
    cut.write_bytes(full.read_bytes()[:4000])
    evs, report = events_of(cut, get_importer("raw"))
    assert 0 < len(evs) < 2000
    assert report.bad >= 1 and "unreadable compressed data" in report.bad_rows[-1].reason


def test_ohlcv_csv_infers_the_interval_and_stamps_bar_close(tmp_path):
    p = tmp_path / "AAPL.csv"
    p.write_text(
        "Date,Open,High,Low,Close,Volume\n2024-01-05,181.99,182.76,180.17,181.18,62303300\n"
        "2024-01-08,182.09,185.6,181.5,185.56,59144500\n2024-01-09,183.92,185.15,182.73,185.14,42841800\n"
        "2024-01-10,184.35,186.4,183.92,186.19,46792900\n2024-01-11,186.54,187.05,185.0,183.0,49128400\n"
        "2024-01-12,186.06,186.74,185.19,185.92,40444700\n"
    )
    evs, report = events_of(p)
    assert [e.interval_s for e in evs] == [86_400] * 5  # the weekend gap does not fool the inference
    assert evs[0].symbol == "AAPL" and evs[0].ts == epoch_to_ns(1704499200)  # 2024-01-06 00:00 UTC, the close
    assert report.bad == 1 and report.bad_rows[0].line == 6  # low 185.0 above close 183.0
    fx = tmp_path / "eurusd_m1.csv"
    fx.write_text("timestamp,open,high,low,close\n1704067200000,1.1037,1.1040,1.1036,1.1039\n")
    (bar,), _ = events_of(fx, get_importer("ohlcv", symbol="EURUSD", interval="1m"))
    assert (bar.symbol, bar.interval_s, bar.ts, bar.volume) == ("EURUSD", 60, 1704067260000 * MS, 0.0)


# -- the columnar cache and the feed ---------------------------------------------------------------


def test_cache_is_reused_and_rebuilt_when_the_file_changes(tmp_path):
    p = tmp_path / "BTCUSDT-aggTrades-2023-05-01.csv"
    p.write_text(AGG_ROW)
    imp = detect(p)
    c1 = cached(p, imp, tmp_path / "cache")
    stamp = (c1 / "meta.json").stat().st_mtime_ns
    assert cached(p, imp, tmp_path / "cache") == c1 and (c1 / "meta.json").stat().st_mtime_ns == stamp
    p.write_text(AGG_ROW + "1715206949,29222.9,0.010,3643221429,3643221429,1682899200102,true\n")
    c2 = cached(p, imp, tmp_path / "cache")
    assert c2 != c1 and len(list(iter_cache(c2))) == 2


def _trades(keys, sym="BTCUSDT"):
    return [Trade(k, sym, "buy", 100.0 + i, 1.0, str(i)) for i, k in enumerate(keys)]


def test_cache_merges_parts_that_overlap_in_time(tmp_path):
    # Two interleaved id ranges, as in some monthly Binance files: parts overlap and must be merged.
    keys = [10, 30, 50, 70, 20, 40, 60, 80, 90, 5]
    evs = _trades(keys)
    out = build_cache(iter(evs), tmp_path / "c", ImportReport("x"), {}, part_events=4)
    got = list(iter_cache(out))
    assert [e.ts for e in got] == sorted(keys)
    assert [e.ts for e in iter_cache(out, start_key=20, end_key=70)] == [20, 30, 40, 50, 60]
    cols = load_columns(out, "Trade")
    assert cols["ts"].tolist() == sorted(keys) and cols["price"].tolist() == [e.price for e in got]


def test_load_columns_matches_the_events(tmp_path):
    evs = [
        BookSnapshot(1, "A", [(10.0, 1.0), (9.0, 2.0)], [(11.0, 3.0)], 7, 2),
        Ticker(2, "A", mark=10.5, funding_rate=None, next_funding_ts=None),
        BookDelta(3, "B", [], [(11.0, 0.0), (12.0, 1.0)], 8, 4),
        BookSnapshot(5, "B", [(1.0, 1.0)], [], 9, 0),
    ]
    out = build_cache(iter(evs), tmp_path / "c", ImportReport("x"), {}, part_events=2)
    assert list(iter_cache(out)) == evs
    snaps = load_columns(out, "BookSnapshot")
    assert snaps["bids.n"].tolist() == [2, 1] and snaps["bids.0"].tolist() == [10.0, 9.0, 1.0]
    assert snaps["asks.n"].tolist() == [1, 0] and snaps["key"].tolist() == [2, 5]
    assert [snaps["symbol.values"][c] for c in snaps["symbol"]] == ["A", "B"]
    tick = load_columns(out, "Ticker")
    assert np.isnan(tick["funding_rate"][0]) and tick["next_funding_ts"][0] == INT_NONE
    assert load_columns(out, "Trade")["ts"].tolist() == []


async def test_imported_feed_merges_files_filters_and_drives_the_engine(tmp_path):
    a = tmp_path / "BTCUSDT-aggTrades-2023-05-01.csv"
    a.write_text("1,100,1,1,1,1682899200000,false\n2,101,1,2,2,1682899202000,true\n")
    b = tmp_path / "ETHUSDT-aggTrades-2023-05-01.csv"
    b.write_text("1,10,1,1,1,1682899201000,false\n2,11,1,2,2,1682899203000,false\n")
    same_time = ImportedFeed([a, a], cache_dir=tmp_path / "cache")  # equal keys: file order, never compared
    assert [e.price for e in same_time.events()] == [100.0, 100.0, 101.0, 101.0]
    feed = ImportedFeed([tmp_path], cache_dir=tmp_path / "cache")
    assert [(e.symbol, e.price) for e in feed.events()] == [
        ("BTCUSDT", 100.0),
        ("ETHUSDT", 10.0),
        ("BTCUSDT", 101.0),
        ("ETHUSDT", 11.0),
    ]
    assert feed.symbols_available() == ["BTCUSDT", "ETHUSDT"]
    only_eth = ImportedFeed(
        [a, b], symbols=["ETHUSDT"], start_ns=1682899202000 * MS, cache_dir=tmp_path / "cache"
    )
    assert [e.price for e in only_eth.events()] == [11.0]
    cols = feed.columns("Trade")
    assert cols["price"].tolist() == [100.0, 10.0, 101.0, 11.0]
    assert [cols["symbol.values"][c] for c in cols["symbol"]] == ["BTCUSDT", "ETHUSDT", "BTCUSDT", "ETHUSDT"]
    s = Settings()
    rec = Recorder(s, s.engine.symbols)
    eng = Engine(s, strategies=[rec])
    await eng.run([feed])
    assert [e.price for e in rec.seen] == [100.0, 10.0, 101.0, 11.0]
    assert eng.clock.now() == 1682899203000 * MS


def test_feed_over_a_directory_lists_files_it_cannot_read(tmp_path):
    (tmp_path / "BTCUSDT-aggTrades-2023-05-01.csv").write_text(AGG_ROW)
    (tmp_path / "random.bin").write_bytes(b"\x00\x01")
    feed = ImportedFeed(tmp_path, cache_dir=tmp_path / "cache")
    assert [p.name for p in feed.unrecognized] == ["random.bin"]
    assert feed.reports[0].events == 1
    with pytest.raises(UnreadableFile):
        ImportedFeed(tmp_path / "random.bin")


def test_quote_and_depth_bands_round_trip(tmp_path):
    evs = [
        Quote(1, "X", 1.0, 2.0, 1.1, 3.0, 5, 0),
        DepthBands(2, "X", [(-1.0, 5.0, 500.0), (1.0, 4.0, 440.0)]),
    ]
    out = build_cache(iter(evs), tmp_path / "c", ImportReport("x"), {})
    assert list(iter_cache(out)) == evs


def test_binance_book_ticker_file(tmp_path):
    p = tmp_path / "BTCUSDT-bookTicker-2024-03-30.csv"
    p.write_text(
        "update_id,best_bid_price,best_bid_qty,best_ask_price,best_ask_qty,transaction_time,event_time\n"
        "4277462839434,69850.00,5.123,69850.10,0.500,1711756800003,1711756800007\n"
    )
    (q,), report = events_of(p)
    assert isinstance(q, Quote) and (q.bid, q.bid_qty, q.ask, q.ask_qty) == (69850.0, 5.123, 69850.1, 0.5)
    assert (q.ts, q.update_id, report.importer) == (1711756800003 * MS, 4277462839434, "binance:bookTicker")


def test_run_feed_specs_build_imported_feeds(tmp_path):
    from engine.config import ConfigError
    from engine.runtime import RunOptions, build_feeds

    (tmp_path / "BTCUSDT-aggTrades-2023-05-01.csv").write_text(AGG_ROW)
    (feed,) = build_feeds(Settings(), RunOptions(feed=f"binance:{tmp_path}"))
    assert isinstance(feed, ImportedFeed)
    assert [p.name for p, _ in feed.files] == ["BTCUSDT-aggTrades-2023-05-01.csv"]
    with pytest.raises(ConfigError, match="no such file"):
        build_feeds(Settings(), RunOptions(feed=f"tardis:{tmp_path / 'missing'}"))
    with pytest.raises(ConfigError, match="no importable files"):
        build_feeds(Settings(), RunOptions(feed=f"tardis:{tmp_path}"))  # aggTrades are not Tardis files

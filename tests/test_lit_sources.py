"""LIT's data sources: Bybit's account-ratio (pybit against the fake v5 server on 127.0.0.1) and
Binance `metrics` + `fundingRate` + klines files through `liqdesk backtest --strategy lit`, with the
source recorded and the document's expectations printed next to the measured values."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime

import pytest
from fake_bybit import FakeExchange, FakeRestServer
from lit_helpers import LitWorld
from pydantic import SecretStr
from rich.console import Console

from engine.backtest.runner import BacktestConfig, backtest_main
from engine.bybit_rest import BybitRest
from engine.config import BybitConfig, Settings

KEY, SECRET = "test-key-123", "test-secret-very-private"
MIN_MS = 60_000


async def test_bybit_account_ratio_feeds_lit_and_the_source_is_recorded():
    ex = FakeExchange(KEY, SECRET)
    srv = FakeRestServer(ex)
    srv.start()
    try:
        rest = BybitRest(BybitConfig(), srv.url, (SecretStr(KEY), SecretStr(SECRET)))
        rows = await rest.long_short_ratio("XRPUSDT", period="5min", limit=2)
    finally:
        srv.stop()
    w = LitWorld(["XRPUSDT"])
    w.market("XRPUSDT", funding_apr=20.0)
    for r in rows:  # as the Bybit feed emits them (engine/feeds/bybit.py polls account-ratio)
        w.engine.dispatch(type(r)(w.now, r.symbol, r.long_share, r.short_share, r.source))
    st = w.strategy.state["XRPUSDT"]
    assert (st.source, round(st.ratio, 4)) == ("bybit", round(0.61 / 0.39, 4))
    w.evaluate()
    assert w.log_has("XRPUSDT ratio 1.56 below 2")  # 61/39: not crowded enough


def write_binance_day(d, sym: str = "XRPUSDT") -> None:
    """One synthetic-by-hand day in data.binance.vision's formats: longs crowd (3x global accounts)
    from 02:00 to 14:00 with positive funding while the price slides 2%, then normalize."""
    t0 = int(datetime(2024, 1, 1, tzinfo=UTC).timestamp() * 1000)
    klines = []
    for i in range(24 * 60):
        t = t0 + i * MIN_MS
        frac = min(max((i - 180) / 600, 0.0), 1.0)  # 03:00 -> 13:00: 2.000 -> 1.960
        o = c = round(2.0 - 0.04 * frac, 4)
        klines.append(f"{t},{o},{o + 0.001},{c - 0.001},{c},1000,{t + MIN_MS - 1},2000,10,500,1000,0")
    (d / f"{sym}-1m-2024-01-01.csv").write_text("\n".join(klines) + "\n")
    rows = ["create_time,symbol,sum_open_interest,sum_open_interest_value,count_toptrader_long_short_ratio,"
            "sum_toptrader_long_short_ratio,count_long_short_ratio,sum_taker_long_short_vol_ratio"]
    for i in range(24 * 12):
        ts = datetime.fromtimestamp((t0 + i * 5 * MIN_MS) / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")
        crowded = 24 <= i < 168
        rows.append(f"{ts},{sym},1000000,2000000,1.1,0.9,{3.0 if crowded else 1.2},1.0")
    (d / f"{sym}-metrics-2024-01-01.csv").write_text("\n".join(rows) + "\n")
    fr = ["calc_time,funding_interval_hours,last_funding_rate"]
    for k in range(4):
        fr.append(f"{t0 + k * 8 * 3600 * 1000},8,0.00030000")
    (d / f"{sym}-fundingRate-2024-01.csv").write_text("\n".join(fr) + "\n")


def test_backtest_on_binance_metrics_funding_and_klines(tmp_path):
    write_binance_day(tmp_path)
    settings = Settings(engine={"symbols": ["XRPUSDT"], "log_file": ""})
    out = io.StringIO()
    cfg = BacktestConfig(strategy="lit", feed=f"binance:{tmp_path}")
    rc = backtest_main(settings, cfg, str(tmp_path / "s.json"), None, Console(file=out, width=140))
    assert rc == 0
    s = json.loads((tmp_path / "s.json").read_text())
    assert s["closed_trades"] >= 1
    eng = s["engine"]
    assert eng["per_symbol"]["XRPUSDT"]["funding_usd"] > 0  # the short held over 08:00 was paid
    assert s["net_pnl"] > 0
    exp = s["expectations"]
    assert exp["win_rate_pct"]["expected"] == [55.0, 60.0] and exp["win_rate_pct"]["measured"] == 100.0
    assert exp["capital_usd"] == pytest.approx(30.3)
    text = out.getvalue()
    assert "expectations vs measured" in text and "55 - 60" in text and "1.2 - 1.5" in text and "10 - 15" in text

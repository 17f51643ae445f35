"""Fast-forward gives the same fills and PnL as the tick-by-tick path, while skipping most events."""

from __future__ import annotations

from engine.backtest.runner import BacktestConfig, run_backtest
from engine.config import Settings


def run(fast_forward: bool):
    cfg = BacktestConfig(
        "cascade",
        feed="synthetic",
        seed=9,
        start="2025-03-01",
        duration_s=3 * 3600.0,
        fast_forward=fast_forward,
    )
    return run_backtest(Settings(), cfg, progress=False)


def test_fast_forward_gives_the_same_fills_and_pnl_as_the_tick_path():
    tick, ff = run(False), run(True)
    assert len(tick.fills) >= 4  # the window holds cascades that were traded
    key = [(f.ts, f.order_id, f.side, f.price, f.qty, f.fee, f.liquidity, f.queue_ahead) for f in tick.fills]
    assert key == [
        (f.ts, f.order_id, f.side, f.price, f.qty, f.fee, f.liquidity, f.queue_ahead) for f in ff.fills
    ]
    assert [t.to_dict() for t in tick.trades] == [t.to_dict() for t in ff.trades]
    assert ff.summary["net_pnl"] == tick.summary["net_pnl"]
    assert ff.equity == tick.equity and ff.equity_ts == tick.equity_ts
    assert tick.skipped == 0 and ff.skipped > tick.events // 2  # most events never reach the engine
    assert ff.events == tick.events

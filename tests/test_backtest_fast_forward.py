"""Fast-forward gives the same fills, trades, PnL and equity curve as the tick-by-tick path, while most
events are never generated (jump mode on the synthetic market, engine/backtest/fastforward.py)."""

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
    assert tick.skipped == 0 and tick.thinned_chunks is None
    # jump mode: most (symbol, 10-min chunk)s were reduced to their liquidations, so most events were
    # never generated, and of those generated in full chunks many were held rather than dispatched
    thinned, full = ff.thinned_chunks
    assert thinned > full > 0
    assert ff.events < tick.events // 3 and ff.skipped > 0
    assert ff.summary["fast_forward"] == {
        "enabled": True, "events_skipped": ff.skipped, "mode": "jump", "chunks_thinned": thinned, "chunks_full": full
    }

"""OrderBook: snapshots replace, deltas set or delete, unknown deletes are ignored."""

from engine.book import OrderBook


def test_snapshot_then_deltas():
    b = OrderBook("BTCUSDT")
    b.apply_snapshot([(100.0, 1.0), (99.5, 2.0)], [(100.5, 3.0), (101.0, 4.0)], ts=1, update_id=10)
    assert (b.best_bid, b.best_ask, b.mid, b.spread) == (100.0, 100.5, 100.25, 0.5)
    assert b.size_at("buy", 99.5) == 2.0 and b.size_at("sell", 101.0) == 4.0
    b.apply_delta([(100.0, 0.0), (99.0, 5.0)], [(100.5, 1.5), (102.0, 0.0)], ts=2, update_id=11)
    assert b.best_bid == 99.5 and b.best_ask == 100.5
    assert b.levels("bid") == [(99.5, 2.0), (99.0, 5.0)]
    assert b.levels("ask", 1) == [(100.5, 1.5)]
    assert len(b) == 4 and b.update_id == 11
    # a new snapshot replaces everything, including levels the deltas added
    b.apply_snapshot([(98.0, 1.0)], [(98.5, 1.0)], ts=3)
    assert b.levels("bid") == [(98.0, 1.0)] and b.best_ask == 98.5 and b.size_at("buy", 99.0) == 0.0


def test_snapshot_with_empty_touch_and_empty_book():
    b = OrderBook("X")
    assert b.best_bid is None and b.mid is None and b.depth_within("bid", 10) == 0.0
    b.apply_snapshot([(10.0, 0.0), (9.0, 1.0)], [], ts=1)
    assert b.best_bid == 9.0 and b.best_ask is None and b.spread is None


def test_depth_within_bps_of_mid():
    b = OrderBook("X")
    b.apply_snapshot([(100.0, 1.0), (99.95, 2.0), (99.0, 9.0)], [(100.1, 1.0), (101.0, 9.0)], ts=1)
    mid = 100.05
    assert b.mid == mid
    # 10 bps of 100.05 = 0.10005: bids >= 99.94995 and asks <= 100.15005
    assert abs(b.depth_within("bid", 10) - (100.0 + 2 * 99.95)) < 1e-9
    assert abs(b.depth_within("ask", 10) - 100.1) < 1e-9


def test_incremental_best_prices_match_a_full_rescan():
    import random

    rng = random.Random(7)
    b = OrderBook("X")
    b.apply_snapshot([(100.0 - i, 1.0) for i in range(20)], [(101.0 + i, 1.0) for i in range(20)])
    for _ in range(5000):
        side = [(round(rng.uniform(80, 100.5) * 2) / 2, rng.choice([0.0, 0.0, 1.0, 2.0]))]
        other = [(round(rng.uniform(100.5, 121) * 2) / 2, rng.choice([0.0, 0.0, 1.0, 2.0]))]
        b.apply_delta(side, other)
        assert b.best_bid == (max(b.bids) if b.bids else None)
        assert b.best_ask == (min(b.asks) if b.asks else None)

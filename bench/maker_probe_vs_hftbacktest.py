"""maker-probe on the real BTCUSDT capture: liqdesk's paper exchange against hftbacktest.

Both sides run the same quoting loop (one lot PostOnly at the best bid and ask, checked every
100 ms, a quote no longer at the touch cancelled and replaced after its cancel is confirmed),
the same constant order latency each way, the same queue model and the same fees, on the same
file. liqdesk runs through `liqdesk backtest --strategy maker-probe` (the installed command);
hftbacktest (PyPI `hftbacktest`, numba) runs in this interpreter, which therefore needs it:

    python -m venv /tmp/hbt && /tmp/hbt/bin/pip install hftbacktest
    /tmp/hbt/bin/python bench/maker_probe_vs_hftbacktest.py [--latency-ms 100] [--queue riskaverse] [--json PATH]

hftbacktest is deliberately not a dependency of liqdesk. It prints one JSON object: fills,
filled volume, volume-weighted fill price and final position of each, and their differences.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

SAMPLE = (
    Path(__file__).resolve().parents[2] / "shared/sample-data/hftbacktest_raw_ws/usdm/btcusdt_20240808.gz"
)
TICK, LOT = 0.1, 0.001  # BTCUSDT on Binance USD-M, as in engine/instruments.py
STEP_NS = 100_000_000


def run_liqdesk(path: Path, latency_ms: float, queue: str, fees: tuple[float, float], out: Path) -> dict:
    cmd = [
        "liqdesk",
        "backtest",
        "--strategy",
        "maker-probe",
        "--feed",
        f"binance:{path}",
        "--symbols",
        "BTCUSDT",
        "--latency",
        str(latency_ms),
        "--queue",
        queue,
        "--fees",
        f"{fees[0]},{fees[1]}",
        "--report",
        str(out),
    ]
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL)
    summary = json.loads((out / "summary.json").read_text())
    rows = np.genfromtxt(out / "fills.csv", delimiter=",", names=True, dtype=None, encoding="utf-8")
    rows = np.atleast_1d(rows)
    signed = np.where(rows["side"] == "buy", rows["qty"], -rows["qty"])
    return _stats(len(rows), rows["qty"], rows["price"], float(signed.sum()), summary["fill_rate"])


def run_hftbacktest(path: Path, latency_ms: float, queue: str, fees: tuple[float, float], work: Path) -> dict:
    from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
    from hftbacktest.data.utils import binancefutures

    npz = work / "btcusdt.npz"
    with contextlib.redirect_stdout(sys.stderr):  # the converter reports its corrections on stdout
        binancefutures.convert(str(path), output_filename=str(npz), combined_stream=True)
    lat = int(latency_ms * 1_000_000)
    asset = (
        BacktestAsset()
        .data([str(npz)])
        .linear_asset(1.0)
        .constant_order_latency(lat, lat)
        .tick_size(TICK)
        .lot_size(LOT)
        .trading_value_fee_model(fees[0] / 1e4, fees[1] / 1e4)
        .no_partial_fill_exchange()
    )
    model, _, n = queue.partition(":")
    asset = _queue(asset, model, float(n) if n else 2.0)
    hbt = HashMapMarketDepthBacktest([asset])
    fills = np.zeros((200_000, 3), np.float64)  # side, price, qty per fill
    count = _probe_loop(hbt, fills)
    hbt.close()
    f = fills[:count]
    return _stats(count, f[:, 2], f[:, 1], float((f[:, 0] * f[:, 2]).sum()), None)


def _queue(asset, model: str, n: float):
    return {
        "riskaverse": lambda: asset.risk_adverse_queue_model(),
        "power": lambda: asset.power_prob_queue_model(n),
        "power2": lambda: asset.power_prob_queue_model2(n),
        "power3": lambda: asset.power_prob_queue_model3(n),
        "log": lambda: asset.log_prob_queue_model(),
        "log2": lambda: asset.log_prob_queue_model2(),
    }[model]()


def _probe_loop(hbt, fills):
    from hftbacktest import BUY, GTX, LIMIT, SELL
    from hftbacktest.order import FILLED, NEW, NONE, PARTIALLY_FILLED
    from numba import njit

    @njit
    def loop(hbt, fills):
        n = 0
        oid = 0
        seen = set()
        while hbt.elapse(STEP_NS) == 0:
            depth = hbt.depth(0)
            bid, ask = depth.best_bid, depth.best_ask
            if not (np.isfinite(bid) and np.isfinite(ask)) or bid >= ask:
                continue
            have_bid = False
            have_ask = False
            orders = hbt.orders(0)
            values = orders.values()
            while values.has_next():
                o = values.get()
                if o.status == FILLED and o.order_id not in seen:
                    seen.add(o.order_id)
                    fills[n, 0] = 1.0 if o.side == BUY else -1.0
                    fills[n, 1] = o.exec_price
                    fills[n, 2] = o.exec_qty
                    n += 1
                working = (
                    o.status == NEW or o.status == PARTIALLY_FILLED or (o.status == NONE and o.req != NONE)
                )
                if not working:
                    continue
                at_touch = abs(o.price - (bid if o.side == BUY else ask)) < TICK / 2
                if o.side == BUY:
                    have_bid = True
                else:
                    have_ask = True
                if not at_touch and o.cancellable:
                    hbt.cancel(0, o.order_id, False)
            hbt.clear_inactive_orders(0)
            if not have_bid:
                oid += 1
                hbt.submit_buy_order(0, oid, bid, LOT, GTX, LIMIT, False)
            if not have_ask:
                oid += 1
                hbt.submit_sell_order(0, oid, ask, LOT, GTX, LIMIT, False)
        return n

    _ = SELL
    return loop(hbt, fills)


def _stats(n: int, qty, price, position: float, fill_rate: float | None) -> dict:
    qty = np.asarray(qty, dtype=np.float64)
    price = np.asarray(price, dtype=np.float64)
    vol = float(qty.sum())
    vwap = round(float((qty * price).sum() / vol), 2) if vol else None
    return {
        "fills": int(n),
        "volume": round(vol, 6),
        "vwap": vwap,
        "final_position": round(position, 6),
        "fill_rate": fill_rate,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--file", type=Path, default=SAMPLE)
    ap.add_argument("--latency-ms", type=float, default=100.0)
    ap.add_argument("--queue", default="riskaverse")
    ap.add_argument("--fees", default="2,5.5", help="MAKER,TAKER bps")
    ap.add_argument("--json", type=Path, help="also write the result here (the converter prints to stdout)")
    a = ap.parse_args()
    if not a.file.exists():
        print(f"no capture at {a.file}", file=sys.stderr)
        return 2
    fees = tuple(float(x) for x in a.fees.split(","))
    with tempfile.TemporaryDirectory() as tmp:
        ours = run_liqdesk(a.file, a.latency_ms, a.queue, fees, Path(tmp) / "liqdesk")
        ref = run_hftbacktest(a.file, a.latency_ms, a.queue, fees, Path(tmp))
    out = {
        "file": a.file.name,
        "latency_ms": a.latency_ms,
        "queue": a.queue,
        "liqdesk": ours,
        "hftbacktest": ref,
        "fill_count_ratio": round(ours["fills"] / ref["fills"], 4) if ref["fills"] else None,
        "vwap_diff": round(ours["vwap"] - ref["vwap"], 2) if ours["vwap"] and ref["vwap"] else None,
    }
    print(json.dumps(out, indent=2))
    if a.json:
        a.json.write_text(json.dumps(out, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())

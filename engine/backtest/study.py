"""Event studies (the LPI design document, section 9.1): markouts after every trigger.

`liqdesk study lpi` finds every rising edge of the exhaustion flag E_t (per symbol and
pressure side, at most one per `cooldown_s`); `liqdesk study cascade` every cascade the
engine's detector fires on. For each trigger the fade direction is +1 (buy) after sell
pressure / liquidated longs and −1 after buy pressure, and the markout at τ is

    10⁴ · dir · (m_{t+τ} − m_t) / m_t  bps,

m_t the mid at the trigger and m_{t+τ} the mid at the first alpha tick at or after t + τ
(no fill, no fees: the question is whether the signal has edge before costs).

Triggers are grouped by ground truth when the feed has it (the synthetic market's
episodes: a trigger within [start, end + 60 s] of an episode on the matching side
belongs to it, else to "none"), by the LPI state of the pressure side (FORCED or
INFORMED), and by the funding regime at the trigger. Each group reports count, mean,
median and 5th percentile per τ. The classifier's precision and recall count episodes:
an episode is flagged when its side was FORCED at some tick of that window.

`without_oi_test` repeats the ground-truth and state groups for the rising edges of E_t's
other four conditions (condition 3, the OI flush, left out), with their own refractory
period: E_t itself rarely fires in an informed episode, and these show what fading one
would have earned.

The synthetic feed runs one process per symbol (a symbol's stream does not depend on
the others), with the book interval brought down to the alpha tick if it is longer.
"""

from __future__ import annotations

import json
import math
import os
from collections import deque
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from ..config import ConfigError, Settings
from ..events import NS, BookDelta, BookSnapshot, Liquidation
from ..strategies.lpi import FORCED, INFORMED, SIDES, LpiSignal, synthetic_settings

TAUS_S = (0.5, 1.0, 2.0, 5.0, 30.0, 120.0)
EPISODE_GRACE_S = 60.0  # exhaustion comes after an episode's last liquidation
REGIMES = ("high_positive", "neutral", "negative")
KINDS = ("lpi", "cascade")


@dataclass(slots=True)
class Trigger:
    ts: int
    symbol: str
    pressure: str  # sell (fade = buy) | buy (fade = sell)
    state: str  # FORCED | INFORMED, of the pressure side at the trigger
    mid: float
    funding_rate: float | None
    lpi: float
    markouts_bps: list[float | None] = field(default_factory=lambda: [None] * len(TAUS_S))
    episode: str = "none"  # forced | informed | none (ground truth, when known)
    episode_id: int = 0
    oi_test: bool = True  # False: a candidate that meets E_t's other four conditions (see `summarize`)

    @property
    def direction(self) -> int:
        return 1 if self.pressure == "sell" else -1


@dataclass(slots=True)
class SymbolResult:
    symbol: str
    triggers: list[Trigger]
    forced_spans: dict[str, list[tuple[int, int]]]  # pressure side -> [(first, last)] FORCED tick times
    episodes: list[Any]
    ticks: int
    events: int
    first_ts: int
    last_ts: int


class SymbolStudy:
    """One symbol: the LPI signal, the engine's cascade detector, triggers and their pending markouts."""

    def __init__(self, symbol: str, settings: Settings, kind: str):
        from ..engine import Engine

        self.symbol = symbol
        self.kind = kind
        self.params = settings.lpi.for_symbol(symbol)
        self.signal = LpiSignal(symbol, self.params)
        self.market = Engine(settings).market(symbol)  # the engine's book, P95 threshold and cascade detector
        self.refractory_ns = int(self.params.cooldown_s * NS)
        self.last_trigger = {s: -(1 << 62) for s in SIDES}
        self.was_exhausted = {s: False for s in SIDES}
        self.last_candidate = {s: -(1 << 62) for s in SIDES}
        self.was_candidate = {s: False for s in SIDES}
        self.triggers: list[Trigger] = []
        self.candidates: list[Trigger] = []  # rising edges of E_t's other four conditions
        self.pending: list[deque[Trigger]] = [deque() for _ in TAUS_S]
        self.taus_ns = [int(t * NS) for t in TAUS_S]
        self.spans: dict[str, list[tuple[int, int]]] = {s: [] for s in SIDES}
        self.ticks = self.events = 0
        self.first_ts = self.last_ts = 0
        self.snapshot: BookSnapshot | None = None

    def on_event(self, ev: Any) -> None:
        self.events += 1
        if not self.first_ts:
            self.first_ts = ev.ts
        self.last_ts = ev.ts
        m = self.market
        t = type(ev)
        if t is BookSnapshot:  # the signal reads snapshots directly; the book only matters once deltas come
            self.snapshot = ev
        elif t is BookDelta:
            if self.snapshot is not None:
                s, self.snapshot = self.snapshot, None
                m.book.apply_snapshot(s.bids, s.asks, s.ts, s.update_id)
            m.book.apply_delta(ev.bids, ev.asks, ev.ts, ev.update_id)
        for tick, sell, buy in self.signal.on_event(ev, m.book, m.liq_threshold.value):
            self._on_tick(tick, (sell, buy))
        if t is Liquidation:
            self._on_liquidation(ev)

    def _on_liquidation(self, ev: Liquidation) -> None:
        m = self.market
        threshold = m.liq_threshold.value
        m.cascades.expire(ev.ts)
        fired = m.cascades.on_liquidation(ev, threshold)
        m.liq_threshold.add(ev.notional, ev.ts)
        if fired is None or self.kind != "cascade":
            return
        f = self.signal.features
        if not f.has_book:
            return
        pressure = "sell" if fired.dominant == "long" else "buy"
        judged = self.signal.last
        state = INFORMED
        lpi = 0.0
        if judged is not None:
            tick, sell, buy = judged
            state = (sell if pressure == "sell" else buy).state
            lpi = tick.pressure(pressure).lpi
        self._add(Trigger(ev.ts, self.symbol, pressure, state, (f.bid + f.ask) / 2.0, f.funding_rate, lpi))

    def _on_tick(self, tick, sides) -> None:
        self.ticks += 1
        ts, mid = tick.ts, tick.mid
        for k, q in enumerate(self.pending):
            while q and q[0].ts + self.taus_ns[k] <= ts:
                trig = q.popleft()
                trig.markouts_bps[k] = trig.direction * (mid / trig.mid - 1.0) * 1e4
        for sig in sides:
            spans = self.spans[sig.side]
            if sig.state == FORCED:
                if spans and spans[-1][1] == ts - self.signal.features.tick_ns:
                    spans[-1] = (spans[-1][0], ts)
                else:
                    spans.append((ts, ts))
            rising = sig.exhausted and not self.was_exhausted[sig.side]
            self.was_exhausted[sig.side] = sig.exhausted
            if (self.kind == "lpi" and rising and tick.warm
                    and ts - self.last_trigger[sig.side] >= self.refractory_ns):
                self.last_trigger[sig.side] = ts
                self._add(Trigger(ts, self.symbol, sig.side, sig.state, mid, tick.funding_rate,
                                  tick.pressure(sig.side).lpi))
            if self.kind == "lpi":  # E_t without its OI test (condition 3): what a fader without it would take
                c = sig.conditions
                cand = c[0] and c[1] and c[3] and c[4]
                rising = cand and not self.was_candidate[sig.side]
                self.was_candidate[sig.side] = cand
                if rising and tick.warm and ts - self.last_candidate[sig.side] >= self.refractory_ns:
                    self.last_candidate[sig.side] = ts
                    self._add(Trigger(ts, self.symbol, sig.side, sig.state, mid, tick.funding_rate,
                                      tick.pressure(sig.side).lpi, oi_test=False))

    def _add(self, trig: Trigger) -> None:
        (self.triggers if trig.oi_test else self.candidates).append(trig)
        for q in self.pending:
            q.append(trig)

    def result(self, episodes: list[Any]) -> SymbolResult:
        return SymbolResult(self.symbol, self.triggers + self.candidates, self.spans, episodes, self.ticks, self.events,
                            self.first_ts, self.last_ts)


# ------------------------------------------------------------------------------------------------
# running
# ------------------------------------------------------------------------------------------------
def _run_synthetic_symbol(args: tuple[Settings, int, float, str, str]) -> SymbolResult:
    settings, seed, duration_s, symbol, kind = args
    from ..feeds.synthetic import SyntheticMarket

    market = SyntheticMarket(settings, seed, [symbol])
    study = SymbolStudy(symbol, settings, kind)
    end = None
    for ev in market.events():
        if end is None:
            end = ev.ts + int(duration_s * NS)
        if ev.ts > end:
            break
        study.on_event(ev)
    return study.result([e for e in market.episodes if e.symbol == symbol])


def _run_feed(settings: Settings, feed: str, seed: int, duration_s: float, kind: str) -> list[SymbolResult]:
    from ..runtime import RunOptions, build_feeds

    feeds = build_feeds(settings, RunOptions(feed=feed, seed=seed))
    if any(getattr(f, "live", False) for f in feeds):
        raise ConfigError(f"config error: --feed = {feed!r}: a study needs recorded or synthetic data")
    from ..engine import Engine

    studies = {s: SymbolStudy(s, settings, kind) for s in settings.engine.symbols}
    end = None
    for ev in Engine.merge(feeds):
        if end is None:
            end = ev.ts + int(duration_s * NS)
        if ev.ts > end:
            break
        st = studies.get(getattr(ev, "symbol", ""))
        if st is not None:
            st.on_event(ev)
    return [st.result([]) for st in studies.values()]


def run_study(settings: Settings, kind: str, feed: str = "synthetic", seed: int | None = None,
              duration_s: float = 86_400.0, jobs: int | None = None) -> dict:
    """Run a study and return its summary (the JSON document)."""
    if kind not in KINDS:
        raise ConfigError(f"config error: study {kind!r}: choose one of {', '.join(KINDS)}")
    seed = settings.engine.seed if seed is None else seed
    settings, note = synthetic_settings(settings) if feed == "synthetic" else (settings, "")
    symbols = list(settings.engine.symbols)
    if feed == "synthetic":
        jobs = max(1, min(jobs or os.cpu_count() or 1, len(symbols)))
        work = [(settings, seed, duration_s, s, kind) for s in symbols]
        if jobs == 1:
            results = [_run_synthetic_symbol(w) for w in work]
        else:
            with ProcessPoolExecutor(max_workers=jobs) as pool:
                results = list(pool.map(_run_synthetic_symbol, work))
    else:
        results = _run_feed(settings, feed, seed, duration_s, kind)
    return summarize(kind, results, settings, feed, seed, duration_s, note)


# ------------------------------------------------------------------------------------------------
# summaries
# ------------------------------------------------------------------------------------------------
def markout_stats(values: list[float]) -> dict:
    if not values:
        return {"count": 0, "mean": None, "median": None, "p5": None}
    a = np.asarray(values, dtype=float)
    return {"count": int(a.size), "mean": round(float(a.mean()), 4), "median": round(float(np.median(a)), 4),
            "p5": round(float(np.percentile(a, 5)), 4)}


def group_stats(triggers: list[Trigger]) -> dict:
    """Per τ: count, mean, median and 5th percentile of the markouts (triggers too late for τ left out)."""
    rows = []
    for k, tau in enumerate(TAUS_S):
        vals = [t.markouts_bps[k] for t in triggers if t.markouts_bps[k] is not None]
        rows.append({"tau": tau, **markout_stats(vals)})  # type: ignore[arg-type]
    return {"triggers": len(triggers), "markouts": rows}


def funding_regime(rate: float | None, high_positive: float, negative: float) -> str:
    if rate is None or negative <= rate <= high_positive:
        return "neutral"
    return "high_positive" if rate > high_positive else "negative"


def _match_episodes(results: list[SymbolResult]) -> None:
    grace = int(EPISODE_GRACE_S * NS)
    for r in results:
        for t in r.triggers:
            want = "long" if t.pressure == "sell" else "short"
            for e in r.episodes:
                if e.direction == want and e.start_ts <= t.ts <= e.end_ts + grace:
                    t.episode, t.episode_id = e.kind, e.id
                    break


def classifier_scores(results: list[SymbolResult]) -> dict:
    """Episode-level precision and recall of FORCED against the ground truth."""
    grace = int(EPISODE_GRACE_S * NS)
    flagged = {"forced": 0, "informed": 0}
    total = {"forced": 0, "informed": 0}
    for r in results:
        for e in r.episodes:
            if e.start_ts < r.first_ts or e.end_ts + grace > r.last_ts:
                continue  # not fully inside the studied span
            side = "sell" if e.direction == "long" else "buy"
            total[e.kind] = total.get(e.kind, 0) + 1
            if any(a <= e.end_ts + grace and b >= e.start_ts for a, b in r.forced_spans[side]):
                flagged[e.kind] = flagged.get(e.kind, 0) + 1
    tp, fp = flagged.get("forced", 0), flagged.get("informed", 0)
    return {"episodes": total, "flagged_forced": flagged,
            "precision": round(tp / (tp + fp), 4) if tp + fp else None,
            "recall": round(tp / total["forced"], 4) if total.get("forced") else None}


def summarize(kind: str, results: list[SymbolResult], settings: Settings, feed: str, seed: int,
              duration_s: float, note: str = "") -> dict:
    has_truth = any(r.episodes for r in results)
    if has_truth:
        _match_episodes(results)
    every = sorted((t for r in results for t in r.triggers), key=lambda t: (t.ts, t.symbol, t.pressure))
    triggers = [t for t in every if t.oi_test]
    candidates = [t for t in every if not t.oi_test]
    p = settings.lpi
    out: dict[str, Any] = {
        "study": kind, "feed": feed, "seed": seed, "duration_s": duration_s,
        "symbols": [r.symbol for r in results], "taus_s": list(TAUS_S), "note": note,
        "ticks": sum(r.ticks for r in results), "events": sum(r.events for r in results),
        "triggers": len(triggers),
    }
    if has_truth:  # first: the groups the acceptance question is about
        out["by_episode"] = {k: group_stats([t for t in triggers if t.episode == k])
                             for k in ("forced", "informed", "none")}
    out["by_state"] = {s: group_stats([t for t in triggers if t.state == s]) for s in (FORCED, INFORMED)}
    out["by_funding"] = {g: group_stats([t for t in triggers
                                         if funding_regime(t.funding_rate, p.funding_high_positive,
                                                           p.funding_negative) == g]) for g in REGIMES}
    out["all"] = group_stats(triggers)
    if has_truth:
        out["by_state_and_episode"] = {
            s: {k: group_stats([t for t in triggers if t.state == s and t.episode == k])
                for k in ("forced", "informed", "none")} for s in (FORCED, INFORMED)}
        out["classifier"] = classifier_scores(results)
        out["episodes"] = {"forced": sum(e.kind == "forced" for r in results for e in r.episodes),
                           "informed": sum(e.kind == "informed" for r in results for e in r.episodes)}
    if kind == "lpi":  # the same rising edges without condition 3: what the OI test keeps us out of
        out["without_oi_test"] = {"triggers": len(candidates),
                                  "by_state": {s: group_stats([t for t in candidates if t.state == s])
                                               for s in (FORCED, INFORMED)}}
        if has_truth:
            out["without_oi_test"]["by_episode"] = {k: group_stats([t for t in candidates if t.episode == k])
                                                    for k in ("forced", "informed", "none")}
    out["trigger_list"] = [{**{k: v for k, v in asdict(t).items() if k != "markouts_bps"},
                            "markouts_bps": dict(zip([f"{x:g}s" for x in TAUS_S], t.markouts_bps))}
                           for t in every]
    return out


# ------------------------------------------------------------------------------------------------
# output
# ------------------------------------------------------------------------------------------------
def _fmt(v: float | None) -> str:
    return "-" if v is None else f"{v:+.1f}"


def render_table(summary: dict) -> Any:
    """A rich table: per group, rows of mean, median and 5th percentile in bps, one column per τ."""
    from rich.table import Table

    title = (f"{summary['study']} study: {summary['triggers']} triggers, {len(summary['symbols'])} symbols, "
             f"{summary['duration_s'] / 3600:g} h ({summary['feed']}, seed {summary['seed']}); "
             "fade markouts, bps")
    table = Table(title=title, title_justify="left")
    table.add_column("group", no_wrap=True)
    table.add_column("n", justify="right")
    table.add_column("", justify="left")
    for tau in summary["taus_s"]:
        table.add_column(f"{tau:g} s", justify="right")
    sections = [("episode", summary.get("by_episode")), ("state", summary.get("by_state")),
                ("funding", summary.get("by_funding")), ("", {"all": summary["all"]})]
    no_oi = summary.get("without_oi_test") or {}
    sections.append(("no OI test, episode" if "by_episode" in no_oi else "no OI test, state",
                     no_oi.get("by_episode", no_oi.get("by_state"))))
    for label, groups in sections:
        for name, g in (groups or {}).items():
            head = (f"{label} {name}".strip(), str(g["triggers"]))
            for i, stat in enumerate(("mean", "median", "p5")):
                table.add_row(*(head if i == 0 else ("", "")), stat, *(_fmt(r[stat]) for r in g["markouts"]),
                              end_section=i == 2)
    return table


def write_plot(summary: dict, path: str) -> None:
    """Mean (solid) and median (dashed) markout against τ, by ground truth (or state) and by funding."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2), sharey=True)
    panels = [("by_episode" if "by_episode" in summary else "by_state", axes[0]), ("by_funding", axes[1])]
    for key, ax in panels:
        for name, g in summary[key].items():
            pts = [(r["tau"], r["mean"], r["median"]) for r in g["markouts"] if r["count"]]
            if not pts:
                continue
            taus, means, medians = zip(*pts)
            line, = ax.plot(taus, means, marker="o", label=f"{name} (n={g['triggers']})")
            ax.plot(taus, medians, linestyle="--", color=line.get_color(), alpha=0.6)
        ax.axhline(0.0, color="grey", linewidth=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("tau (s)")
        ax.set_title(key.replace("_", " "))
        ax.legend(fontsize=8)
    axes[0].set_ylabel("fade markout (bps): mean solid, median dashed")
    fig.suptitle(f"{summary['study']} event study, {summary['feed']} seed {summary['seed']}")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _json_safe(o: Any) -> Any:
    if isinstance(o, float) and not math.isfinite(o):
        return None
    if isinstance(o, dict):
        return {k: _json_safe(v) for k, v in o.items()}
    if isinstance(o, list):
        return [_json_safe(v) for v in o]
    return o


def study_main(kind: str, settings: Settings, feed: str, seed: int | None, duration_s: float,
               json_path: str | None, plot_path: str | None, jobs: int | None, echo=print) -> int:
    from rich.console import Console

    if duration_s <= 0:
        raise ConfigError(f"config error: --duration = {duration_s:g}: must be > 0 simulated seconds")
    summary = run_study(settings, kind, feed, seed, duration_s, jobs)
    console = Console()
    if summary["note"]:
        console.print(summary["note"])
    console.print(render_table(summary))
    cls = summary.get("classifier")
    if cls:
        console.print(f"classifier (episodes): precision {cls['precision']}, recall {cls['recall']}, "
                      f"flagged {cls['flagged_forced']} of {cls['episodes']}")
    if json_path:
        Path(json_path).write_text(json.dumps(_json_safe(summary), indent=1) + "\n", encoding="utf-8")
        echo(f"wrote {json_path}")
    if plot_path:
        write_plot(summary, plot_path)
        echo(f"wrote {plot_path}")
    return 0

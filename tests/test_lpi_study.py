"""The event study (engine/backtest/study.py): triggers and markouts on a crafted market, grouping by
ground truth, state and funding, the classifier's precision and recall, and the outputs."""

from __future__ import annotations

import json

import pytest
from lpi_helpers import CraftedMarket

from engine.backtest.study import (
    TAUS_S,
    SymbolResult,
    SymbolStudy,
    Trigger,
    classifier_scores,
    funding_regime,
    render_table,
    study_main,
    summarize,
    write_plot,
)
from engine.config import Settings
from engine.events import NS, BookSnapshot
from engine.feeds.synthetic import Episode


def make_settings(cascade_seed_usd: float = 80_000.0, **lpi) -> Settings:
    data = Settings().model_dump()
    data["engine"] = {**data["engine"], "symbols": ["ETHUSDT"], "log_file": ""}
    data["cascade"]["seed_thresholds_usd"] = {"ETHUSDT": cascade_seed_usd}
    data["lpi"] = {**data["lpi"], "robust_min_samples": 10, **lpi}
    return Settings(**data)


def _mid_at(events, ts: int) -> float:
    book = [e for e in events if isinstance(e, BookSnapshot) and e.ts <= ts][-1]
    return (book.bids[0][0] + book.asks[0][0]) / 2


def _rebound_study() -> tuple[list, SymbolStudy]:
    """The LPI study over a crafted forced episode that exhausts and rebounds."""
    m = CraftedMarket()
    events = m.calm(300).take() + m.episode(2, "forced").recovery(15).drift(130, 0.05).take()
    study = SymbolStudy("ETHUSDT", make_settings(), "lpi")
    for ev in events:
        study.on_event(ev)
    return events, study


def test_lpi_triggers_and_markouts_on_a_crafted_rebound():
    events, study = _rebound_study()
    trig = [t for t in study.triggers if t.pressure == "sell"]
    assert len(trig) == 1  # one rising edge; the refractory period swallows the rest
    t = trig[0]
    assert t.state == "FORCED" and t.direction == 1
    for k, tau in enumerate(TAUS_S):  # buy-side markouts from the mid at the trigger
        # the mid observed at the first tick at or after t + tau: the last book before that tick
        expect = 1e4 * (_mid_at(events, t.ts + int(tau * NS)) / t.mid - 1)
        assert t.markouts_bps[k] == pytest.approx(expect, abs=1e-9)
    assert t.markouts_bps[3] == 0.0  # still stalled 5 s later
    assert t.markouts_bps[4] > 3.0  # the rebound
    assert t.funding_rate == pytest.approx(0.0001)


@pytest.mark.parametrize("seed_usd, expected", [(10_000.0, 1), (80_000.0, 0)])
def test_cascade_triggers_use_the_engines_detector(seed_usd, expected):
    m = CraftedMarket()
    events = m.calm(60).take() + m.episode(2, "forced").recovery(5).take()
    study = SymbolStudy("ETHUSDT", make_settings(cascade_seed_usd=seed_usd), "cascade")
    for ev in events:
        study.on_event(ev)
    # eight 20,000 USD long liquidations in 2 s: large against a 10,000 USD threshold, not 80,000
    assert len(study.triggers) == expected
    if expected:
        t = study.triggers[0]
        liqs = [e for e in events if type(e).__name__ == "Liquidation"]
        assert t.ts == liqs[1].ts  # the liquidation that makes the cascade
        assert t.pressure == "sell" and t.direction == 1


def _trigger(ts, pressure="sell", state="FORCED", mo30=1.0, funding=0.0001) -> Trigger:
    t = Trigger(ts, "ETHUSDT", pressure, state, 100.0, funding, 5.0)
    t.markouts_bps = [0.1, 0.2, 0.3, 0.4, mo30, None]
    return t


def _episode(i, start_s, end_s, kind, direction="long") -> Episode:
    return Episode(i, "ETHUSDT", start_s * NS, end_s * NS, kind, direction, 30.0, 0.7, 60.0, 10, 1e6, 100.0)


def test_summary_groups_ground_truth_state_and_funding():
    episodes = [_episode(1, 100, 110, "forced"), _episode(2, 1000, 1010, "informed"),
                _episode(3, 2000, 2010, "forced", "short"), _episode(4, 3000, 3010, "forced")]
    triggers = [
        _trigger(105 * NS, mo30=10.0),  # inside episode 1
        _trigger(160 * NS, mo30=20.0, funding=0.001),  # 50 s after it ends: still episode 1
        _trigger(1050 * NS, state="INFORMED", mo30=-6.0, funding=-0.0002),  # informed
        _trigger(2005 * NS, mo30=4.0),  # sell pressure in a short-squeeze episode: not its side
        _trigger(5000 * NS, state="INFORMED", mo30=2.0),  # no episode
    ]
    spans = {"sell": [(100 * NS, 130 * NS), (1001 * NS, 1002 * NS)], "buy": []}
    res = SymbolResult("ETHUSDT", triggers, spans, episodes, 1000, 2000, 0, 10_000 * NS)
    s = summarize("lpi", [res], make_settings(), "synthetic", 21, 10_000.0)
    assert list(s)[list(s).index("triggers") + 1] == "by_episode"  # ground truth comes first
    by30 = {k: g["markouts"][4] for k, g in s["by_episode"].items()}
    assert (by30["forced"]["count"], by30["forced"]["mean"], by30["forced"]["median"]) == (2, 15.0, 15.0)
    assert by30["informed"]["mean"] == -6.0 and by30["none"]["count"] == 2
    assert s["by_state"]["FORCED"]["triggers"] == 3 and s["by_state"]["INFORMED"]["triggers"] == 2
    assert s["by_funding"]["high_positive"]["triggers"] == 1
    assert s["by_funding"]["negative"]["triggers"] == 1 and s["by_funding"]["neutral"]["triggers"] == 3
    assert s["all"]["markouts"][5]["count"] == 0  # 120 s not reached by any
    row = s["all"]["markouts"][4]
    assert row["tau"] == 30.0 and row["p5"] == pytest.approx(-6.0 + 0.2 * (2.0 - -6.0))
    # classifier: episodes 1 and 2 flagged on their side; 3 (buy side) and 4 not
    c = s["classifier"]
    assert c["episodes"] == {"forced": 3, "informed": 1}
    assert c["flagged_forced"] == {"forced": 1, "informed": 1}
    assert (c["precision"], c["recall"]) == (0.5, pytest.approx(1 / 3, abs=1e-4))
    assert s["trigger_list"][0]["episode"] == "forced" and s["trigger_list"][0]["markouts_bps"]["30s"] == 10.0


def test_candidates_without_the_oi_test_are_grouped_apart():
    episodes = [_episode(1, 100, 110, "forced"), _episode(2, 1000, 1010, "informed")]
    cand = _trigger(1050 * NS, state="INFORMED", mo30=-8.0)
    cand.oi_test = False  # met LPI>hi, rollover, LDR easing and divergence, but not the OI flush
    res = SymbolResult("ETHUSDT", [_trigger(105 * NS, mo30=10.0), cand], {"sell": [], "buy": []}, episodes,
                       10, 20, 0, 10_000 * NS)
    s = summarize("lpi", [res], make_settings(), "synthetic", 21, 10_000.0)
    assert s["triggers"] == 1 and s["by_episode"]["informed"]["triggers"] == 0  # E_t groups: E_t only
    w = s["without_oi_test"]
    assert w["triggers"] == 1 and w["by_state"]["INFORMED"]["triggers"] == 1
    assert w["by_episode"]["informed"]["markouts"][4]["mean"] == -8.0 and w["by_episode"]["forced"]["triggers"] == 0
    assert [t["oi_test"] for t in s["trigger_list"]] == [True, False]


def test_study_records_candidates_apart_from_triggers():
    _, study = _rebound_study()
    assert all(t.oi_test for t in study.triggers) and study.candidates
    assert not any(t.oi_test for t in study.candidates)
    assert study.result([]).triggers == study.triggers + study.candidates


def test_funding_regimes():
    assert funding_regime(0.0005, 0.0003, 0.0) == "high_positive"
    assert funding_regime(0.0003, 0.0003, 0.0) == "neutral"
    assert funding_regime(-0.00001, 0.0003, 0.0) == "negative"
    assert funding_regime(None, 0.0003, 0.0) == "neutral"


def test_classifier_skips_episodes_outside_the_span():
    res = SymbolResult("ETHUSDT", [], {"sell": [], "buy": []}, [_episode(1, 10, 20, "forced")], 0, 0,
                       100 * NS, 200 * NS)
    assert classifier_scores([res])["episodes"] == {"forced": 0, "informed": 0}


def test_outputs_table_json_and_plot(tmp_path):
    res = SymbolResult("ETHUSDT", [_trigger(105 * NS, mo30=10.0)], {"sell": [], "buy": []},
                       [_episode(1, 100, 110, "forced")], 10, 20, 0, 1000 * NS)
    s = summarize("lpi", [res], make_settings(), "synthetic", 1, 1000.0)
    from rich.console import Console

    console = Console(record=True, width=140)
    console.print(render_table(s))
    text = console.export_text()
    assert "episode forced" in text and "+10.0" in text
    png = tmp_path / "m.png"
    write_plot(s, str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_study_command_end_to_end(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text('[engine]\nsymbols = ["ETHUSDT"]\nlog_file = ""\n[synthetic]\nactivity = 4.0\n'
                   "[lpi]\nrobust_min_samples = 10\n")
    from engine.config import load_config

    out = tmp_path / "s.json"
    lines: list[str] = []
    assert study_main("lpi", load_config(cfg), "synthetic", 3, 1800.0, str(out), None, 1, lines.append) == 0
    s = json.loads(out.read_text())
    assert s["study"] == "lpi" and s["symbols"] == ["ETHUSDT"] and s["duration_s"] == 1800.0
    assert "by_episode" in s and "classifier" in s and s["taus_s"] == list(TAUS_S)
    assert s["note"].startswith("synthetic book interval 1 s -> 0.25 s")
    assert s["ticks"] >= 1800 * 4 - 8
    assert lines == [f"wrote {out}"]

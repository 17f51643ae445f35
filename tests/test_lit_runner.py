"""`liqdesk lit --once` and `liqdesk lit` on the synthetic feed: one evaluation that acts and exits,
state kept in --db across runs, the INTERVAL override, and a bad INTERVAL as a config error."""

from __future__ import annotations

import re

import pytest

from engine.cli import main

CONFIG = """
[engine]
symbols = ["XRPUSDT", "DOGEUSDT"]
log_file = ""
[lit]
ratio_entry = 1.01      # so that the first evaluation acts on the calm synthetic market
ratio_exit = 1.0
funding_entry_apr = 0.0
once_warmup_s = 60.0
"""


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("INTERVAL", raising=False)
    (tmp_path / "lit.toml").write_text(CONFIG)
    return tmp_path


def test_once_evaluates_acts_prints_and_keeps_state_in_the_db(workdir, capsys):
    assert main(["lit", "--once", "--config", "lit.toml", "--db", "once.db"]) == 0
    out = capsys.readouterr().out
    assert "LIT --once (evaluated; ratio sources: synthetic)" in out
    assert "evaluation 1 at 01-06 00:01 UTC" in out
    placed = re.findall(r"order \S+ (\w+) entry (buy|sell) \S+: filled @", out)
    assert placed, out  # it acted: entries sent through risk and the paper exchange, and filled
    assert f"LIT positions open: {len(placed)}" in out
    assert main(["lit", "--once", "--config", "lit.toml", "--db", "once.db"]) == 0
    out2 = capsys.readouterr().out
    assert "evaluation 2 at" in out2  # the strategy's state came back from the store
    assert "-> held" in out2 or "exit" in out2


def test_continuous_runner_evaluates_every_interval_from_the_environment(workdir, capsys, monkeypatch):
    monkeypatch.setenv("INTERVAL", "600")
    assert main(["lit", "--config", "lit.toml", "--db", "c.db", "--speed", "max", "--duration", "3600"]) == 0
    out = capsys.readouterr().out
    assert "LIT: evaluating every 600 s (INTERVAL)" in out
    times = re.findall(r"^(\d\d:\d\d:\d\d) >> (?:no entry|LIT \w+ .*score)", out, re.M)
    assert sorted(set(times)) == ["00:01:00", "00:11:00", "00:21:00", "00:31:00", "00:41:00", "00:51:00"]


@pytest.mark.parametrize("bad", ["abc", "0"])
def test_bad_interval_is_a_one_line_config_error(workdir, capsys, monkeypatch, bad):
    monkeypatch.setenv("INTERVAL", bad)
    assert main(["lit", "--once", "--config", "lit.toml", "--db", "x.db"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("config error: INTERVAL =")

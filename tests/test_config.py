"""Config errors: a bad key, a bad type and an out-of-range value each give exit 2 and one line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from engine.cli import main
from engine.config import ConfigError, load_config

ROOT = Path(__file__).resolve().parents[1]

CASES = [
    ("[engine]\nbogus_key_zz = 3\n", ["bogus_key_zz", "unknown key", "allowed keys"]),
    ("[engine]\nseed = \"not-a-number\"\n", ["engine.seed", "not-a-number", "integer"]),
    ("[risk]\nmax_leverage = 50\n", ["risk.max_leverage", "50", "less than or equal to 10"]),
    ("[approval]\nmode = \"sometimes\"\n", ["approval.mode", "sometimes", "'auto' or 'manual'"]),
    ("[engine\nseed = 1\n", ["not valid TOML"]),
]


@pytest.mark.parametrize("text,needles", CASES)
def test_bad_config_exits_2_with_one_line(tmp_path, capsys, text, needles):
    cfg = tmp_path / "bad.toml"
    cfg.write_text(text)
    rc = main(["run", "--headless", "--config", str(cfg), "--duration", "1", "--speed", "max"])
    assert rc == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    for n in needles:
        assert n in err[0]


def test_bad_config_through_the_real_command(tmp_path):
    cfg = tmp_path / "bad.toml"
    cfg.write_text("[cascade]\nwindow_s = -5\n")
    p = subprocess.run([sys.executable, "-m", "engine.cli", "config", "check", "--config", str(cfg)],
                       capture_output=True, text=True, cwd=tmp_path)
    assert p.returncode == 2
    assert "Traceback" not in p.stderr
    lines = [ln for ln in (p.stdout + p.stderr).splitlines() if ln.strip()]
    assert lines == ["config error: cascade.window_s = -5: Input should be greater than 0"]


def test_example_config_is_valid_and_documents_every_key():
    settings = load_config(ROOT / "config.example.toml")
    text = (ROOT / "config.example.toml").read_text()
    for section, model in settings:
        assert f"[{section}]" in text, section
        for key in type(model).model_fields:
            documented = f"{key} =" in text or f"[{section}.{key}]" in text or f"[{section}.{key}." in text
            assert documented, f"{section}.{key} missing from config.example.toml"


def test_environment_overrides_the_file(tmp_path, monkeypatch):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[risk]\nmax_leverage = 8\n")
    assert load_config(cfg).risk.max_leverage == 8
    monkeypatch.setenv("LIQDESK_RISK__MAX_LEVERAGE", "6")
    assert load_config(cfg).risk.max_leverage == 6
    monkeypatch.setenv("LIQDESK_RISK__MAX_LEVERAGE", "60")
    with pytest.raises(ConfigError, match="risk.max_leverage"):
        load_config(cfg)


def test_missing_file_and_bad_cli_values(tmp_path, capsys):
    assert main(["config", "check", "--config", str(tmp_path / "nope.toml")]) == 2
    assert "file not found" in capsys.readouterr().err
    assert main(["run", "--headless", "--speed", "fast", "--duration", "1"]) == 2
    assert "--speed" in capsys.readouterr().err
    assert main(["run", "--headless", "--strategies", "nonesuch", "--duration", "1"]) == 2
    assert "unknown strategy 'nonesuch'" in capsys.readouterr().err
    assert main(["run", "--headless", "--mode", "live", "--duration", "1"]) == 2
    assert "--i-understand-live-trading" in capsys.readouterr().err

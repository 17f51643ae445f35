"""Parameter-stability sweeps: one backtest per cell of a grid of settings, on a process pool.

A grid is a list of `section.field=v1,v2,...` assignments over the configuration (for example
`cascade.tp_bps=20,30,40` or `paper.latency_ms=10,100`); the cells are their Cartesian product,
in the order given. Each cell is a full `run_backtest` with the cell's settings (validated like a
config file: a bad name or value is a one-line ConfigError before anything runs).

Selection and deflation: the best cell is the one with the highest per-period (daily) Sharpe.
Its DSR (Bailey & López de Prado) takes N = the number of cells with a Sharpe, and V = the
variance (ddof = 1) of those cells' per-period Sharpes, so trying more cells, or cells that
disagree more, raises the bar the best one has to clear. The heatmap shows the annualized
Sharpe of every cell (one or two grid parameters; for more, the first two, best over the rest).
"""

from __future__ import annotations

import itertools
import math
import os
import sys
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from pydantic import BaseModel, ValidationError

from ..config import ConfigError, Settings
from .metrics import daily_returns
from .runner import BacktestConfig, backtest_settings, backtest_window, build_feed, run_backtest
from .validation import deflated_sharpe_ratio, sharpe_moments

Grid = list[tuple[str, str, list[Any]]]  # (section, field, values)


def parse_grid(specs: list[str], settings: Settings) -> Grid:
    grid: Grid = []
    for spec in specs:
        key, sep, values = spec.partition("=")
        section, dot, name = key.strip().partition(".")
        if not sep or not dot or not values.strip():
            raise ConfigError(
                f"config error: --grid = {spec!r}: use section.field=v1,v2,... e.g. paper.latency_ms=10,100"
            )
        model = getattr(settings, section, None)
        if not isinstance(model, BaseModel) or name not in type(model).model_fields:
            raise ConfigError(f"config error: --grid = {spec!r}: no setting {key.strip()}")
        vals = [_value(v.strip()) for v in values.split(",") if v.strip()]
        for v in vals:
            _with(settings, [(section, name, v)])  # validate every value up front
        grid.append((section, name, vals))
    if not grid:
        raise ConfigError("config error: --grid: give at least one section.field=v1,v2,...")
    return grid


def _value(text: str) -> Any:
    for cast in (int, float):
        try:
            return cast(text)
        except ValueError:
            pass
    return text


def _with(settings: Settings, assignment: list[tuple[str, str, Any]]) -> Settings:
    update: dict[str, Any] = {}
    for section, name, value in assignment:
        model = update.get(section, getattr(settings, section))
        try:
            update[section] = type(model).model_validate(model.model_dump() | {name: value})
        except ValidationError as exc:
            msg = exc.errors()[0]["msg"]
            raise ConfigError(f"config error: --grid {section}.{name} = {value!r}: {msg}") from None
    return settings.model_copy(update=update)


def cells(grid: Grid) -> list[list[tuple[str, str, Any]]]:
    axes = [[(section, name, v) for v in values] for section, name, values in grid]
    return [list(c) for c in itertools.product(*axes)]


def _run_cell(args: tuple[Settings, BacktestConfig, list[tuple[str, str, Any]]]) -> dict[str, Any]:
    settings, cfg, assignment = args
    result = run_backtest(_with(settings, assignment), cfg, progress=False)
    s = result.summary
    _days, daily = daily_returns(result.equity_ts, result.equity, s["metrics"]["initial_equity"])
    out: dict[str, Any] = {
        "params": {f"{sec}.{name}": v for sec, name, v in assignment},
        "sharpe": s["sharpe"],
        "net_pnl": s["net_pnl"],
        "fills": s["fills"],
        "fill_rate": s["fill_rate"],
        "days": len(daily),
    }
    try:
        m = sharpe_moments(daily)
        out |= {"sharpe_per_period": m.sharpe, "skew": m.skew, "kurtosis": m.kurtosis, "n": m.n}
    except ValueError:
        out["sharpe_per_period"] = None
    return out


def run_sweep(
    settings: Settings, cfg: BacktestConfig, grid: Grid, jobs: int | None = None, progress: bool | None = None
) -> dict[str, Any]:
    """Every cell's result, the best cell and its DSR given the number of cells tried."""
    checked = backtest_settings(settings, cfg)  # option errors surface here, once, not in every worker
    start_ns, end_ns = backtest_window(checked, cfg)
    prepare = getattr(build_feed(checked, cfg, start_ns, end_ns), "prepare", None)
    if prepare is not None:  # import into the columnar cache once, before the workers read it
        prepare()
    todo = cells(grid)
    jobs = max(1, min(jobs or os.cpu_count() or 1, len(todo)))
    bar = _bar(len(todo), progress)
    results: list[dict[str, Any]] = []
    try:
        if jobs == 1:
            for c in todo:
                results.append(_run_cell((settings, cfg, c)))
                bar(len(results))
        else:
            with ProcessPoolExecutor(jobs) as pool:
                for r in pool.map(_run_cell, [(settings, cfg, c) for c in todo]):
                    results.append(r)
                    bar(len(results))
    finally:
        bar(None)
    return {
        "strategy": cfg.strategy,
        "feed": cfg.feed,
        "grid": {f"{s}.{n}": v for s, n, v in grid},
        "cells": results,
        "best": _best(results),
    }


def _best(results: list[dict[str, Any]]) -> dict[str, Any] | None:
    scored = [r for r in results if r.get("sharpe_per_period") is not None]
    if not scored:
        return None
    best = max(scored, key=lambda r: r["sharpe_per_period"])
    out: dict[str, Any] = {"params": best["params"], "sharpe": best["sharpe"], "trials": len(scored)}
    if len(scored) >= 2:
        srs = np.asarray([r["sharpe_per_period"] for r in scored])
        var = float(srs.var(ddof=1))
        try:
            dsr, sr0 = deflated_sharpe_ratio(
                best["sharpe_per_period"], best["n"], best["skew"], best["kurtosis"], len(scored), var
            )
            out |= {"dsr": dsr, "sr0_per_period": sr0, "trials_sharpe_variance": var}
        except (ValueError, ZeroDivisionError) as exc:
            out["dsr_error"] = str(exc)
    return out


def _bar(total: int, enabled: bool | None):
    if not (sys.stderr.isatty() if enabled is None else enabled):
        return lambda done: None
    from rich.console import Console
    from rich.progress import Progress

    p = Progress(console=Console(stderr=True), transient=True)
    task = p.add_task("sweep cells", total=total)
    p.start()

    def update(done: int | None) -> None:
        if done is None:
            p.stop()
        else:
            p.update(task, completed=done)

    return update


def plot_heatmap(sweep: dict[str, Any], path: str | Path) -> None:
    """Annualized Sharpe per cell over the first two grid parameters (best over any others)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    keys = list(sweep["grid"])
    xs = sweep["grid"][keys[0]]
    ys = sweep["grid"][keys[1]] if len(keys) > 1 else [None]
    z = np.full((len(ys), len(xs)), np.nan)
    for r in sweep["cells"]:
        if r["sharpe"] is None:
            continue
        i = ys.index(r["params"][keys[1]]) if len(keys) > 1 else 0
        j = xs.index(r["params"][keys[0]])
        z[i, j] = r["sharpe"] if math.isnan(z[i, j]) else max(z[i, j], r["sharpe"])
    fig, ax = plt.subplots(figsize=(1.2 * len(xs) + 3, 0.8 * len(ys) + 2.5))
    im = ax.imshow(z, cmap="RdYlGn", aspect="auto", origin="lower")
    ax.set_xticks(range(len(xs)), [str(x) for x in xs])
    ax.set_xlabel(keys[0])
    ax.set_yticks(range(len(ys)), [str(y) for y in ys] if len(keys) > 1 else [""])
    if len(keys) > 1:
        ax.set_ylabel(keys[1])
    for i in range(len(ys)):
        for j in range(len(xs)):
            ax.text(
                j, i, "n/a" if math.isnan(z[i, j]) else f"{z[i, j]:.2f}", ha="center", va="center", fontsize=8
            )
    best = sweep.get("best") or {}
    dsr = best.get("dsr")
    ax.set_title(
        f"{sweep['strategy']}: annualized Sharpe per cell"
        + (f"; best DSR {dsr:.3f} of {best['trials']} trials" if dsr is not None else "")
    )
    fig.colorbar(im, ax=ax)
    fig.tight_layout()
    fig.savefig(path, dpi=100, metadata={"Software": None})
    plt.close(fig)


def sweep_main(
    settings: Settings,
    cfg: BacktestConfig,
    grid_specs: list[str],
    jobs: int | None,
    json_path: str | None,
    heatmap: str | None,
    report_dir: str | None = None,
) -> int:
    """Run the sweep and print its table. `report_dir` gets sweep.json, heatmap.png and the best
    cell's full backtest report (write_report: summary.json, CSVs, equity and markout plots), re-run
    in this process with the best cell's settings (a run is deterministic, so it is that cell's run)."""
    from rich.console import Console
    from rich.table import Table

    from .bar_runner import BAR_STRATEGIES
    from .returns_report import _jsonable, _num
    from .runner import summary_json, summary_table, write_report

    if cfg.strategy in BAR_STRATEGIES:
        raise ConfigError(f"config error: --grid: sweeps run tick strategies; {cfg.strategy} runs on bars")
    grid = parse_grid(grid_specs, settings)
    result = run_sweep(settings, cfg, grid, jobs)
    document = summary_json(_jsonable(result))
    if json_path:
        Path(json_path).write_text(document, encoding="utf-8")
    if heatmap:
        plot_heatmap(result, heatmap)
    keys = list(result["grid"])
    t = Table(title=f"sweep {cfg.strategy} on {cfg.feed}: {len(result['cells'])} cells", header_style="bold")
    for k in [*keys, "Sharpe", "net PnL", "fills"]:
        t.add_column(k, justify="right")
    nan = math.nan
    for r in result["cells"]:
        sharpe = nan if r["sharpe"] is None else r["sharpe"]
        t.add_row(*(str(r["params"][k]) for k in keys), _num(sharpe), f"{r['net_pnl']:+.2f}", str(r["fills"]))
    console = Console()
    console.print(t)
    best = result["best"]
    if best is None:
        console.print("best cell: n/a (no cell has a Sharpe: the runs need at least three UTC days)")
    else:
        dsr = best.get("dsr")
        console.print(
            f"best cell {best['params']}: Sharpe {_num(best['sharpe'])}, DSR "
            f"{_num(nan if dsr is None else dsr, '.4f')} of {best['trials']} trials"
        )
    if report_dir:
        out = Path(report_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / "sweep.json").write_text(document, encoding="utf-8")
        plot_heatmap(result, out / "heatmap.png")
        if best is None:
            console.print(f"report: {out}/sweep.json and heatmap.png; no best cell, so no backtest report")
        else:
            assignment = [(*k.split(".", 1), v) for k, v in best["params"].items()]
            run = run_backtest(_with(settings, assignment), cfg, progress=False)
            write_report(run, out)
            console.print(summary_table(run.summary))
    return 0

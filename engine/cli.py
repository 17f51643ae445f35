"""The `liqdesk` command.

`liqdesk` alone opens the console on the embedded synthetic market in paper mode.
Any configuration problem prints one line and exits with code 2.
"""

from __future__ import annotations

import sys
from typing import Annotated

import typer

from .config import ConfigError, Settings, load_config
from .runtime import RunOptions, parse_speed, parse_strategies

app = typer.Typer(add_completion=False, no_args_is_help=False, pretty_exceptions_enable=False,
                  help="liqdesk: a terminal trading console for liquidity events on crypto perps.")
config_app = typer.Typer(help="Configuration commands.", pretty_exceptions_enable=False)
app.add_typer(config_app, name="config")
db_app = typer.Typer(help="Database (state store) commands.", pretty_exceptions_enable=False)
app.add_typer(db_app, name="db")
study_app = typer.Typer(help="Event studies: markouts after every signal trigger.",
                        pretty_exceptions_enable=False)
app.add_typer(study_app, name="study")

ConfigOpt = Annotated[str | None, typer.Option("--config", help="TOML config (default ./config.toml if present)")]
FeedOpt = Annotated[str, typer.Option("--feed", help="synthetic | bybit | replay:PATH")]
ModeOpt = Annotated[str, typer.Option("--mode", help="paper | demo | testnet | live")]
StrategiesOpt = Annotated[str | None, typer.Option("--strategies", help="comma-separated; default: config")]
SeedOpt = Annotated[int | None, typer.Option("--seed", help="random seed (default: config)")]
SpeedOpt = Annotated[str, typer.Option("--speed", help="1 = real time, N = N x, max = simulated clock")]
DurationOpt = Annotated[float | None, typer.Option("--duration", help="simulated seconds to run")]
DbOpt = Annotated[str, typer.Option("--db", help="SQLite state file")]
LiveOpt = Annotated[bool, typer.Option("--i-understand-live-trading", help="required for --mode live")]


def _options(feed: str, mode: str, strategies: str | None, seed: int | None, speed: str,
             duration: float | None, db: str, live: bool, summary_json: str | None = None) -> RunOptions:
    return RunOptions(feed=feed, mode=mode, strategies=parse_strategies(strategies), seed=seed,
                      speed=parse_speed(speed), duration_s=duration, db=db, summary_json=summary_json,
                      live_confirmed=live)


@app.callback(invoke_without_command=True)
def main_callback(ctx: typer.Context, config: ConfigOpt = None, feed: FeedOpt = "synthetic",
                  mode: ModeOpt = "paper", strategies: StrategiesOpt = None, seed: SeedOpt = None,
                  speed: SpeedOpt = "1", db: DbOpt = "liqdesk.db", live: LiveOpt = False) -> None:
    """With no command: open the console."""
    if ctx.invoked_subcommand is not None:
        return
    settings = load_config(config)
    opts = _options(feed, mode, strategies, seed, speed, None, db, live)
    from tui.app import run_console
    raise typer.Exit(run_console(settings, opts))


@app.command()
def run(
    headless: Annotated[bool, typer.Option("--headless", help="no console; lines to stdout and the log")] = False,
    config: ConfigOpt = None, feed: FeedOpt = "synthetic", mode: ModeOpt = "paper",
    strategies: StrategiesOpt = None, seed: SeedOpt = None, speed: SpeedOpt = "1",
    duration: DurationOpt = None, db: DbOpt = "liqdesk.db",
    summary_json: Annotated[str | None, typer.Option("--summary-json", help="write the run summary here")] = None,
    live: LiveOpt = False,
    api: Annotated[str | None, typer.Option("--api", help="serve the funding API on HOST:PORT (default address "
                                                          "127.0.0.1:8700; PORT or 'default' also work)")] = None,
) -> None:
    """Run the engine (the console unless --headless)."""
    settings = load_config(config)
    opts = _options(feed, mode, strategies, seed, speed, duration, db, live, summary_json)
    if api is not None:
        from .funding.api import check_bind
        check_bind(api, settings)  # a public bind without a token stops here, before anything starts
        opts.extra["api"] = api
    if duration is not None and duration <= 0:
        raise ConfigError(f"config error: --duration = {duration}: must be > 0 simulated seconds")
    if headless:
        from .headless import headless_main
        raise typer.Exit(headless_main(settings, opts))
    from tui.app import run_console
    raise typer.Exit(run_console(settings, opts))


@app.command()
def screenshots(out: Annotated[str, typer.Option("--out", help="directory for the SVG files")] = "screenshots",
                ) -> None:
    """Write SVG screenshots of the console on its scripted demo session (for the README)."""
    from tui.screenshots import write_screenshots
    for path in write_screenshots(out):
        typer.echo(str(path))


@config_app.command("check")
def config_check(config: ConfigOpt = None) -> None:
    """Validate a config file and print a one-line verdict."""
    settings: Settings = load_config(config)
    typer.echo(f"config ok: {len(settings.engine.symbols)} symbols, strategies "
               f"{','.join(settings.engine.strategies)}, approval {settings.approval.mode}")


@app.command()
def ctl(
    command: Annotated[str, typer.Argument(help="status | halt [REASON] | resume | cancel_all | flatten | "
                                                 "approve ID | reject ID | approve_all | pause NAME | "
                                                 "unblacklist SYMBOL")],
    arg: Annotated[str | None, typer.Argument(help="approval ID, strategy NAME, SYMBOL or halt REASON")] = None,
    db: DbOpt = "liqdesk.db", config: ConfigOpt = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the engine status as JSON")] = False,
) -> None:
    """Send a command to a running engine (its control socket: <db>.sock unless configured)."""
    from .control import run_ctl
    raise typer.Exit(run_ctl(load_config(config), db, command, arg, as_json, typer.echo))


@app.command()
def lit(
    once: Annotated[bool, typer.Option("--once", help="evaluate once, act, print what was done, exit")] = False,
    config: ConfigOpt = None, feed: FeedOpt = "synthetic", mode: ModeOpt = "paper", seed: SeedOpt = None,
    speed: SpeedOpt = "1", duration: DurationOpt = None, db: DbOpt = "liqdesk.db", live: LiveOpt = False,
) -> None:
    """The Liquidity Imbalance Tracker alone: every interval (INTERVAL env, s), or once with --once."""
    from .lit_runner import lit_main
    raise typer.Exit(lit_main(load_config(config), _options(feed, mode, "lit", seed, speed, duration, db, live),
                              once))


@app.command()
def history(
    db: DbOpt = "liqdesk.db",
    since: Annotated[str | None, typer.Option("--since", help="from this UTC date/time, e.g. 2025-01-06")] = None,
    csv_path: Annotated[str | None, typer.Option("--csv", help="also write trades and fills to this CSV")] = None,
) -> None:
    """List closed trades and fills from the store."""
    from .history import history as show_history
    raise typer.Exit(show_history(db, since, csv_path, typer.echo))


@db_app.command("check")
def db_check(db: DbOpt = "liqdesk.db") -> None:
    """Integrity check: SQLite's own, and every position equals the sum of its fills."""
    from .history import db_check as check
    raise typer.Exit(check(db, typer.echo))


@app.command()
def record(
    symbols: Annotated[str | None, typer.Option("--symbols", help="e.g. BTCUSDT,ETHUSDT (default: config)")] = None,
    out: Annotated[str, typer.Option("--out", help="directory for the hourly .gz capture files")] = "captures",
    config: ConfigOpt = None, mode: ModeOpt = "paper",
    duration: Annotated[float | None, typer.Option("--duration", help="seconds to record (default: until ^C)")] = None,
) -> None:
    """Record every raw public Bybit message as `<recv_ns> <json>` lines, gzip, rotated hourly."""
    from .feeds.recorder import record_main
    raise typer.Exit(record_main(load_config(config), symbols, out, mode, duration))


@app.command()
def inspect(path: Annotated[str, typer.Argument(help="a capture file or directory")]) -> None:
    """Print a capture's normalized events, one JSON object per line (bad lines go to stderr)."""
    from .feeds.replay import inspect_main
    raise typer.Exit(inspect_main(path))


@app.command()
def metrics(
    returns_csv: Annotated[str, typer.Argument(help="CSV: a header, a 'return' column, an optional 'date'")],
    periods: Annotated[int, typer.Option("--periods", help="periods per year for annualizing")] = 365,
    trials: Annotated[int | None, typer.Option("--trials", help="trials tried: also print the DSR")] = None,
    trials_sr_var: Annotated[float | None, typer.Option(
        "--trials-sr-var", help="variance of the trials' annualized Sharpes (default: null 1/(T-1))")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="print JSON instead of the table")] = False,
) -> None:
    """Metrics table, PSR against 0 and (with --trials) DSR for a CSV of period returns."""
    from .backtest.returns_report import run as run_metrics
    raise typer.Exit(run_metrics(returns_csv, periods, trials, trials_sr_var, as_json))


StudyFeedOpt = Annotated[str, typer.Option("--feed", help="synthetic | replay:PATH")]
StudyDurationOpt = Annotated[float, typer.Option("--duration", help="simulated seconds")]
JsonOpt = Annotated[str | None, typer.Option("--json", help="write the results here")]
PlotOpt = Annotated[str | None, typer.Option("--plot", help="write a PNG of markout against tau here")]
JobsOpt = Annotated[int | None, typer.Option("--jobs", help="processes for a synthetic feed (default: CPUs)")]


def _study(kind: str, config: str | None, feed: str, seed: int | None, duration: float, json_path: str | None,
           plot: str | None, jobs: int | None) -> None:
    from .backtest.study import study_main
    settings = load_config(config)
    raise typer.Exit(study_main(kind, settings, feed, seed, duration, json_path, plot, jobs, typer.echo))


@study_app.command("lpi")
def study_lpi(config: ConfigOpt = None, feed: StudyFeedOpt = "synthetic", seed: SeedOpt = None,
              duration: StudyDurationOpt = 86_400.0, json_path: JsonOpt = None, plot: PlotOpt = None,
              jobs: JobsOpt = None) -> None:
    """Markouts after every LPI exhaustion trigger (E_t), by state, ground truth and funding regime."""
    _study("lpi", config, feed, seed, duration, json_path, plot, jobs)


@study_app.command("cascade")
def study_cascade(config: ConfigOpt = None, feed: StudyFeedOpt = "synthetic", seed: SeedOpt = None,
                  duration: StudyDurationOpt = 86_400.0, json_path: JsonOpt = None, plot: PlotOpt = None,
                  jobs: JobsOpt = None) -> None:
    """Markouts after every liquidation cascade, by LPI state, ground truth and funding regime."""
    _study("cascade", config, feed, seed, duration, json_path, plot, jobs)


@study_app.command("lta")
def study_lta(config: ConfigOpt = None, seed: SeedOpt = None,
              duration: Annotated[float, typer.Option("--duration", help="synthetic seconds")] = 30 * 86_400.0,
              interval: Annotated[str, typer.Option("--interval", help="synthetic bar length")] = "1h",
              horizon: Annotated[int, typer.Option("--horizon", help="N of the next-N-bar return")] = 5,
              data: Annotated[str, typer.Option("--data", help="real sample data directory ('' = none)")] =
              "../shared/sample-data",
              real_intervals: Annotated[str, typer.Option("--real-intervals", help="bar seconds for real trades")] =
              "1,5",
              json_path: JsonOpt = None) -> None:
    """Information coefficient (Spearman) and t-statistics of LDPM/LDPS for next-bar and next-N-bar returns."""
    from .backtest.lta_study import lta_study_main
    raise typer.Exit(lta_study_main(load_config(config), seed, duration, interval, horizon, data or None,
                                    real_intervals, json_path, typer.echo))


@app.command()
def backtest(
    strategy: Annotated[str, typer.Option("--strategy", help="strategy name, e.g. cascade or maker-probe")],
    feed: Annotated[str, typer.Option("--feed", help="synthetic | replay:PATH | tardis:DIR | binance:DIR | "
                                                     "bybit:DIR")] = "synthetic",
    symbols: Annotated[str | None, typer.Option("--symbols", help="e.g. BTCUSDT,ETHUSDT (default: config)")] = None,
    start: Annotated[str | None, typer.Option("--from", help="UTC start date/time (synthetic: market start)")] = None,
    end: Annotated[str | None, typer.Option("--to", help="UTC end date/time")] = None,
    seed: SeedOpt = None, duration: DurationOpt = None,
    latency: Annotated[float | None, typer.Option("--latency", help="order latency each way, ms")] = None,
    queue: Annotated[str | None, typer.Option("--queue", help="riskaverse | power:N | power2:N | power3:N | "
                                                              "log | log2")] = None,
    fees: Annotated[str | None, typer.Option("--fees", help="MAKER,TAKER in bps (negative maker = rebate)")] = None,
    json_path: Annotated[str | None, typer.Option("--json", help="write the summary JSON here")] = None,
    report: Annotated[str | None, typer.Option("--report", help="directory for summary.json, CSVs and plots")] = None,
    fast_forward: Annotated[bool, typer.Option("--fast-forward", help="skip market data while nothing works "
                                                                      "(same fills and PnL)")] = False,
    interval: Annotated[str | None, typer.Option("--interval", help="bar strategies (lta): bar length, "
                                                                    "e.g. 1h")] = None,
    grid: Annotated[list[str] | None, typer.Option("--grid", help="section.field=v1,v2,...: run a sweep "
                                                                 "(as `liqdesk sweep`)")] = None,
    jobs: Annotated[int | None, typer.Option("--jobs", help="sweep worker processes (default: CPUs)")] = None,
    config: ConfigOpt = None,
) -> None:
    """Backtest one strategy: risk gate and paper exchange on the simulated clock."""
    from .backtest.runner import BacktestConfig, backtest_main
    cfg = BacktestConfig(strategy=strategy, feed=feed, symbols=parse_strategies(symbols), start=start, end=end,
                         seed=seed, duration_s=duration, latency_ms=latency, queue=queue, fees=fees,
                         fast_forward=fast_forward, interval=interval)
    if grid:  # a sweep: every cell's backtest, the heatmap and the best cell's report
        from .backtest.sweep import sweep_main
        raise typer.Exit(sweep_main(load_config(config), cfg, grid, jobs, json_path, None, report))
    raise typer.Exit(backtest_main(load_config(config), cfg, json_path, report))


@app.command()
def sweep(
    strategy: Annotated[str, typer.Option("--strategy", help="strategy name")],
    grid: Annotated[list[str], typer.Option("--grid", help="section.field=v1,v2,... (repeat for more axes)")],
    feed: Annotated[str, typer.Option("--feed", help="as for backtest")] = "synthetic",
    symbols: Annotated[str | None, typer.Option("--symbols", help="e.g. BTCUSDT,ETHUSDT")] = None,
    start: Annotated[str | None, typer.Option("--from", help="UTC start date/time")] = None,
    end: Annotated[str | None, typer.Option("--to", help="UTC end date/time")] = None,
    seed: SeedOpt = None, duration: DurationOpt = None,
    jobs: Annotated[int | None, typer.Option("--jobs", help="worker processes (default: CPUs)")] = None,
    json_path: Annotated[str | None, typer.Option("--json", help="write every cell and the best here")] = None,
    heatmap: Annotated[str | None, typer.Option("--heatmap", help="PNG of Sharpe per cell")] = None,
    report: Annotated[str | None, typer.Option("--report", help="directory for sweep.json, heatmap.png and the "
                                                                "best cell's backtest report")] = None,
    config: ConfigOpt = None,
) -> None:
    """Backtest every cell of a parameter grid on a process pool; DSR of the best cell."""
    from .backtest.runner import BacktestConfig
    from .backtest.sweep import sweep_main
    cfg = BacktestConfig(strategy=strategy, feed=feed, symbols=parse_strategies(symbols), start=start, end=end,
                         seed=seed, duration_s=duration)
    raise typer.Exit(sweep_main(load_config(config), cfg, grid, jobs, json_path, heatmap, report))


def main(argv: list[str] | None = None) -> int:
    try:
        app(args=argv, standalone_mode=True)
    except ConfigError as exc:
        print(str(exc), file=sys.stderr)
        return 2
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())


def entry() -> None:
    """Console-script entry point."""
    sys.exit(main())

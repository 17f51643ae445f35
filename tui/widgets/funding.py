"""Funding pane: the funding service's top opportunities and the funding_arb client's pairs.

Shown under Performance when the funding_arb strategy runs; redrawn at the table rate from
engine state (never per event), and only when its lines change.
"""

from __future__ import annotations

from typing import Any, ClassVar

from rich.text import Text

from engine.events import NS

from .lines import TextLines

TOP = 5


def funding_lines(engine: Any, top: int = TOP) -> list[tuple[str, str]]:
    """(text, style class) rows: a header, the best `top` opportunities, then the open pairs."""
    svc = getattr(engine, "funding", None)
    if svc is None:
        return [("funding service not started", "funding--dim")]
    st = engine.strategy("funding_arb")
    out = [(f"Opportunities ({len(svc.ranked)}, {svc.collections} collections)", "funding--head")]
    for o in svc.ranked[:top]:
        style = "funding--up" if o.expected_profit > 0 else "funding--dim"
        out.append((f"{o.symbol} long {o.long_dex} short {o.short_dex}", style))
        out.append((f"  {o.divergence_h * 100:.4f}%/h {o.divergence_h * 876000:.1f}% APR "
                    f"exp {o.expected_profit * 100:+.3f}%", style))
    if not svc.ranked:
        out.append(("no rates yet", "funding--dim"))
    pairs = st.open_pairs() if st is not None else []
    limit = f"/{st.cfg.max_positions}" if st is not None else ""
    out.append((f"Pairs ({len(pairs)}{limit} open)", "funding--head"))
    now = engine.clock.now()
    for p in pairs:
        held = (now - p.opened_at) / NS / 3600.0
        style = "funding--up" if p.status == "open" else ""
        out.append((f"{p.symbol} {p.long_dex}/{p.short_dex} {float(p.size_usd):,.0f} USD", style))
        out.append((f"  {held:.1f} h funding {p.funding_usd:+.2f} {p.status}", style))
    if st is not None:
        s = st.run_summary()
        reasons = ", ".join(f"{k} {v}" for k, v in s["close_reasons"].items())
        out.append((f"opened {s['pairs_opened']} closed {s['pairs_closed']}" + (f" ({reasons})" if reasons else ""),
                    "funding--dim"))
    return out


class FundingView(TextLines, can_focus=False):
    COMPONENT_CLASSES: ClassVar[set[str]] = {"funding--head", "funding--up", "funding--dim"}
    DEFAULT_CSS = """
    FundingView { height: auto; }
    FundingView > .funding--head { text-style: bold; }
    FundingView > .funding--up { color: $success; }
    FundingView > .funding--dim { color: $text-muted; }
    """

    def __init__(self, *, id: str | None = None):
        super().__init__(id=id)
        self.rows: list[tuple[str, str]] = []

    def show(self, engine: Any) -> None:
        rows = funding_lines(engine)
        if rows != self.rows:
            self.rows = rows
            self.invalidate()

    def build_lines(self, width: int) -> list[Text]:
        out = []
        for text, cls in self.rows:
            style = self.get_component_rich_style(cls, partial=True) if cls else ""
            out.append(Text(text[:width], style=style, no_wrap=True))
        return out

"""Historical file importers: one module per source, one interface (base.Importer).

`detect(path)` picks the importer for a file; `get_importer(name)` builds one by name;
`cached(path, importer)` converts a file once into the columnar cache (columnar.py) and returns
the cache directory; feed.ImportedFeed replays any mix of files through the Engine.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from .base import Importer, ImportReport, UnreadableFile
from .binance_vision import BinanceVisionImporter
from .bybit_history import BybitOrderbookImporter, BybitTradesImporter
from .columnar import CACHE_VERSION, build_cache, read_meta
from .ohlcv import OhlcvImporter
from .raw_capture import RawCaptureImporter
from .tardis import TardisImporter
from .ws_liquidations import LiquidationMessagesImporter

__all__ = [
    "ImportReport",
    "Importer",
    "UnreadableFile",
    "IMPORTER_NAMES",
    "get_importer",
    "detect",
    "cached",
    "default_cache_dir",
    "import_report",
    "expand_paths",
]

# Detection order: formats told by their header or name first, the loosest (OHLCV) last.
_FACTORIES: dict[str, Any] = {
    "tardis": TardisImporter,
    "binance": BinanceVisionImporter,
    "bybit-trades": BybitTradesImporter,
    "bybit-ob": BybitOrderbookImporter,
    "ws-liquidations": LiquidationMessagesImporter,
    "raw": RawCaptureImporter,
    "ohlcv": OhlcvImporter,
}
IMPORTER_NAMES = tuple(_FACTORIES)
# Feed-spec names that cover several importers (`--feed bybit:DIR` takes trades and order books).
_FAMILIES = {"bybit": ("bybit-trades", "bybit-ob")}
_SKIP_SUFFIXES = (".md", ".txt", ".checksum", ".json", ".toml", ".py", ".npz")


def get_importer(name: str, **options: Any) -> Importer:
    try:
        return _FACTORIES[name](**options)
    except KeyError:
        raise UnreadableFile(f"unknown importer {name!r} (known: {', '.join(IMPORTER_NAMES)})") from None


def detect(path: Path, family: str | None = None) -> Importer:
    """The importer that recognizes `path`, optionally among one family ('tardis', 'binance', 'bybit'...)."""
    names = _FAMILIES.get(family, (family,)) if family else IMPORTER_NAMES
    for name in names:
        importer = get_importer(name)
        if importer.matches(path):
            return importer
    what = f"a {family} file" if family else "in a known format"
    raise UnreadableFile(f"{path}: not {what} (importers: {', '.join(IMPORTER_NAMES)})")


def expand_paths(paths: list[Path] | list[str] | Path | str) -> list[tuple[Path, bool]]:
    """Files named directly (explicit=True) plus data files found under named directories (False)."""
    if isinstance(paths, str | Path):
        paths = [paths]
    out: list[tuple[Path, bool]] = []
    for p in map(Path, paths):
        if p.is_dir():
            for f in sorted(p.rglob("*")):
                if f.is_file() and not f.name.startswith(".") and not f.name.lower().endswith(_SKIP_SUFFIXES):
                    out.append((f, False))
        elif p.exists():
            out.append((p, True))
        else:
            raise UnreadableFile(f"{p}: no such file or directory")
    return out


def default_cache_dir() -> Path:
    env = os.environ.get("LIQDESK_CACHE_DIR")
    if env:
        return Path(env)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "liqdesk" / "imports"


def _cache_key(path: Path, importer: Importer) -> str:
    st = path.stat()
    options = sorted((k, repr(v)) for k, v in vars(importer).items())
    ident = repr((str(path.resolve()), st.st_size, st.st_mtime_ns, importer.name, options, CACHE_VERSION))
    return hashlib.sha1(ident.encode()).hexdigest()[:16]


def cached(path: Path, importer: Importer, cache_dir: Path | None = None, rebuild: bool = False) -> Path:
    """The cache directory of `path` converted by `importer`, built now if missing or stale.

    The key covers the file's absolute path, size and mtime, the importer and its options, and
    the cache version, so an edited file or a changed importer never reuses an old conversion.
    """
    root = cache_dir or default_cache_dir()
    out = root / f"{path.name}-{_cache_key(path, importer)}"
    if (out / "meta.json").exists():
        if not rebuild:
            return out
        shutil.rmtree(out)
    report = ImportReport(str(path), importer.name)
    source = {"path": str(path.resolve()), "importer": importer.name, "size": path.stat().st_size}
    tiebreak = importer.tiebreak if type(importer).tiebreak is not Importer.tiebreak else None
    return build_cache(importer.events(path, report), out, report, source, tiebreak=tiebreak)


def import_report(cache: Path) -> ImportReport:
    """The import report (rows, events, bad rows with file and line, skips) stored with a cache."""
    return ImportReport.from_dict(read_meta(cache)["report"])

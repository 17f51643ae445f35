"""ImportedFeed: a historical feed over imported files, for the Engine and the backtester.

    feed = ImportedFeed(["data/tardis"], family="tardis", symbols=["BTCUSDT"])
    await engine.run([feed])

Files are converted once into the columnar cache (importers.cached) and replayed from it. A
feed over several files merges them by replay key (arrival time `recv_ts` when the source
records it, else exchange time `ts`), ties broken by file order then by position in the file.
`start_ns` / `end_ns` bound the same key. With use_cache=False files are streamed straight
from the importer in file order (for inspection; a newest-first file stays newest-first).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from . import cached, detect, expand_paths, get_importer, import_report
from .base import Importer, ImportReport, UnreadableFile
from .columnar import concat_columns, iter_cache, load_columns, read_meta, replay_key, select_rows


class ImportedFeed:
    live = False

    def __init__(
        self,
        paths: Iterable[str | Path] | str | Path,
        importer: str | Importer | None = None,
        family: str | None = None,
        name: str | None = None,
        cache_dir: Path | None = None,
        use_cache: bool = True,
        symbols: Iterable[str] | None = None,
        start_ns: int | None = None,
        end_ns: int | None = None,
    ):
        self.paths = [Path(p) for p in ([paths] if isinstance(paths, str | Path) else paths)]
        self.cache_dir = cache_dir
        self.use_cache = use_cache
        self.symbols = set(symbols) if symbols is not None else None
        self.start_ns, self.end_ns = start_ns, end_ns
        self.name = name or f"import:{','.join(p.name for p in self.paths)}"
        self.files: list[tuple[Path, Importer]] = []
        self.unrecognized: list[Path] = []  # files found under a directory that no importer reads
        for path, explicit in expand_paths(self.paths):
            if isinstance(importer, Importer):
                self.files.append((path, importer))
                continue
            try:
                imp = get_importer(importer) if importer else detect(path, family)
            except UnreadableFile:
                if explicit:
                    raise
                self.unrecognized.append(path)
                continue
            self.files.append((path, imp))
        if not self.files:
            raise UnreadableFile(f"{', '.join(map(str, self.paths))}: no importable files")
        self._caches: list[Path] | None = None

    # -- conversion -----------------------------------------------------------------------------
    def prepare(self, progress=None) -> list[ImportReport]:
        """Convert every file not yet cached; returns one ImportReport per file (bad rows included).

        `progress(done, total, path)` is called after each file, for a progress bar.
        """
        if not self.use_cache:
            raise RuntimeError("prepare() needs use_cache=True")
        if self._caches is None:
            caches = []
            for i, (path, imp) in enumerate(self.files):
                caches.append(cached(path, imp, self.cache_dir))
                if progress is not None:
                    progress(i + 1, len(self.files), path)
            self._caches = caches
        return [import_report(c) for c in self._caches]

    @property
    def reports(self) -> list[ImportReport]:
        return self.prepare()

    def symbols_available(self) -> list[str]:
        self.prepare()
        assert self._caches is not None
        return sorted({s for c in self._caches for s in read_meta(c)["symbols"]})

    # -- replay -----------------------------------------------------------------------------------
    def events(self) -> Iterator[Any]:
        if self.use_cache:
            self.prepare()
            assert self._caches is not None
            streams = [iter_cache(c, self.start_ns, self.end_ns) for c in self._caches]
        else:
            streams = [self._direct(path, imp) for path, imp in self.files]
        if self.symbols is not None:
            wanted = self.symbols
            streams = [(ev for ev in s if ev.symbol in wanted) for s in streams]
        if len(streams) == 1:
            yield from streams[0]
            return
        for _k, _i, _n, ev in heapq.merge(*(_keyed(i, s) for i, s in enumerate(streams))):
            yield ev

    def _direct(self, path: Path, imp: Importer) -> Iterator[Any]:
        report = ImportReport(str(path), imp.name)
        for ev in imp.events(path, report):
            k = replay_key(ev)
            if self.start_ns is not None and k < self.start_ns:
                continue
            if self.end_ns is not None and k >= self.end_ns:
                continue
            yield ev

    def columns(self, kind: str) -> dict[str, np.ndarray]:
        """One event type's columns across all files (see columnar.load_columns), ordered by replay key.

        Numeric arrays are concatenated and stably sorted by key; str columns are re-coded against
        one shared `<field>.values` table. Symbol and time filters are applied.
        """
        self.prepare()
        assert self._caches is not None
        parts = [load_columns(c, kind) for c in self._caches]
        out = concat_columns(parts)
        mask = np.ones(len(out["key"]), dtype=bool)
        if self.start_ns is not None:
            mask &= out["key"] >= self.start_ns
        if self.end_ns is not None:
            mask &= out["key"] < self.end_ns
        if self.symbols is not None and "symbol" in out:
            values = out["symbol.values"]
            keep = np.array([v in self.symbols for v in values], dtype=bool)
            mask &= keep[out["symbol"]] if len(values) else False
        if mask.all():
            return out
        return select_rows(out, mask)


def _keyed(file_index: int, stream: Iterator[Any]) -> Iterator[tuple[int, int, int, Any]]:
    """Merge keys: replay key, then file order, then position in the file (events never compared)."""
    for n, ev in enumerate(stream):
        yield replay_key(ev), file_index, n, ev

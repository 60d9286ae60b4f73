"""Image embeddings by content, in memory and on disk: a frame seen before skips the encoder."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from ...api import atomic


@dataclass
class Embedding:
    features: np.ndarray  # C x h x w float32
    original_size: tuple[int, int]
    input_size: tuple[int, int]

    @property
    def nbytes(self) -> int:
        return self.features.nbytes


def cache_folder(setting: str | None) -> str | None:
    """The on-disk embedding cache: the given folder, none for "", else the user cache."""
    if setting == "":
        return None
    if setting:
        return setting
    base = os.environ.get("ACTANYWHERE_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"),
        "actanywhere")
    return os.path.join(base, "sam-embeddings")


class EmbeddingCache:
    """Image embeddings by (weights, image content): an LRU in memory over a byte budget,
    backed by ``.npz`` files in ``folder`` (pruned oldest first over ``disk_budget``)."""

    def __init__(self, folder: str | None, memory_budget: int = 2 << 30,
                 disk_budget: int = 8 << 30) -> None:
        self.folder = folder
        self.memory_budget = memory_budget
        self.disk_budget = disk_budget
        self._mem: OrderedDict[str, Embedding] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.disk_hits = self.misses = 0

    def _file(self, key: str) -> str | None:
        return os.path.join(self.folder, key[:2], key + ".npz") if self.folder else None

    def get(self, key: str) -> Embedding | None:
        with self._lock:
            if key in self._mem:
                self._mem.move_to_end(key)
                self.hits += 1
                return self._mem[key]
        path = self._file(key)
        if path and os.path.exists(path):
            try:
                with np.load(path) as z:
                    emb = Embedding(z["features"], tuple(z["original_size"]),
                                    tuple(z["input_size"]))
            except (OSError, ValueError, KeyError):
                os.remove(path)  # damaged cache file: recompute
                return None
            self._remember(key, emb)
            self.disk_hits += 1
            return emb
        return None

    def _remember(self, key: str, emb: Embedding) -> None:
        with self._lock:
            self._mem[key] = emb
            self._mem.move_to_end(key)
            total = sum(e.nbytes for e in self._mem.values())
            while total > self.memory_budget and len(self._mem) > 1:
                _, old = self._mem.popitem(last=False)
                total -= old.nbytes

    def put(self, key: str, emb: Embedding) -> None:
        self.misses += 1
        self._remember(key, emb)
        path = self._file(key)
        if not path:
            return
        try:
            with atomic.replacing(path) as tmp, open(tmp, "wb") as fh:
                np.savez(fh, features=emb.features, original_size=np.array(emb.original_size),
                         input_size=np.array(emb.input_size))
            self._prune()
        except OSError:
            pass  # an unwritable cache only costs speed

    def _prune(self) -> None:
        files = []
        for root, _, names in os.walk(self.folder):  # type: ignore[arg-type]
            for n in names:
                p = os.path.join(root, n)
                try:
                    st = os.stat(p)
                except OSError:
                    continue
                files.append((st.st_mtime, st.st_size, p))
        total = sum(f[1] for f in files)
        for _, size, p in sorted(files):
            if total <= self.disk_budget:
                break
            try:
                os.remove(p)
                total -= size
            except OSError:
                pass


_CACHES: dict[str | None, EmbeddingCache] = {}


def shared_cache(folder: str | None) -> EmbeddingCache:
    """One cache per folder per process (the worker keeps it between jobs)."""
    if folder not in _CACHES:
        _CACHES[folder] = EmbeddingCache(folder)
    return _CACHES[folder]

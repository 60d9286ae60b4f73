"""Loaded pipelines kept warm between jobs (the worker enables this; one-shot runs do not).
Importing this module does not import torch.

Keyed by the model folder's real path and manifest time, device, dtype and compile flag, so an
edited or replaced checkpoint is loaded again. Least recently used pipelines are dropped when
the parameters held exceed the memory budget (the one just loaded always stays).
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # torch is imported by the first model loaded, not by a starting worker
    import torch

Key = tuple[Any, ...]
#: a model folder's manifest files (this package's checkpoints; diffusers folders)
MANIFESTS = ("actanywhere.json", "model_index.json")


def key_for(model: str, device: torch.device, dtype: torch.dtype, compiled: bool) -> Key:
    real = os.path.realpath(model)
    stamp = 0
    for manifest in MANIFESTS:
        with contextlib.suppress(OSError):
            stamp = max(stamp, os.stat(os.path.join(real, manifest)).st_mtime_ns)
    return (real, stamp, str(device), str(dtype), compiled)


def pipeline_bytes(pipe: Any) -> int:
    """Memory the weights of a loaded pipeline take (every part that has parameters)."""
    parts = getattr(pipe, "components", None) or {
        name: getattr(pipe, name, None) for name in ("unet", "vae", "image_encoder",
                                                     "condition_projector")}
    return sum(p.numel() * p.element_size() for part in parts.values()
               if hasattr(part, "parameters") for p in part.parameters())


class PipelineCache:
    def __init__(self, budget_bytes: int) -> None:
        self.budget = budget_bytes
        self._items: OrderedDict[Key, Any] = OrderedDict()
        self._lock = threading.Lock()
        self.hits = self.loads = 0

    def get(self, key: Key, load: Callable[[], Any]) -> Any:
        with self._lock:
            if key in self._items:
                self._items.move_to_end(key)
                self.hits += 1
                return self._items[key]
        pipe = load()
        with self._lock:
            self.loads += 1
            self._items[key] = pipe
            while len(self._items) > 1 and \
                    sum(map(pipeline_bytes, self._items.values())) > self.budget:
                self._items.popitem(last=False)
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()
        return pipe

    def info(self) -> dict[str, Any]:
        with self._lock:
            return {"models": [k[0] for k in self._items], "hits": self.hits,
                    "loads": self.loads, "bytes": sum(map(pipeline_bytes, self._items.values())),
                    "budget_bytes": self.budget}


_ACTIVE: PipelineCache | None = None


def enable(budget_bytes: int) -> PipelineCache:
    global _ACTIVE
    _ACTIVE = PipelineCache(budget_bytes)
    return _ACTIVE


def active() -> PipelineCache | None:
    return _ACTIVE

"""Weight-file headers read without reading weights: safetensors (the JSON header, each
tensor's byte count and the file's length checked) and, where pickle is allowed, a pickle's
tensors memory-mapped."""

from __future__ import annotations

import json
import os

from ...errors import ModelError
from .memory import one_line

#: bytes per element of each safetensors dtype
DTYPE_BYTES = {"F64": 8, "F32": 4, "F16": 2, "BF16": 2, "I64": 8, "I32": 4, "I16": 2, "I8": 1,
               "U64": 8, "U32": 4, "U16": 2, "U8": 1, "BOOL": 1, "F8_E4M3": 1, "F8_E5M2": 1}


def shard_files(index: str, weight_map: object, folder: str, again: str) -> list[str]:
    """The files a shard index's ``weight_map`` names, in ``folder``, each there; a missing
    map or shard is one line ending with ``again`` (how to fetch it again)."""
    if not isinstance(weight_map, dict) or not weight_map:
        raise ModelError(f"{index}: no weight_map; {again}")
    files = sorted({os.path.join(folder, f) for f in weight_map.values()})
    for f in files:
        if not os.path.isfile(f):
            raise ModelError(f"{f}: missing shard listed in {os.path.basename(index)}; the "
                             f"download is incomplete, {again}")
    return files


def read_header(file: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    """{tensor: (dtype, shape)} from a safetensors header; a damaged or truncated file named."""
    size = os.path.getsize(file)
    bad = f"{file}: damaged or truncated safetensors file"
    with open(file, "rb") as fh:
        head = fh.read(8)
        n = int.from_bytes(head, "little") if len(head) == 8 else -1
        if n <= 0 or n > min(size - 8, 1 << 28):
            raise ModelError(f"{bad} (no valid header in its {size} bytes); re-download it")
        raw = fh.read(n)
    try:
        meta = json.loads(raw)
        out, end = {}, 0
        for key, spec in meta.items():
            if key == "__metadata__":
                continue
            dtype, shape = str(spec["dtype"]), tuple(int(s) for s in spec["shape"])
            start, stop = (int(x) for x in spec["data_offsets"])
            count = 1
            for s in shape:
                count *= s
            if dtype in DTYPE_BYTES and stop - start != count * DTYPE_BYTES[dtype]:
                raise ValueError(f"tensor {key} holds {stop - start} bytes, not {shape} {dtype}")
            out[key], end = (dtype, shape), max(end, stop)
    except (ValueError, TypeError, KeyError, AttributeError) as exc:
        raise ModelError(f"{bad} (header: {one_line(exc, 120)}); re-download it") from exc
    if 8 + n + end > size:
        raise ModelError(f"{file}: truncated: its header needs {8 + n + end} bytes, the file has "
                         f"{size}; the download did not finish, re-download it")
    return out


def pickle_header(file: str) -> dict[str, tuple[str, tuple[int, ...]]]:
    import torch

    try:
        try:
            state = torch.load(file, map_location="cpu", weights_only=True, mmap=True)
        except RuntimeError:  # the legacy (non-zip) format cannot be memory-mapped
            state = torch.load(file, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad pickle
        raise ModelError(f"{file}: cannot read the weights ({one_line(exc)}); re-download "
                         "it") from exc
    state = state.get("state_dict", state) if isinstance(state, dict) else {}
    return {k: (str(v.dtype).removeprefix("torch."), tuple(v.shape)) for k, v in state.items()}

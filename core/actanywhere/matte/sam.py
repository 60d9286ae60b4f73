"""Segment Anything (the official ``segment-anything`` package) from local checkpoints.

The architecture is read from the checkpoint itself (embedding width, depth, heads from the
relative-position tables, which blocks attend globally, input size), so the official vit_b,
vit_l and vit_h files and the tiny models the tests build load through the same code. Image
embeddings are computed once per frame (batched on a GPU) and cached by content, in memory
and on disk, so a new click on a frame seen before skips the image encoder.
"""

from __future__ import annotations

import hashlib
import os
import re
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..errors import ModelError
from ..spec import KeyFrame
from .track import Hint

KNOWN = {"vit_b": (768, 12), "vit_l": (1024, 24), "vit_h": (1280, 32)}
SIZES = {"vit_b": "about 375 MB", "vit_l": "about 1.2 GB", "vit_h": "about 2.6 GB"}
ENV = "ACTANYWHERE_SAM_CHECKPOINT"
_HINT = ("expected an official Segment Anything checkpoint (sam_vit_b_01ec64.pth, "
         "sam_vit_l_0b3195.pth or sam_vit_h_4b8939.pth, from the segment-anything project)")


def _import():
    try:
        import torch
        from segment_anything.modeling import (
            ImageEncoderViT,
            MaskDecoder,
            PromptEncoder,
            Sam,
            TwoWayTransformer,
        )
        from segment_anything.predictor import SamPredictor
    except ImportError as exc:
        raise ModelError(
            f"SAM needs torch, torchvision and segment-anything ({exc}); install with "
            "`python3 install.py setup --torch cuda` (the CPU-only torch build has no "
            "torchvision)") from exc
    return torch, ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer, \
        SamPredictor


@dataclass(frozen=True)
class Arch:
    """Everything needed to build a Sam matching a state dict."""

    embed_dim: int
    depth: int
    num_heads: int
    global_attn: tuple[int, ...]
    window_size: int
    img_size: int
    patch_size: int
    mlp_ratio: float
    out_chans: int
    mask_in_chans: int
    decoder_depth: int
    decoder_mlp: int
    multimask: int
    iou_depth: int
    iou_hidden: int

    @property
    def kind(self) -> str:
        for name, (dim, depth) in KNOWN.items():
            if (self.embed_dim, self.depth) == (dim, depth):
                return name
        return f"custom (width {self.embed_dim}, depth {self.depth})"


def infer_arch(sd: dict, path: str) -> Arch:
    """Read the architecture from a SAM state dict; ModelError naming what is missing."""
    need = ["image_encoder.patch_embed.proj.weight", "image_encoder.pos_embed",
            "image_encoder.neck.0.weight", "prompt_encoder.mask_downscaling.3.weight",
            "mask_decoder.mask_tokens.weight", "mask_decoder.transformer.layers.0.mlp.lin1.weight"]
    missing = [k for k in need if k not in sd]
    if missing:
        raise ModelError(f"{path}: not a Segment Anything checkpoint (no {missing[0]}); {_HINT}")
    embed, _, patch, _ = sd["image_encoder.patch_embed.proj.weight"].shape
    grid = sd["image_encoder.pos_embed"].shape[1]
    blocks = sorted({int(m.group(1)) for k in sd
                     if (m := re.match(r"image_encoder\.blocks\.(\d+)\.", k))})
    global_attn, window, head_dim = [], 0, None
    for b in blocks:
        rel = sd.get(f"image_encoder.blocks.{b}.attn.rel_pos_h")
        if rel is None:
            raise ModelError(f"{path}: block {b} has no relative position table; {_HINT}")
        size = (rel.shape[0] + 1) // 2
        head_dim = rel.shape[1]
        if size == grid:
            global_attn.append(b)
        else:
            window = size
    layers = {int(m.group(1)) for k in sd
              if (m := re.match(r"mask_decoder\.transformer\.layers\.(\d+)\.", k))}
    iou_layers = {int(m.group(1)) for k in sd
                  if (m := re.match(r"mask_decoder\.iou_prediction_head\.layers\.(\d+)\.", k))}
    return Arch(
        embed_dim=int(embed), depth=len(blocks), num_heads=int(embed // head_dim),
        global_attn=tuple(global_attn), window_size=int(window), img_size=int(grid * patch),
        patch_size=int(patch),
        mlp_ratio=sd["image_encoder.blocks.0.mlp.lin1.weight"].shape[0] / embed,
        out_chans=int(sd["image_encoder.neck.0.weight"].shape[0]),
        mask_in_chans=int(sd["prompt_encoder.mask_downscaling.3.weight"].shape[0]),
        decoder_depth=len(layers),
        decoder_mlp=int(sd["mask_decoder.transformer.layers.0.mlp.lin1.weight"].shape[0]),
        multimask=int(sd["mask_decoder.mask_tokens.weight"].shape[0] - 1),
        iou_depth=len(iou_layers),
        iou_hidden=int(sd["mask_decoder.iou_prediction_head.layers.0.weight"].shape[0]),
    )


def build(arch: Arch):
    """An (untrained) Sam module of the given architecture."""
    torch, Encoder, Decoder, Prompt, Sam, Transformer, _ = _import()
    emb = arch.img_size // arch.patch_size
    return Sam(
        image_encoder=Encoder(
            depth=arch.depth, embed_dim=arch.embed_dim, img_size=arch.img_size,
            mlp_ratio=arch.mlp_ratio, norm_layer=partial(torch.nn.LayerNorm, eps=1e-6),
            num_heads=arch.num_heads, patch_size=arch.patch_size, qkv_bias=True,
            use_rel_pos=True, global_attn_indexes=arch.global_attn,
            window_size=arch.window_size, out_chans=arch.out_chans),
        prompt_encoder=Prompt(embed_dim=arch.out_chans, image_embedding_size=(emb, emb),
                              input_image_size=(arch.img_size, arch.img_size),
                              mask_in_chans=arch.mask_in_chans),
        mask_decoder=Decoder(
            num_multimask_outputs=arch.multimask,
            transformer=Transformer(depth=arch.decoder_depth, embedding_dim=arch.out_chans,
                                    mlp_dim=arch.decoder_mlp, num_heads=8),
            transformer_dim=arch.out_chans, iou_head_depth=arch.iou_depth,
            iou_head_hidden_dim=arch.iou_hidden),
        pixel_mean=[123.675, 116.28, 103.53], pixel_std=[58.395, 57.12, 57.375],
    ).eval()


def checkpoint_path(given: str | None) -> str:
    path = given or os.environ.get(ENV)
    if not path:
        raise ModelError(f"matte.sam.checkpoint: no SAM checkpoint given; set it (or ${ENV}) to "
                         "a local sam_vit_*.pth file (nothing is downloaded at run time)")
    if not os.path.isfile(path):
        raise ModelError(f"{path}: SAM checkpoint not found; {_HINT}, downloaded beforehand "
                         "(nothing is downloaded at run time)")
    return path


def read_state_dict(path: str) -> dict:
    torch = _import()[0]
    size = os.path.getsize(path)
    try:
        if path.endswith(".safetensors"):
            from safetensors.torch import load_file

            sd = load_file(path, device="cpu")
        else:
            sd = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any failure here means an unreadable file
        raise ModelError(f"{path}: cannot read the SAM checkpoint ({size:,} bytes; "
                         f"{str(exc).splitlines()[0][:120]}): damaged or truncated? vit_b is "
                         f"{SIZES['vit_b']}, vit_l {SIZES['vit_l']}, vit_h {SIZES['vit_h']}; "
                         "download it again") from exc
    if isinstance(sd, dict) and "model" in sd and isinstance(sd["model"], dict):
        sd = sd["model"]
    if not isinstance(sd, dict):
        raise ModelError(f"{path}: not a state dict; {_HINT}")
    return sd


@dataclass
class SamModel:
    sam: object
    arch: Arch
    path: str
    device: str
    key: str  # identity of the weights for the embedding cache

    @property
    def kind(self) -> str:
        return self.arch.kind


_MODELS: dict[tuple, SamModel] = {}
_MODELS_LOCK = threading.Lock()


def load(given: str | None, model_type: str = "auto", device: str = "auto") -> SamModel:
    """Load (once per process: kept warm for the worker) a SAM checkpoint."""
    torch = _import()[0]
    path = os.path.realpath(checkpoint_path(given))
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    elif device == "cuda" and not torch.cuda.is_available():
        raise ModelError("matte.sam.device: cuda requested but no CUDA GPU is visible; use cpu "
                         "or auto")
    st = os.stat(path)
    ident = (path, st.st_size, st.st_mtime_ns, device)
    with _MODELS_LOCK:
        if ident in _MODELS:
            model = _MODELS[ident]
        else:
            sd = read_state_dict(path)
            arch = infer_arch(sd, path)
            sam = build(arch)
            result = sam.load_state_dict(sd, strict=False)
            if result.missing_keys or result.unexpected_keys:
                bad = (result.missing_keys or result.unexpected_keys)[0]
                raise ModelError(f"{path}: weights do not fit the {arch.kind} SAM architecture "
                                 f"(first mismatch: {bad}); {_HINT}")
            sam.to(device)
            key = hashlib.sha1(f"{path}|{st.st_size}|{st.st_mtime_ns}".encode()).hexdigest()
            model = _MODELS[ident] = SamModel(sam, arch, path, device, key)
    if model_type != "auto" and model.arch.kind != model_type:
        raise ModelError(f"{path}: this checkpoint is {model.arch.kind}, but "
                         f"matte.sam.model_type says {model_type}; fix one of them")
    return model


# --------------------------------------------------------------------------------------------
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
            os.makedirs(os.path.dirname(path), exist_ok=True)
            tmp = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp.npz"
            np.savez(tmp, features=emb.features, original_size=np.array(emb.original_size),
                     input_size=np.array(emb.input_size))
            os.replace(tmp, path)
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


class SamSegmenter:
    """Segmenter (see track.py) over frames given as uint8 RGB by index."""

    name = "SAM"

    def __init__(self, model: SamModel, image: Callable[[int], np.ndarray],
                 cache: EmbeddingCache, batch: int = 1, count: int | None = None) -> None:
        self.model = model
        self.image = image
        self.cache = cache
        self.batch = batch if model.device != "cpu" else 1
        self.count = count
        self.predictor = _import()[6](model.sam)
        self._keys: dict[int, str] = {}
        self._last = -1
        self.encoded = 0

    def _key(self, index: int) -> str:
        if index not in self._keys:
            img = np.ascontiguousarray(self.image(index))
            h = hashlib.sha1(self.model.key.encode())
            h.update(str(img.shape).encode())
            h.update(img.data)
            self._keys[index] = h.hexdigest()
        return self._keys[index]

    def encode(self, indices: list[int]) -> list[Embedding]:
        """Embeddings of frames ``indices`` computed together (one encoder batch)."""
        torch = _import()[0]
        tf = self.predictor.transform
        batch, sizes = [], []
        for i in indices:
            img = self.image(i)
            x = torch.as_tensor(tf.apply_image(img), device=self.model.device)
            x = x.permute(2, 0, 1).contiguous()[None]
            sizes.append((img.shape[:2], tuple(x.shape[-2:])))
            batch.append(self.model.sam.preprocess(x))
        with torch.inference_mode():
            feats = self.model.sam.image_encoder(torch.cat(batch)).float().cpu().numpy()
        self.encoded += len(indices)
        return [Embedding(f, tuple(o), tuple(s)) for f, (o, s) in zip(feats, sizes, strict=True)]

    def embedding(self, index: int) -> Embedding:
        emb = self.cache.get(self._key(index))
        if emb is not None:
            self._last = index
            return emb
        # encode this frame and the next ones in the direction of travel together
        direction = -1 if index < self._last else 1
        todo = [index]
        j = index + direction
        while len(todo) < self.batch and (self.count is None or 0 <= j < self.count) and j >= 0:
            if self.cache.get(self._key(j)) is None:
                todo.append(j)
            j += direction
        for i, e in zip(todo, self.encode(todo), strict=True):
            self.cache.put(self._key(i), e)
        self._last = index
        return self.cache.get(self._key(index))  # type: ignore[return-value]

    def _set(self, index: int) -> None:
        torch = _import()[0]
        emb = self.embedding(index)
        p = self.predictor
        p.reset_image()
        p.features = torch.as_tensor(emb.features, device=self.model.device)[None]
        p.original_size = emb.original_size
        p.input_size = emb.input_size
        p.is_image_set = True

    def _predict(self, points: np.ndarray | None, labels: np.ndarray | None,
                 box: tuple[float, ...] | None) -> np.ndarray:
        single = box is None and points is not None and len(points) == 1
        masks, scores, _ = self.predictor.predict(
            point_coords=points if points is not None and len(points) else None,
            point_labels=labels if points is not None and len(points) else None,
            box=np.asarray(box, np.float32) if box is not None else None,
            multimask_output=single, return_logits=True)
        best = int(np.argmax(scores)) if single else 0
        logits = np.clip(masks[best].astype(np.float32), -30, 30)
        return 1.0 / (1.0 + np.exp(-logits))

    def key(self, index: int, key: KeyFrame) -> np.ndarray:
        self._set(index)
        pts = np.array([(x, y) for x, y, _ in key.points], np.float32).reshape(-1, 2)
        labels = np.array([lab for _, _, lab in key.points], np.int32)
        if not key.boxes:
            return self._predict(pts, labels, None)
        out = None
        for box in key.boxes:  # one prediction per box, every click with each; united
            m = self._predict(pts, labels, box)
            out = m if out is None else np.maximum(out, m)
        return out  # type: ignore[return-value]

    def track(self, index: int, hint: Hint) -> np.ndarray:
        self._set(index)
        return self._predict(hint.points, hint.labels, hint.box)


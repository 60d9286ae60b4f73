"""SAM as a segmenter (see track.py): prompts -> soft matte, through the Sam model's own
modules (image encoder, prompt encoder, mask decoder, ``postprocess_masks``) as
``SamPredictor.predict`` chains them, so embeddings can come from the cache and several
frames can be encoded in one batch."""

from __future__ import annotations

import hashlib
from collections.abc import Callable

import numpy as np

from ..track import Hint, KeyFrame
from .cache import Embedding, EmbeddingCache
from .deps import need
from .loader import SamModel


class SamSegmenter:
    """Segmenter over frames given as uint8 RGB by index."""

    name = "SAM"

    def __init__(self, model: SamModel, image: Callable[[int], np.ndarray],
                 cache: EmbeddingCache, batch: int = 1, count: int | None = None) -> None:
        deps = need()
        self.torch = deps.torch
        self.model = model
        self.image = image
        self.cache = cache
        self.batch = batch if model.device != "cpu" else 1
        self.count = count
        self.transform = deps.ResizeLongestSide(model.sam.image_encoder.img_size)
        self._keys: dict[int, str] = {}
        self._last = -1
        self.encoded = 0

    # ------------------------------------------------------------------ image embeddings
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
        torch, sam = self.torch, self.model.sam
        batch, sizes = [], []
        for i in indices:
            img = self.image(i)
            x = torch.as_tensor(self.transform.apply_image(img), device=self.model.device)
            x = x.permute(2, 0, 1).contiguous()[None]
            sizes.append((img.shape[:2], tuple(x.shape[-2:])))
            batch.append(sam.preprocess(x))
        with torch.inference_mode():
            feats = sam.image_encoder(torch.cat(batch)).float().cpu().numpy()
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

    # ------------------------------------------------------------------------ prompts
    def _predict(self, emb: Embedding, points: np.ndarray | None, labels: np.ndarray | None,
                 box: tuple[float, ...] | None) -> np.ndarray:
        """The soft matte (sigmoid of the mask logits) for one set of prompts; a single click
        asks for three masks and keeps the best scored."""
        torch, sam, dev = self.torch, self.model.sam, self.model.device
        single = box is None and points is not None and len(points) == 1
        coords = None
        if points is not None and len(points):
            xy = self.transform.apply_coords(points, emb.original_size)
            coords = (torch.as_tensor(xy, dtype=torch.float, device=dev)[None],
                      torch.as_tensor(labels, dtype=torch.int, device=dev)[None])
        boxes = None
        if box is not None:
            b = self.transform.apply_boxes(np.asarray(box, np.float32), emb.original_size)
            boxes = torch.as_tensor(b, dtype=torch.float, device=dev)
        with torch.inference_mode():
            sparse, dense = sam.prompt_encoder(points=coords, boxes=boxes, masks=None)
            low, scores = sam.mask_decoder(
                image_embeddings=torch.as_tensor(emb.features, device=dev)[None],
                image_pe=sam.prompt_encoder.get_dense_pe(),
                sparse_prompt_embeddings=sparse, dense_prompt_embeddings=dense,
                multimask_output=single)
            logits = sam.postprocess_masks(low, emb.input_size, emb.original_size)[0]
        best = int(scores[0].argmax()) if single else 0
        logits = np.clip(logits[best].float().cpu().numpy(), -30, 30)
        return 1.0 / (1.0 + np.exp(-logits))

    def key(self, index: int, key: KeyFrame) -> np.ndarray:
        emb = self.embedding(index)
        pts = np.array([(x, y) for x, y, _ in key.points], np.float32).reshape(-1, 2)
        labels = np.array([lab for _, _, lab in key.points], np.int32)
        if not key.boxes:
            return self._predict(emb, pts, labels, None)
        out = None
        for box in key.boxes:  # one prediction per box, every click with each; united
            m = self._predict(emb, pts, labels, box)
            out = m if out is None else np.maximum(out, m)
        return out  # type: ignore[return-value]

    def track(self, index: int, hint: Hint) -> np.ndarray:
        return self._predict(self.embedding(index), hint.points, hint.labels, hint.box)

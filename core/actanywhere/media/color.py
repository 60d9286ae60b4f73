"""Colour through OpenColorIO: sources to the scene-linear working space and back, and the
display-referred sRGB "model space" the diffusion model works in.

Policy (see docs/colour.md):
- Working space: ``Linear Rec.709 (sRGB)`` (scene-linear, Rec.709 primaries). Compositing
  happens here; outputs are written here unless an output colourspace is set.
- To model space: negatives (out-of-gamut) are clipped to 0; values above the knee are rolled
  off with an invertible exponential shoulder (``softclip``) or clipped at 1 (``clip``); then
  the sRGB transfer function encodes the result into [0, 1].
- From model space: the exact inverse. Highlights the model could not represent are not
  recovered in the generated background; the subject keeps its original values (above 1 and
  negative alike) because it is recomposited from the plate.
"""

from __future__ import annotations

import os
from functools import lru_cache
from typing import Literal

import numpy as np
import PyOpenColorIO as ocio

from ..errors import SpecError

DEFAULT_CONFIG = "ocio://studio-config-v2.2.0_aces-v1.3_ocio-v2.4"
WORKING_SPACE = "Linear Rec.709 (sRGB)"
SRGB_SPACE = "sRGB Encoded Rec.709 (sRGB)"
HighlightPolicy = Literal["softclip", "clip"]

# Formats whose pixels are usually scene-linear floats; the rest default to sRGB-encoded.
_LINEAR_FORMATS = {"openexr", "hdr", "pfm"}

Chroma = tuple[float, float, float, float, float, float, float, float]
#: EXR ``chromaticities`` (red, green, blue, white as CIE xy) of the linear colourspaces that
#: a file's primaries are matched to (names of the default studio config)
PRIMARIES: dict[str, Chroma] = {
    WORKING_SPACE: (0.64, 0.33, 0.30, 0.60, 0.15, 0.06, 0.3127, 0.3290),
    "Linear P3-D65": (0.680, 0.320, 0.265, 0.690, 0.150, 0.060, 0.3127, 0.3290),
    "Linear Rec.2020": (0.708, 0.292, 0.170, 0.797, 0.131, 0.046, 0.3127, 0.3290),
    "ACEScg": (0.713, 0.293, 0.165, 0.830, 0.128, 0.044, 0.32168, 0.33767),
    "ACES2065-1": (0.7347, 0.2653, 0.0, 1.0, 0.0001, -0.0770, 0.32168, 0.33767),
}
#: prefix of the colourspace names made for files whose primaries match no known space
CHROMATICITIES_PREFIX = "EXR chromaticities "


def space_for_chromaticities(chroma: Chroma, tolerance: float = 2e-3) -> str | None:
    """The known linear colourspace with these primaries and white, or None."""
    for name, ref in PRIMARIES.items():
        if all(abs(a - b) <= tolerance for a, b in zip(chroma, ref, strict=True)):
            return name
    return None


def _rgb_to_xyz(chroma: Chroma) -> np.ndarray:
    xy = np.array(chroma, np.float64).reshape(4, 2)
    prim = np.stack([xy[:3, 0], xy[:3, 1], 1 - xy[:3, 0] - xy[:3, 1]])  # columns: R, G, B
    wx, wy = xy[3]
    white = np.array([wx / wy, 1.0, (1 - wx - wy) / wy])
    return prim * np.linalg.solve(prim, white)


def primaries_matrix(src: Chroma, dst: Chroma) -> np.ndarray:
    """3x3 matrix from linear RGB with ``src`` chromaticities to ``dst`` ones through CIE XYZ,
    as OpenEXR converts (``RGBtoXYZ`` then ``XYZtoRGB``, no white adaptation: an EXR's pixel
    values are absolute colours, its white point says which one displays as white)."""
    return np.linalg.inv(_rgb_to_xyz(dst)) @ _rgb_to_xyz(src)


def config_ref(explicit: str | None = None) -> str:
    """The config to use: the ShotSpec's, else ``$OCIO``, else the pinned built-in one."""
    return explicit or os.environ.get("OCIO") or DEFAULT_CONFIG


@lru_cache(maxsize=8)
def load_config(ref: str) -> ocio.Config:
    try:
        return ocio.Config.CreateFromFile(ref)
    except Exception as exc:  # noqa: BLE001 - OCIO raises several unrelated types
        raise SpecError(f"color.config {ref!r}: cannot load the OCIO config ({exc}); fix $OCIO or "
                        f"use {DEFAULT_CONFIG}") from exc


def default_colorspace(file_format: str) -> str:
    """The colourspace assumed for a file format when the ShotSpec names none."""
    return WORKING_SPACE if file_format.lower() in _LINEAR_FORMATS else SRGB_SPACE


class ColorContext:
    """Cached OCIO processors for one job."""

    def __init__(self, config: str | None = None, working_space: str = WORKING_SPACE,
                 highlight: HighlightPolicy = "softclip", knee: float = 0.8) -> None:
        #: colourspaces made from a file's chromaticities: name -> matrix to Linear Rec.709
        self._matrices: dict[str, np.ndarray] = {}
        self.ref = config_ref(config)
        self.config = load_config(self.ref)
        self.working_space = self.check(working_space, "color.working_space")
        self.model_space = self.check(SRGB_SPACE, "color.model_space") if self._has(
            SRGB_SPACE) else self._srgb_fallback()
        if not 0.0 < knee < 1.0:
            raise SpecError(f"color.knee {knee}: must be between 0 and 1 (e.g. 0.8)")
        self.highlight = highlight
        self.knee = knee
        self._cpu: dict[tuple[str, ...], ocio.CPUProcessor] = {}

    def _has(self, name: str) -> bool:
        return self.config.getColorSpace(name) is not None

    def _srgb_fallback(self) -> str:
        for cs in self.config.getColorSpaces():
            if "srgb" in cs.getName().lower() and "display" not in cs.getName().lower():
                return cs.getName()
        raise SpecError(f"color.config {self.ref}: has no sRGB-encoded colourspace for the model")

    def check(self, name: str, field: str) -> str:
        if name in self._matrices:
            return name
        if not self._has(name):
            known = ", ".join(cs.getName() for cs in list(self.config.getColorSpaces())[:12])
            raise SpecError(f"{field} {name!r}: not in OCIO config {self.ref}; known: {known}, ...")
        return self.config.getColorSpace(name).getName()

    def _processor(self, src: str, dst: str) -> ocio.CPUProcessor:
        key = (src, dst)
        if key not in self._cpu:
            self._cpu[key] = self.config.getProcessor(src, dst).getDefaultCPUProcessor()
        return self._cpu[key]

    def file_space(self, explicit: str | None, file_format: str, metadata: dict,
                   field: str) -> tuple[str, str]:
        """(colourspace, note) of a file: ``explicit`` when given; else, for a linear file
        with an EXR ``chromaticities`` attribute, the known space with those primaries, or a
        colourspace made from them (converted by matrix); else the format's default. The
        note ("" when nothing needs saying) tells the user what was chosen and why."""
        if explicit:
            return self.check(explicit, field), ""
        default = default_colorspace(file_format)
        chroma = metadata.get("chromaticities")
        value = getattr(chroma, "value", chroma)
        if default != WORKING_SPACE or not isinstance(value, tuple) or len(value) != 8:
            return self.check(default, field), ""
        chroma8: Chroma = tuple(float(v) for v in value)  # type: ignore[assignment]
        known = space_for_chromaticities(chroma8)
        if known == WORKING_SPACE:
            return self.check(known, field), ""
        if known is not None and self._has(known):
            return self.check(known, field), (
                f"{field}: the file's chromaticities are {known}'s primaries; reading it as "
                f"{known} (set {field} to override)")
        name = CHROMATICITIES_PREFIX + " ".join(f"{v:.4g}" for v in chroma8)
        self._matrices[name] = primaries_matrix(chroma8, PRIMARIES[WORKING_SPACE]).astype(
            np.float32)
        self.check(WORKING_SPACE, field)  # the matrix leads there
        return name, (f"{field}: the file's chromaticities ({name[len(CHROMATICITIES_PREFIX):]})"
                      " match no colourspace of the config; converting from those primaries "
                      f"by matrix (set {field} to override)")

    def convert(self, rgb: np.ndarray, src: str, dst: str) -> np.ndarray:
        """``rgb`` (..., 3) float32 from ``src`` to ``dst``; a new array, or ``rgb`` itself when
        the spaces are the same (callers never modify the result in place)."""
        if src == dst:
            return rgb
        if src in self._matrices:
            rgb = np.asarray(rgb, np.float32) @ self._matrices[src].T
            src = self.check(WORKING_SPACE, "color.working_space")
            if src == dst:
                return np.ascontiguousarray(rgb, np.float32)
        out = np.array(rgb, dtype=np.float32, order="C", copy=True)
        self._processor(src, dst).applyRGB(out)
        return out

    def to_working(self, rgb: np.ndarray, src: str) -> np.ndarray:
        return self.convert(rgb, src, self.working_space)

    def from_working(self, rgb: np.ndarray, dst: str) -> np.ndarray:
        return self.convert(rgb, self.working_space, dst)

    # display ---------------------------------------------------------------------------
    def view(self, name: str | None = None) -> tuple[str, str]:
        """(display, view) of ``name`` ("DISPLAY/VIEW", or a view of the default display);
        None: the config's default display and its default view."""
        display = self.config.getDefaultDisplay()
        if not name:
            return display, self.config.getDefaultView(display)
        if "/" in name:
            display, view = (part.strip() for part in name.split("/", 1))
        else:
            view = name.strip()
        if display not in self.config.getDisplays() or view not in self.config.getViews(display):
            views = ", ".join(f"{d}/{v}" for d in list(self.config.getDisplays())[:2]
                              for v in self.config.getViews(d))
            raise SpecError(f"output.proxy_view {name!r}: not a display/view of OCIO config "
                            f"{self.ref}; known: {views}, ...")
        return display, view

    def to_display(self, linear: np.ndarray, view: str | None = None) -> np.ndarray:
        """Working-space linear RGB through the OCIO display/view transform (``view``), values
        in [0, 1]: what a viewer shows, tone-mapped (not a clamp) where the view does."""
        key = ("display", *self.view(view))
        if key not in self._cpu:
            transform = ocio.DisplayViewTransform(src=self.working_space, display=key[1],
                                                  view=key[2])
            self._cpu[key] = self.config.getProcessor(transform).getDefaultCPUProcessor()
        out = np.array(linear, dtype=np.float32, order="C", copy=True)
        self._cpu[key].applyRGB(out)
        return np.clip(np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)

    def to_display_baked(self, linear: np.ndarray, view: str | None = None) -> np.ndarray:
        """``to_display`` through a 65^3 LUT sampled from the same OCIO view over a log2
        domain (2^-10..2^8): five times faster, for proxies (mean error 1e-4, at most 0.05 on
        saturated highlights, measured on the ACES view; tests/test_color.py)."""
        key = ("baked", *self.view(view))
        if key not in self._cpu:
            exact = self.to_display  # sampled through the exact processor
            n, lo, hi = 65, -10.0, 8.0
            alloc = ocio.AllocationTransform(allocation=ocio.ALLOCATION_LG2,
                                             vars=[lo, hi, 2.0**lo])
            axis = np.linspace(0.0, 1.0, n, dtype=np.float32)
            b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
            grid = np.ascontiguousarray(np.stack([r, g, b], -1).reshape(-1, 3))
            self.config.getProcessor(alloc, ocio.TRANSFORM_DIR_INVERSE) \
                .getDefaultCPUProcessor().applyRGB(grid)
            table = exact(grid, view).reshape(n, n, n, 3)  # [blue][green][red]
            lut = ocio.Lut3DTransform(gridSize=n)
            lut.setData(np.ascontiguousarray(table.transpose(2, 1, 0, 3)).ravel())
            # a raw config of its own: a config's processor cache does not tell LUTs apart
            # by their data, so a second baked view would get the first one's processor
            self._cpu[key] = ocio.Config.CreateRaw().getProcessor(
                ocio.GroupTransform([alloc, lut])).getDefaultCPUProcessor()
        out = np.array(linear, dtype=np.float32, order="C", copy=True)
        self._cpu[key].applyRGB(out)
        return np.clip(np.nan_to_num(out, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)

    # model space -------------------------------------------------------------------------
    def to_model(self, linear: np.ndarray) -> np.ndarray:
        """Working-space linear RGB to display-referred sRGB in [0, 1] (see module policy)."""
        x = np.maximum(np.asarray(linear, np.float32), 0.0)
        x = soft_clip(x, self.knee) if self.highlight == "softclip" else np.minimum(x, 1.0)
        x = self.convert(x, self.working_space, self.model_space)
        return np.clip(x, 0.0, 1.0)

    def from_model(self, srgb: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`to_model` for values in [0, 1]."""
        x = self.convert(np.clip(srgb, 0.0, 1.0), self.model_space, self.working_space)
        x = np.clip(x, 0.0, 1.0)
        return soft_unclip(x, self.knee) if self.highlight == "softclip" else x


def soft_clip(x: np.ndarray, knee: float) -> np.ndarray:
    """Identity below ``knee``; above it, an exponential shoulder approaching 1."""
    span = 1.0 - knee
    over = np.maximum(x - knee, 0.0)
    return np.where(x > knee, knee + span * (1.0 - np.exp(-over / span)), x).astype(np.float32)


def soft_unclip(y: np.ndarray, knee: float) -> np.ndarray:
    """Inverse of :func:`soft_clip`; 1.0 maps to a finite ceiling (knee + 12 * span)."""
    span = 1.0 - knee
    t = np.clip((y - knee) / span, 0.0, 1.0 - 6e-6)
    return np.where(y > knee, knee - span * np.log1p(-t), y).astype(np.float32)

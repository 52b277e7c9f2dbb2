"""Layout warping with high-resolution sparse attention (seed 001, FIGS. 4A-4B, Algorithm 1, Eq. 3-4).

Given a face crop x, its semantic layout L and an edited layout L', every pixel p of L' inside the edit mask
gets a small set of positions in x that match it (its keys), found by PatchMatch-style search; the warped
pixel is the softmax-weighted sum of x at those keys (Eq. 4), and pixels outside the edit mask keep x
exactly (Eq. 3). Cost is linear in (query pixels x keys); no query-by-key matrix is ever formed at full
resolution.

Features need no training (seed 001 digest §7.1): both sides are functions of a label map, so there is no
image / layout domain gap to learn. A pixel of a part (lips, eyes, brows, nose, mouth interior) is described
by its position inside its region, normalised by the region's mean and spread, so a widened mouth maps onto
the original point for point; a pixel of the surround (skin, background) by its vectors to the nearest
pixel of each region, so skin next to a moved lip moves with it; every pixel by a weak global position that
settles ties. Labels enter through the cross-label penalty of col. 18-19: the one-hot layout is bilinearly
sampled at a key and its L1 distance to the query's one-hot, times ``label_penalty``, is subtracted from the
score, so disoccluded skin never copies lip pixels.

The search follows Algorithm 1 with the local-editing changes of col. 18-19 and the coarse seeding of claim 3:
    1. a dense all-pairs match on a grid about ``coarse_side`` cells across (constant cost, whatever the crop
       size) gives each query its first M particles;
    2. N iterations of: several propagation rounds (each neighbour's particles, offset by the step, compete
       with the query's own), evaluation (bilinear sampling of the key features, top-M), and random search in
       a window annealed as w = w0 exp(-lambda i) [i < i_c], down to a fraction of a pixel;
    3. the top-M particles of every iteration are kept, N*M keys per query (001: "20-30 sample keys").
Only pixels inside the edit mask's bounding box are queries (col. 17).

Convention:
    - Images (3, H, W) float tensors; label maps (H, W) integer tensors of :class:`vfx.face.mask.FaceLabel`;
      masks (H, W) bool. Key positions are (x, y) pixels, pixel centres at integers.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from vfx.blend.filters import gaussian_blur_image
from vfx.errors import VfxError
from vfx.face.layout import LABEL_NAMES, FaceLabel

__all__ = [
    "LayoutWarp",
    "WarpConfig",
    "dense_layout_warp",
    "edit_mask",
    "layout_features",
    "layout_warp",
    "mask_box",
]

log = logging.getLogger(__name__)

NUM_LABELS = len(FaceLabel)


@dataclass(frozen=True)
class WarpConfig:
    """Settings of the sparse-attention layout warp.

    Attributes:
        particles: M, the particles kept per query in each iteration.
        iterations: N; N*M keys per query go into Eq. 4 (001: "a subset of 20-30 sample keys").
        propagation_rounds: propagation rounds per iteration (col. 19: "more propagation steps in each
            iteration ... to enforce spatial coherency").
        random_samples: k, random particles tried per query in each iteration.
        window: w0, the random-search window at the first iteration, as a fraction of the crop's side.
        window_decay: lambda in w = w0 exp(-lambda i).
        window_iterations: i_c; no random search from this iteration on.
        label_penalty: weight of the cross-label penalty, in squared pixels per unit of one-hot L1 distance
            (0 turns it off).
        region_scale: in-region positions of the parts are ``region_scale`` times their normalised
            coordinates (see :func:`layout_features`).
        reach: the surround's vectors to the parts are shortened to this many pixels.
        offset_blur: those vectors are smoothed with a Gaussian of this sigma (pixels): a vector to the
            nearest pixel steps by whole pixels, the smoothed one varies continuously, so matches can land
            between pixels.
        global_weight: weight of the global position term, which settles ties.
        temperature: softmax temperature of Eq. 4 as a feature distance: keys within about this distance
            of the best match share the weight (gamma = 1 / (2 t^2)).
    The defaults were tuned on the known-warp test of :mod:`vfx.eval.retouch` (real crops, mouth moved
    and widened): the random-search window decays to a fraction of a pixel instead of stopping (col. 19
    stops it at i_c), which the sub-pixel accuracy of the lips needs.
        coarse_side: cells across the grid of the dense seeding match.
        mask_grow: the edit mask is the changed pixels grown by this fraction of their area (FIG. 7A: 10 %).
        seed: seed of the random search (the same every frame, so a constant edit warps the same way).
    """

    particles: int = 4
    iterations: int = 8
    propagation_rounds: int = 4
    random_samples: int = 4
    window: float = 0.06
    window_decay: float = 0.8
    window_iterations: int = 8
    label_penalty: float = 50.0
    region_scale: float = 16.0
    reach: float = 12.0
    offset_blur: float = 3.0
    global_weight: float = 0.02
    temperature: float = 0.1
    coarse_side: int = 48
    mask_grow: float = 0.10
    seed: int = 0

    def __post_init__(self) -> None:
        for name in ("particles", "iterations", "propagation_rounds", "coarse_side"):
            if getattr(self, name) < 1:
                raise VfxError(f"Invalid warp setting {name}", expected="an integer >= 1", found=str(getattr(self, name)),
                               fix=f"set WarpConfig({name}=...) to 1 or more")
        for name in ("random_samples", "window", "window_decay", "window_iterations", "label_penalty",
                     "global_weight", "mask_grow"):
            if getattr(self, name) < 0:
                raise VfxError(f"Invalid warp setting {name}", expected="a value >= 0", found=str(getattr(self, name)),
                               fix=f"set WarpConfig({name}=...) to 0 or more")
        if self.temperature <= 0:
            raise VfxError("Invalid warp setting temperature", expected="> 0", found=str(self.temperature),
                           fix="set WarpConfig(temperature=...) above 0, e.g. 0.1 (the default)")

    @property
    def gamma(self) -> float:
        return 1.0 / (2.0 * self.temperature**2)


@dataclass
class LayoutWarp:
    """The result of :func:`layout_warp`.

    Attributes:
        image: (3, H, W) the locally warped image x_warp of Eq. 3 (x outside the edit mask, bit for bit).
        mask: (H, W) bool edit mask m.
        unfilled: (H, W) bool pixels of the mask whose best key has another label: the source has nothing
            to copy there (a mouth opened where it was closed); the refiner has to paint them.
        keys: (K, h, w, 2) key positions (x, y) of the queries in ``box``; weights (K, h, w) their Eq. 4
            softmax weights. Empty when the mask is.
        box: (y0, x0, y1, x1) of the queries, ends exclusive.
        unfilled_fraction: per edited label name, the share of its mask pixels the source cannot supply:
            copied from another region, or missing because the source's region is smaller than the edited
            one (a mouth opened to three times its height).
    """

    image: Tensor
    mask: Tensor
    unfilled: Tensor
    keys: Tensor
    weights: Tensor
    box: tuple[int, int, int, int]
    unfilled_fraction: dict[str, float] = field(default_factory=dict)


# ---------------------------------------------------------------------------------------------- features

def _check_labels(labels: Tensor, name: str) -> Tensor:
    if labels.ndim != 2 or labels.dtype.is_floating_point:
        raise VfxError(f"Invalid {name}", expected="(H, W) integer label map", found=f"{labels.dtype} {tuple(labels.shape)}",
                       fix=f"pass the {name} as an (H, W) integer tensor, such as face_layout returns")
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= NUM_LABELS):
        raise VfxError(f"Unknown labels in the {name}", expected=f"values 0..{NUM_LABELS - 1} ({', '.join(LABEL_NAMES)})",
                       found=f"values {int(labels.min())}..{int(labels.max())}",
                       fix=f"pass a {name} from face_layout or a painted map")
    return labels.long()


def _region_stats(labels: Tensor) -> tuple[Tensor, Tensor]:
    """Per label: mean (L, 2) and spread (L, 2) of its pixels' (x, y)."""
    h, w = labels.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=labels.device, dtype=torch.float32),
                            torch.arange(w, device=labels.device, dtype=torch.float32), indexing="ij")
    flat = labels.reshape(-1)
    count = torch.bincount(flat, minlength=NUM_LABELS).float()
    points = torch.stack([xs.reshape(-1), ys.reshape(-1)], dim=1)
    total = torch.zeros(NUM_LABELS, 2, device=labels.device).index_add_(0, flat, points)
    squares = torch.zeros(NUM_LABELS, 2, device=labels.device).index_add_(0, flat, points**2)
    mean = total / count.clamp(min=1)[:, None]
    spread = (squares / count.clamp(min=1)[:, None] - mean**2).clamp(min=0).sqrt().clamp(min=1.0)
    return mean, spread


def _offsets(labels: Tensor, reach: float, blur: float) -> Tensor:
    """(2 L, H, W): for every pixel, the (dx, dy) vector to the nearest pixel of each region, shortened to
    at most ``reach`` pixels (zero where a region is absent), smoothed with a Gaussian of sigma ``blur``.

    The vector, unlike the distance, is not ambiguous along a region's edge: skin two pixels below the
    lower lip's middle has one match below the moved lip, not a whole curve of them.
    """
    import cv2

    codes = labels.cpu().numpy().astype(np.uint8)
    h, w = codes.shape
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    out = np.zeros((2 * NUM_LABELS, h, w), np.float32)
    for label in np.unique(codes):
        inside = codes == label
        # DIST_LABEL_PIXEL numbers the region's pixels 1.. in scan order and gives each pixel its nearest one.
        _, nearest = cv2.distanceTransformWithLabels(np.ascontiguousarray((~inside).astype(np.uint8)), cv2.DIST_L2,
                                                     cv2.DIST_MASK_5, labelType=cv2.DIST_LABEL_PIXEL)
        iy, ix = np.nonzero(inside)
        dx = ix[nearest - 1].astype(np.float32) - xs
        dy = iy[nearest - 1].astype(np.float32) - ys
        length = np.hypot(dx, dy)
        shrink = np.minimum(1.0, reach / np.maximum(length, 1e-6))
        out[2 * label], out[2 * label + 1] = dx * shrink, dy * shrink
    if blur > 0:
        out = np.stack([gaussian_blur_image(channel, blur, border="reflect") for channel in out])
    return torch.from_numpy(out).to(labels.device)


def layout_features(labels: Tensor, *, region_scale: float = 16.0, reach: float = 12.0, offset_blur: float = 3.0,
                    global_weight: float = 0.02) -> Tensor:
    """Matching features of a label map: geometry channels, then the one-hot labels (L).

    Geometry: for a pixel of a part (lips, eyes, brows, nose, mouth), its in-region position
    ``region_scale (p - mean_k) / spread_k`` (so a widened mouth maps onto the original point for point);
    for a pixel of the surround (skin, background), its vectors to the nearest pixel of every region,
    shortened to ``reach`` pixels (skin next to a lip keeps its place relative to the lip, so it moves with
    it); for every pixel, the global position times ``global_weight``.
    The same function describes the original and the edited layout: both sides of the match live in one
    feature space, so nothing has to be learned (seed 001 digest §7.1).

    Args:
        labels: (H, W) integer label map.
        region_scale, reach, offset_blur, global_weight: see :class:`WarpConfig`.

    Returns:
        (2 + 2 L + 2 + L, H, W) float32: in-region (2), offsets (2 L), global (2), one-hot (L).
    """
    labels = _check_labels(labels, "label map")
    mean, spread = _region_stats(labels)
    h, w = labels.shape
    ys, xs = torch.meshgrid(torch.arange(h, device=labels.device, dtype=torch.float32),
                            torch.arange(w, device=labels.device, dtype=torch.float32), indexing="ij")
    xy = torch.stack([xs, ys])  # (2, H, W)
    local = region_scale * (xy - mean[labels].permute(2, 0, 1)) / spread[labels].permute(2, 0, 1)
    onehot = F.one_hot(labels, NUM_LABELS).permute(2, 0, 1).float()
    # Parts (lips, eyes, ...) are pinned by their in-region position; the surround (skin, background) by
    # its vectors to the parts, so it follows the part next to it.
    surround = ((labels == FaceLabel.SKIN) | (labels == FaceLabel.BACKGROUND)).float()[None]
    return torch.cat([local * (1 - surround), _offsets(labels, reach, offset_blur) * surround, global_weight * xy, onehot])


def edit_mask(labels: Tensor, edited: Tensor, *, grow: float = 0.10) -> Tensor:
    """The edit mask m of FIG. 7A: pixels where the layouts differ, grown until their area is ``1 + grow`` times.

    Every pixel of a part (lips, eyes, ...) whose outline changed is in the mask too, in either layout.

    The growth is a disc (by distance to the changed pixels), at least one pixel when ``grow`` > 0.

    Returns:
        (H, W) bool.
    """
    import cv2

    labels = _check_labels(labels, "layout")
    edited = _check_labels(edited, "edited layout")
    changed = labels != edited
    # A part whose outline changed moves as a whole: its unchanged middle (the inside of a widened mouth)
    # must travel with its edges. The surround (skin, background) only where it changed.
    for label in torch.unique(torch.cat([labels[changed], edited[changed]])).tolist():
        if label not in (FaceLabel.SKIN, FaceLabel.BACKGROUND):
            changed |= (labels == label) | (edited == label)
    area = int(changed.sum())
    if area == 0 or grow <= 0:
        return changed
    outside = np.ascontiguousarray((~changed).cpu().numpy().astype(np.uint8))
    distance = cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    ring = np.sort(distance[distance > 0])
    extra = min(len(ring), max(1, math.ceil(grow * area)))
    radius = max(1.0, float(ring[extra - 1])) if extra else 0.0
    return torch.from_numpy(distance <= radius).to(labels.device)


# ---------------------------------------------------------------------------------------------- search

def _sample(features: Tensor, positions: Tensor) -> Tensor:
    """Bilinear samples of (C, H, W) ``features`` at (..., 2) (x, y) pixel ``positions``: (C, ...)."""
    c, h, w = features.shape
    grid = positions.reshape(1, 1, -1, 2).clone()
    grid[..., 0] = grid[..., 0] * (2.0 / max(w - 1, 1)) - 1.0
    grid[..., 1] = grid[..., 1] * (2.0 / max(h - 1, 1)) - 1.0
    out = F.grid_sample(features[None], grid, mode="bilinear", padding_mode="border", align_corners=True)
    return out.reshape(c, *positions.shape[:-1])


class _Scorer:
    """Matching score s(p, t) = -|f_q(p) - f_k(t)|^2 - beta |onehot_q(p) - onehot_k(t)|_1 for the queries."""

    def __init__(self, key_features: Tensor, query_features: Tensor, label_penalty: float) -> None:
        self.keys = key_features
        self.queries = query_features  # (C, h, w)
        self.penalty = label_penalty
        self.size = key_features.shape[1:]

    def __call__(self, positions: Tensor) -> Tensor:
        """Scores of (M, h, w, 2) positions: (M, h, w)."""
        sampled = _sample(self.keys, positions)  # (C, M, h, w)
        diff = sampled - self.queries[:, None]
        geometry = (diff[:-NUM_LABELS] ** 2).sum(0)
        labels = diff[-NUM_LABELS:].abs().sum(0)
        return -(geometry + self.penalty * labels)

    def clamp(self, positions: Tensor) -> Tensor:
        h, w = self.size
        return torch.stack([positions[..., 0].clamp(0, w - 1), positions[..., 1].clamp(0, h - 1)], dim=-1)


def _keep_best(positions: Tensor, scores: Tensor, candidates: Tensor, candidate_scores: Tensor,
               m: int) -> tuple[Tensor, Tensor]:
    """The top-m of the current particles and the candidates, per query."""
    all_positions = torch.cat([positions, candidates])
    all_scores = torch.cat([scores, candidate_scores])
    best_scores, index = all_scores.topk(m, dim=0)
    best = torch.gather(all_positions, 0, index[..., None].expand(-1, -1, -1, 2))
    return best, best_scores


def _pair_scores(queries: Tensor, keys: Tensor, label_penalty: float) -> Tensor:
    """Every query's score against every key, (N, C) x (K, C) -> (N, K): the dense form of :class:`_Scorer`."""
    return -(torch.cdist(queries[:, :-NUM_LABELS], keys[:, :-NUM_LABELS]) ** 2
             + label_penalty * torch.cdist(queries[:, -NUM_LABELS:], keys[:, -NUM_LABELS:], p=1))


def _coarse_seed(scorer_keys: Tensor, queries: Tensor, box: tuple[int, int, int, int], config: WarpConfig) -> Tensor:
    """First particles from a dense all-pairs match on a coarse grid (claim 3), carried to full resolution.

    Returns:
        (M, h, w, 2) key positions for the queries in ``box``.
    """
    _, height, width = scorer_keys.shape
    factor = max(1, math.ceil(max(height, width) / config.coarse_side))
    keys = F.avg_pool2d(scorer_keys[None], factor, ceil_mode=True)[0]  # (C, Hc, Wc)
    coarse_queries = F.avg_pool2d(queries[None], factor, ceil_mode=True)[0]  # (C, hc, wc)
    c, _hc, wc = coarse_queries.shape
    flat_keys = keys.reshape(c, -1).T
    flat_queries = coarse_queries.reshape(c, -1).T
    score = _pair_scores(flat_queries, flat_keys, config.label_penalty)
    m = min(config.particles, flat_keys.shape[0])
    best = score.topk(m, dim=1).indices.T  # (M, hc*wc)
    key_w = keys.shape[2]
    # A coarse cell's centre in full-resolution pixels; the average of the pixels it pools.
    centre_x = (best % key_w).float() * factor + (factor - 1) / 2.0
    centre_y = torch.div(best, key_w, rounding_mode="floor").float() * factor + (factor - 1) / 2.0
    y0, x0, y1, x1 = box
    h, w = y1 - y0, x1 - x0
    qy = torch.arange(h, device=queries.device)
    qx = torch.arange(w, device=queries.device)
    cell = (qy // factor)[:, None] * wc + (qx // factor)[None, :]  # (h, w) coarse cell of each query
    offset_x = ((qx % factor).float() - (factor - 1) / 2.0)[None, :].expand(h, w)
    offset_y = ((qy % factor).float() - (factor - 1) / 2.0)[:, None].expand(h, w)
    # The query box starts at (x0, y0) but the coarse query grid starts at the box's corner, and the key grid
    # at the crop's: keep each query's displacement from its cell centre.
    px = centre_x[:, cell] + offset_x
    py = centre_y[:, cell] + offset_y
    if m < config.particles:
        px = px.repeat(math.ceil(config.particles / m), 1, 1)[: config.particles]
        py = py.repeat(math.ceil(config.particles / m), 1, 1)[: config.particles]
    return torch.stack([px, py], dim=-1)


def _shift(field_: Tensor, dy: int, dx: int) -> Tensor:
    """``out[..., y, x] = field_[..., y + dy, x + dx]`` with the edge repeated; field_ is (M, h, w, 2)."""
    _m, h, w, _ = field_.shape
    padded = F.pad(field_.permute(0, 3, 1, 2), (1, 1, 1, 1), mode="replicate")
    return padded[:, :, 1 + dy: 1 + dy + h, 1 + dx: 1 + dx + w].permute(0, 2, 3, 1)


def _search(scorer: _Scorer, start: Tensor, config: WarpConfig, generator: torch.Generator,
            side: int) -> tuple[Tensor, Tensor]:
    """Algorithm 1 from ``start`` particles; returns every iteration's top-M: (N*M, h, w, 2) and (N*M, h, w)."""
    m = config.particles
    positions = scorer.clamp(start)
    scores = scorer(positions)
    kept_positions, kept_scores = [], []
    directions = ((0, 1), (0, -1), (1, 0), (-1, 0))  # horizontal then vertical (col. 16)
    for i in range(config.iterations):
        for _ in range(config.propagation_rounds):
            for dy, dx in directions:
                # The neighbour's particles, moved back by the step: its offset tried at this query.
                step = torch.tensor([dx, dy], device=positions.device, dtype=positions.dtype)
                candidates = scorer.clamp(_shift(positions, dy, dx) - step)
                positions, scores = _keep_best(positions, scores, candidates, scorer(candidates), m)
        kept_positions.append(positions)
        kept_scores.append(scores)
        window = config.window * side * math.exp(-config.window_decay * i) if i < config.window_iterations else 0.0
        if window > 0.0 and config.random_samples:
            around = positions[:1].expand(config.random_samples, -1, -1, -1)
            jitter = (torch.rand(around.shape, generator=generator, device="cpu").to(around.device) * 2 - 1) * window
            candidates = scorer.clamp(around + jitter)
            positions, scores = _keep_best(positions, scores, candidates, scorer(candidates), m)
    return torch.cat(kept_positions), torch.cat(kept_scores)


def _match_features(labels: Tensor, edited: Tensor, box: tuple[int, int, int, int],
                    config: WarpConfig) -> tuple[Tensor, Tensor]:
    """The key features (the whole original layout) and the query features (the edited layout in ``box``)."""
    y0, x0, y1, x1 = box
    settings = {"region_scale": config.region_scale, "reach": config.reach, "offset_blur": config.offset_blur,
                "global_weight": config.global_weight}
    return layout_features(labels, **settings), layout_features(edited, **settings)[:, y0:y1, x0:x1]


def mask_box(mask: Tensor) -> tuple[int, int, int, int] | None:
    """(y0, x0, y1, x1) of a (H, W) mask's pixels, ends exclusive; None when it is empty."""
    rows = torch.nonzero(mask.any(dim=1)).flatten()
    cols = torch.nonzero(mask.any(dim=0)).flatten()
    if not len(rows):
        return None
    return int(rows[0]), int(cols[0]), int(rows[-1]) + 1, int(cols[-1]) + 1


def _unfilled(labels: Tensor, edited: Tensor, mask: Tensor, box: tuple[int, int, int, int],
              best: Tensor) -> tuple[Tensor, dict[str, float]]:
    """Mask pixels whose best key lies in another region, and per edited region the share of its mask
    pixels the source cannot supply: those copied from another region, or the shortfall of the source's
    region area against the edited one's (a part stretched to three times its size is two thirds empty)."""
    y0, x0, y1, x1 = box
    key_labels = labels[best[..., 1].round().long(), best[..., 0].round().long()]
    inside = mask[y0:y1, x0:x1]
    query_labels = edited[y0:y1, x0:x1]
    wrong = (key_labels != query_labels) & inside
    unfilled = torch.zeros_like(mask)
    unfilled[y0:y1, x0:x1] = wrong
    source_area = torch.bincount(labels.reshape(-1), minlength=NUM_LABELS).float()
    edited_area = torch.bincount(edited.reshape(-1), minlength=NUM_LABELS).float()
    fractions = {}
    for label in torch.unique(query_labels[inside]).tolist():
        region = inside & (query_labels == label)
        shortfall = 0.0
        if label not in (FaceLabel.SKIN, FaceLabel.BACKGROUND):
            shortfall = max(0.0, 1.0 - float(source_area[label] / edited_area[label]))
        fractions[LABEL_NAMES[label]] = max(float(wrong[region].float().mean()), shortfall)
    return unfilled, fractions


def _warp(image: Tensor, keys: Tensor, scores: Tensor, gamma: float) -> tuple[Tensor, Tensor]:
    """Eq. 4: r(p) = sum_q softmax(gamma s)_q x(q) over the keys; returns (3, h, w) and the (K, h, w) weights."""
    weights = torch.softmax(gamma * scores, dim=0)
    sampled = _sample(image, keys)  # (3, K, h, w)
    return (sampled * weights[None]).sum(1), weights


def layout_warp(image: Tensor, labels: Tensor, edited: Tensor, *, config: WarpConfig | None = None,
                mask: Tensor | None = None) -> LayoutWarp:
    """Warp ``image`` (whose layout is ``labels``) to the ``edited`` layout, inside the edit mask only.

    Args:
        image: (3, H, W) float crop.
        labels: (H, W) its layout.
        edited: (H, W) the edited layout.
        config: search settings.
        mask: the edit mask (default :func:`edit_mask` of the two layouts).

    Returns:
        The locally warped image (Eq. 3), the mask, the unfilled pixels and the keys.

    Example:
        >>> labels = torch.zeros(16, 16, dtype=torch.long); labels[4:8, 4:8] = 7
        >>> edited = torch.zeros_like(labels); edited[5:9, 4:8] = 7
        >>> out = layout_warp(torch.rand(3, 16, 16), labels, edited)
        >>> out.image.shape
        torch.Size([3, 16, 16])
    """
    config = config or WarpConfig()
    labels = _check_labels(labels, "layout")
    edited = _check_labels(edited, "edited layout")
    if image.ndim != 3 or image.shape[0] != 3 or image.shape[1:] != labels.shape or edited.shape != labels.shape:
        raise VfxError("Image and layouts do not match", expected="a (3, H, W) image and two (H, W) layouts",
                       found=f"image {tuple(image.shape)}, layout {tuple(labels.shape)}, edited {tuple(edited.shape)}",
                       fix="pass the crop and both layouts at one size (the retouch resolution)")
    device = image.device
    labels, edited = labels.to(device), edited.to(device)
    mask = edit_mask(labels, edited, grow=config.mask_grow) if mask is None else mask.to(device=device, dtype=torch.bool)
    box = mask_box(mask)
    if box is None:
        empty = torch.zeros(0, 0, 0, device=device)
        return LayoutWarp(image=image.clone(), mask=mask, unfilled=torch.zeros_like(mask), keys=empty[..., None],
                          weights=empty, box=(0, 0, 0, 0))
    y0, x0, y1, x1 = box
    keys, queries = _match_features(labels, edited, box, config)
    scorer = _Scorer(keys, queries, config.label_penalty)
    start = _coarse_seed(keys, queries, box, config)
    generator = torch.Generator().manual_seed(config.seed)
    positions, scores = _search(scorer, start, config, generator, max(labels.shape))
    warped_box, weights = _warp(image, positions, scores, config.gamma)
    out = image.clone()
    inside = mask[y0:y1, x0:x1]
    out[:, y0:y1, x0:x1] = torch.where(inside[None], warped_box.to(image.dtype), image[:, y0:y1, x0:x1])
    best = torch.gather(positions, 0, scores.argmax(0, keepdim=True)[..., None].expand(-1, -1, -1, 2))[0]
    unfilled, fractions = _unfilled(labels, edited, mask, box, best)
    return LayoutWarp(image=out, mask=mask, unfilled=unfilled, keys=positions, weights=weights, box=box,
                      unfilled_fraction=fractions)


def dense_layout_warp(image: Tensor, labels: Tensor, edited: Tensor, *, config: WarpConfig | None = None,
                      mask: Tensor | None = None) -> Tensor:
    """The same warp with dense attention: every query against every pixel (the quadratic baseline).

    For tests and ``tools/bench_layout_warp.py`` only: memory is (queries x pixels) floats.

    Returns:
        (3, H, W) the locally warped image (Eq. 3).
    """
    config = config or WarpConfig()
    labels = _check_labels(labels, "layout").to(image.device)
    edited = _check_labels(edited, "edited layout").to(image.device)
    mask = edit_mask(labels, edited, grow=config.mask_grow) if mask is None else mask.to(image.device, torch.bool)
    box = mask_box(mask)
    if box is None:
        return image.clone()
    y0, x0, y1, x1 = box
    keys, queries = _match_features(labels, edited, box, config)
    c = keys.shape[0]
    flat_keys = keys.reshape(c, -1).T
    flat_queries = queries.reshape(c, -1).T
    score = _pair_scores(flat_queries, flat_keys, config.label_penalty)
    attention = torch.softmax(config.gamma * score, dim=1)
    warped = (attention @ image.reshape(3, -1).T).T.reshape(3, y1 - y0, x1 - x0)
    out = image.clone()
    out[:, y0:y1, x0:x1] = torch.where(mask[y0:y1, x0:x1][None], warped, image[:, y0:y1, x0:x1])
    return out

"""face-alignment's S3FD detector and 2D-FAN heatmap network in torch, batched on CPU or CUDA; weights from a local
folder, never downloaded."""

from __future__ import annotations

import logging
import re
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np

from vfx.errors import ConfigError
from vfx.face.landmark.base import Landmarker, _check_boxes, to_uint8_rgb
from vfx.face.types import NUM_LANDMARKS, FaceBox

if TYPE_CHECKING:
    import torch


logger = logging.getLogger(__name__)

FAN_WEIGHTS_FILE = "2DFAN4-11f355bf06.pth.tar"
"""face-alignment 1.5's 2D-FAN (4 stacks) state dict: the basename of its ``models_urls['2DFAN-4']``."""

FAN_LEGACY_WEIGHTS_FILE = "2DFAN4-cd938726ad.zip"
"""The TorchScript 2D-FAN that face-alignment 1.3/1.4 cached; used when only this one is on disk."""

SFD_WEIGHTS_FILE = "s3fd-619a316812.pth"
"""face-alignment's S3FD face detector state dict: the basename of its ``models_urls['s3fd']``."""

_FAN_URL = "https://www.adrianbulat.com/downloads/python-fan/" + FAN_WEIGHTS_FILE
_SFD_URL = "https://www.adrianbulat.com/downloads/python-fan/" + SFD_WEIGHTS_FILE

#: face-alignment's centre/scale convention for a detector box (``face_alignment.utils``): the crop is
#: centred 12 % of the box height above the box centre and spans 200 * (w + h) / 195 pixels.
_FAN_CROP = 256
_FAN_HEATMAP = 64
_FAN_REFERENCE_SCALE = 195.0
_FAN_SCALE_FACTOR = 200.0
_FAN_CENTRE_Y_OFFSET = 0.12
_SFD_MEAN_BGR = (104.0, 117.0, 123.0)
_SFD_NMS_IOU = 0.3




# --------------------------------------------------------------------------------------------------------------


def _default_torch_models_dir() -> Path:
    import torch

    return Path(torch.hub.get_dir()) / "checkpoints"


def _torch_state_dict(path: Path, device: str) -> dict[str, Any]:
    import torch

    try:
        state = torch.load(path, map_location=device, weights_only=True)
    except Exception as exc:  # torch raises a zoo of types (pickle, zip, RuntimeError) for a bad file
        raise ConfigError(
            f"Cannot load the weights file {path}",
            expected="a PyTorch state dict as face-alignment publishes it",
            found=f"{type(exc).__name__}: {str(exc).strip().splitlines()[0] if str(exc).strip() else ''}",
            fix="download the file again (a truncated download is the usual cause)",
        ) from exc
    if isinstance(state, dict) and isinstance(state.get("state_dict"), dict):
        state = state["state_dict"]
    if not isinstance(state, dict):
        raise ConfigError(f"Cannot load the weights file {path}", expected="a state dict", found=type(state).__name__,
                          fix="use the weights file as face-alignment publishes it (download it again)")
    # Checkpoints saved from nn.DataParallel prefix every key with "module.".
    return {k.removeprefix("module."): v for k, v in state.items()}


class FanLandmarker(Landmarker):
    """face-alignment's S3FD detector and 2D-FAN 68-point heatmap network, batched, on CPU or CUDA.

    Args:
        models_dir: folder with ``2DFAN4-11f355bf06.pth.tar`` (or face-alignment 1.3/1.4's TorchScript
            ``2DFAN4-cd938726ad.zip``) and ``s3fd-619a316812.pth``; default: torch's hub cache,
            ``torch.hub.get_dir()/checkpoints``, where face-alignment itself caches them. Nothing is ever
            downloaded.
        device: ``"cpu"``, ``"cuda"`` or ``"cuda:N"``. CUDA runs channels-last under float16 autocast.
        batch_size: most crops per network call; :meth:`localise` splits larger calls into chunks.
        detector_threshold: S3FD probability a box needs (face-alignment's default 0.5).
        flip_input: also run each crop mirrored and average the two heatmaps (face-alignment's
            ``flip_input``): steadier points for 2x the network time.

    Raises:
        ConfigError: missing or unreadable weights (the message names each file and the folder), a bad device.

    Convention:
        Images (H, W, 3) uint8 RGB; boxes and points in plate pixels. A box is cropped the way face-alignment
        does (centre 12 % of the box height above the box centre, side ``200 * (w + h) / 195``, resized to
        256²) but with an exact sub-pixel affine warp instead of face-alignment's whole-pixel crop, and
        heatmap peaks map back without its integer truncation: shifting a box by a fraction of a pixel moves
        the crop by exactly that, which jitter averaging relies on. FAN expects S3FD-like boxes (forehead to
        chin); dlib's tighter boxes would want ``FaceBox.scaled`` first.
    """

    name = "fan"

    def __init__(
        self,
        models_dir: Path | None = None,
        device: str = "cpu",
        batch_size: int = 16,
        *,
        detector_threshold: float = 0.5,
        flip_input: bool = False,
    ) -> None:
        import torch

        if not (isinstance(batch_size, int) and batch_size >= 1):
            raise ConfigError("Invalid FAN batch size", expected="an integer >= 1", found=repr(batch_size),
                              fix="pass batch_size=16 (the default) or another whole number >= 1")
        if not 0.0 <= detector_threshold <= 1.0:
            raise ConfigError(
                "Invalid detector threshold", expected="a probability in [0, 1]", found=repr(detector_threshold),
                fix="pass detector_threshold=0.5 (the default) or another value from 0 to 1",
            )
        self.device = self._check_device(device)
        self.batch_size = batch_size
        self.detector_threshold = float(detector_threshold)
        self.flip_input = bool(flip_input)
        self._cuda = self.device.startswith("cuda")
        self.models_dir = Path(models_dir).expanduser() if models_dir is not None else _default_torch_models_dir()
        fan_path, sfd_path = self._find_weights(self.models_dir)
        self.fan_path, self.sfd_path = fan_path, sfd_path
        self._net = self._load_fan(fan_path)
        self._sfd = self._load_sfd(sfd_path)
        if self._cuda:
            torch.backends.cudnn.benchmark = True

    @staticmethod
    def _check_device(device: str) -> str:
        import torch

        if not isinstance(device, str) or not re.fullmatch(r"cpu|cuda(:\d+)?", device):
            raise ConfigError(
                "Invalid device for FAN",
                expected="'cpu', 'cuda' or 'cuda:N'",
                found=repr(device),
                fix="pass --device cpu or --device cuda",
            )
        if device.startswith("cuda"):
            index = int(device.partition(":")[2] or 0)
            if not torch.cuda.is_available() or index >= torch.cuda.device_count():
                raise ConfigError(
                    f"CUDA device {device!r} is not available",
                    expected="a machine with an NVIDIA GPU and a CUDA build of torch",
                    found=f"torch {torch.__version__}, {torch.cuda.device_count()} CUDA device(s)",
                    fix="use --device cpu",
                )
        return device

    @staticmethod
    def _find_weights(folder: Path) -> tuple[Path, Path]:
        fan, legacy, sfd = folder / FAN_WEIGHTS_FILE, folder / FAN_LEGACY_WEIGHTS_FILE, folder / SFD_WEIGHTS_FILE
        missing = []
        if not fan.is_file() and not legacy.is_file():
            missing.append(f"{FAN_WEIGHTS_FILE} (from {_FAN_URL})")
        if not sfd.is_file():
            missing.append(f"{SFD_WEIGHTS_FILE} (from {_SFD_URL})")
        if missing:
            raise ConfigError(
                "FAN landmark weights are missing",
                expected=f"{FAN_WEIGHTS_FILE} and {SFD_WEIGHTS_FILE} in {folder}",
                found=f"missing in {folder}: " + "; ".join(missing),
                fix=(
                    f"download the missing file(s) on a machine with network access and copy them into {folder}, "
                    "or pass --models-dir with the folder that holds them (vfx never downloads at run time)"
                ),
            )
        return (fan if fan.is_file() else legacy), sfd

    def _load_fan(self, path: Path) -> torch.nn.Module:
        import torch
        from face_alignment.models import FAN

        if path.name == FAN_LEGACY_WEIGHTS_FILE:
            try:
                net = torch.jit.load(str(path), map_location=self.device)
            except Exception as exc:
                raise ConfigError(f"Cannot load the TorchScript FAN {path}", found=str(exc).splitlines()[0],
                                  expected=f"face-alignment's TorchScript FAN ({FAN_LEGACY_WEIGHTS_FILE})",
                                  fix=f"put {FAN_WEIGHTS_FILE} ({_FAN_URL}) beside it: it is used first") from exc
        else:
            state = _torch_state_dict(path, self.device)
            # The stack count is in the keys ("l0.weight" .. "l3.weight" for 2DFAN-4), so smaller test
            # networks of the same architecture load too.
            stacks = sum(1 for k in state if re.fullmatch(r"l\d+\.weight", k))
            if stacks == 0:
                raise ConfigError(
                    f"Cannot load the FAN weights {path}",
                    expected="a face_alignment.models.FAN state dict (keys l0.weight ...)",
                    found=f"{len(state)} keys, none a FAN heatmap head",
                    fix=f"use face-alignment's {FAN_WEIGHTS_FILE}",
                )
            net = FAN(stacks)
            try:
                net.load_state_dict(state)
            except RuntimeError as exc:
                raise ConfigError(f"Cannot load the FAN weights {path}", found=str(exc).splitlines()[0],
                                  expected="a state dict whose layers match face_alignment.models.FAN",
                                  fix=f"download {FAN_WEIGHTS_FILE} again from {_FAN_URL}") from exc
            logger.info("loaded 2D-FAN (%d stacks) from %s", stacks, path)
        net = net.to(self.device).eval()
        if self._cuda:
            net = net.to(memory_format=torch.channels_last)
        return net

    def _load_sfd(self, path: Path) -> torch.nn.Module:
        import torch
        from face_alignment.detection.sfd.net_s3fd import s3fd

        state = _torch_state_dict(path, self.device)
        net = s3fd()
        try:
            net.load_state_dict(state)
        except RuntimeError as exc:
            raise ConfigError(f"Cannot load the S3FD weights {path}", found=str(exc).splitlines()[0],
                              expected=f"face-alignment's S3FD state dict ({SFD_WEIGHTS_FILE})",
                              fix=f"download {SFD_WEIGHTS_FILE} again from {_SFD_URL}") from exc
        net = net.to(self.device).eval()
        if self._cuda:
            net = net.to(memory_format=torch.channels_last)
        logger.info("loaded S3FD from %s", path)
        return net

    def _autocast(self) -> Any:
        import contextlib

        import torch

        return torch.autocast("cuda", dtype=torch.float16) if self._cuda else contextlib.nullcontext()

    # -- detection --------------------------------------------------------------------------------------------

    def _detect_work(self, pixels: np.ndarray, *, scale: float) -> list[FaceBox]:
        import torch

        with torch.inference_mode():
            x = torch.from_numpy(pixels).to(self.device).permute(2, 0, 1)[None].float()
            # S3FD was trained on Caffe-style BGR minus the ImageNet means.
            x = x.flip(1) - torch.tensor(_SFD_MEAN_BGR, device=self.device).view(1, 3, 1, 1)
            if self._cuda:
                x = x.contiguous(memory_format=torch.channels_last)
            with self._autocast():
                outputs = self._sfd(x)
            # outputs alternate (class logits, box regression) per level; softmax in float32 even under autocast.
            levels = [
                (outputs[2 * i].float().softmax(1)[0, 1].cpu().numpy(), outputs[2 * i + 1].float()[0].cpu().numpy())
                for i in range(len(outputs) // 2)
            ]
            dets = _sfd_decode(levels, self.detector_threshold)
        keep = _nms(dets, _SFD_NMS_IOU)
        return [FaceBox(*map(float, dets[k, :4]), score=float(dets[k, 4])) for k in keep]

    # -- landmarks --------------------------------------------------------------------------------------------

    def localise(self, image: np.ndarray, boxes: Sequence[FaceBox]) -> np.ndarray:
        import torch

        boxes = _check_boxes(boxes)
        if not boxes:
            return np.empty((0, NUM_LANDMARKS, 2), dtype=np.float64)
        pixels = to_uint8_rgb(image)
        centres, sides = _fan_centre_side(boxes)
        crops = np.stack([_fan_crop(pixels, c, s) for c, s in zip(centres, sides, strict=True)])
        heatmaps = []
        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                heatmaps.append(self._heatmaps(crops[start : start + self.batch_size]))
        peaks = _heatmap_peaks(np.concatenate(heatmaps))  # (N, 68, 2) in heatmap units, [0, 64)
        # Heatmap [0, 64] spans the crop square [c - side/2, c + side/2] (face-alignment's transform()).
        points = centres[:, None, :] + (peaks / _FAN_HEATMAP - 0.5) * sides[:, None, None]
        return points.astype(np.float64)

    def _heatmaps(self, crops: np.ndarray) -> np.ndarray:
        """(B, 256, 256, 3) uint8 crops -> (B, 68, 64, 64) float32 heatmaps (numpy, on the CPU)."""
        import torch

        x = torch.from_numpy(crops).to(self.device, non_blocking=True).permute(0, 3, 1, 2).float().div_(255.0)
        if self.flip_input:
            x = torch.cat([x, x.flip(3)])
        if self._cuda:
            x = x.contiguous(memory_format=torch.channels_last)
        with self._autocast():
            out = self._net(x)
        out = (out[-1] if isinstance(out, list | tuple) else out).float()
        if self.flip_input:
            from face_alignment.utils import shuffle_lr

            n = len(crops)
            out = out[:n] + shuffle_lr(out[n:]).flip(3)
        return out.cpu().numpy()

    def __repr__(self) -> str:
        return f"FanLandmarker(device={self.device!r}, batch_size={self.batch_size}, fan={str(self.fan_path)!r})"


def _fan_centre_side(boxes: Sequence[FaceBox]) -> tuple[np.ndarray, np.ndarray]:
    """face-alignment's crop centre (N, 2) and crop side in plate pixels (N,) for each box."""
    arr = np.array([b.as_array() for b in boxes], dtype=np.float64).reshape(-1, 4)
    w, h = arr[:, 2] - arr[:, 0], arr[:, 3] - arr[:, 1]
    centres = np.stack([(arr[:, 0] + arr[:, 2]) / 2, (arr[:, 1] + arr[:, 3]) / 2 - h * _FAN_CENTRE_Y_OFFSET], axis=1)
    sides = _FAN_SCALE_FACTOR * (w + h) / _FAN_REFERENCE_SCALE
    return centres, sides


def _fan_crop(pixels: np.ndarray, centre: np.ndarray, side: float) -> np.ndarray:
    """The 256² crop of the square ``centre ± side/2``: crop pixel j samples plate c + ((j + 0.5) / 256 - 0.5) side.

    This is the continuous form of face-alignment's ``crop`` (which snaps the square to whole pixels).
    """
    k = _FAN_CROP / side
    m = np.array(
        [[k, 0.0, (_FAN_CROP - 1) / 2 - centre[0] * k], [0.0, k, (_FAN_CROP - 1) / 2 - centre[1] * k]], dtype=np.float64
    )
    # Bilinear like face-alignment's cv2.resize(INTER_LINEAR): the network saw such crops in training.
    return cv2.warpAffine(
        pixels, m, (_FAN_CROP, _FAN_CROP), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT, borderValue=0
    )


def _heatmap_peaks(heatmaps: np.ndarray) -> np.ndarray:
    """Sub-pixel peaks (N, C, 2) of (N, C, H, W) heatmaps, in continuous heatmap units (cell i centred at i + 0.5).

    The same decoding as face-alignment's ``get_preds_fromhm``: the arg-max, moved a quarter cell towards the
    larger neighbour on each axis (not on the border), vectorised and without its integer truncation.
    """
    n, c, h, w = heatmaps.shape
    flat = heatmaps.reshape(n, c, h * w)
    idx = flat.argmax(axis=-1)
    x, y = idx % w, idx // w
    xi, yi = np.clip(x, 1, w - 2), np.clip(y, 1, h - 2)
    ni, ci = np.ogrid[:n, :c]
    dx = np.sign(heatmaps[ni, ci, y, xi + 1] - heatmaps[ni, ci, y, xi - 1])
    dy = np.sign(heatmaps[ni, ci, yi + 1, x] - heatmaps[ni, ci, yi - 1, x])
    inner = (x > 0) & (x < w - 1) & (y > 0) & (y < h - 1)
    px = x + 0.5 + np.where(inner, 0.25 * dx, 0.0)
    py = y + 0.5 + np.where(inner, 0.25 * dy, 0.0)
    return np.stack([px, py], axis=-1).astype(np.float64)


def _sfd_decode(levels: list[tuple[np.ndarray, np.ndarray]], threshold: float) -> np.ndarray:
    """S3FD anchors to boxes (K, 5) x0 y0 x1 y1 score, only those scoring at least ``threshold``.

    ``levels[i]`` is (face probability (H, W), regression (4, H, W)) at stride 4 * 2**i with square anchors of
    4 * stride, as face-alignment's ``get_predictions`` decodes them. Filtering before NMS gives what filtering
    after does (a box can only suppress lower-scoring ones) and keeps NMS small.
    """
    out = []
    for i, (prob, reg) in enumerate(levels):
        stride = 2 ** (i + 2)
        ys, xs = np.nonzero(prob >= max(threshold, 0.05))
        if len(ys) == 0:
            continue
        anchor = 4.0 * stride
        loc = reg[:, ys, xs].T.astype(np.float64)  # (K, 4)
        cx = stride / 2 + xs * stride + loc[:, 0] * 0.1 * anchor
        cy = stride / 2 + ys * stride + loc[:, 1] * 0.1 * anchor
        bw, bh = anchor * np.exp(loc[:, 2] * 0.2), anchor * np.exp(loc[:, 3] * 0.2)
        out.append(np.stack([cx - bw / 2, cy - bh / 2, cx + bw / 2, cy + bh / 2, prob[ys, xs]], axis=1))
    return np.concatenate(out) if out else np.empty((0, 5))


def _nms(dets: np.ndarray, iou: float) -> list[int]:
    """Greedy non-maximum suppression (face-alignment's, with its +1 pixel areas); indices, best first."""
    if len(dets) == 0:
        return []
    x0, y0, x1, y1, scores = dets.T
    areas = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = scores.argsort()[::-1]
    keep = []
    while order.size:
        i = order[0]
        keep.append(int(i))
        w = np.maximum(0.0, np.minimum(x1[i], x1[order[1:]]) - np.maximum(x0[i], x0[order[1:]]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[order[1:]]) - np.maximum(y0[i], y0[order[1:]]) + 1)
        overlap = w * h / (areas[i] + areas[order[1:]] - w * h)
        order = order[1:][overlap <= iou]
    return keep

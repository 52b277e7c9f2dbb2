"""Write the baseline files of every schema-stamped file the toolkit writes, with the code of this checkout.

Run only when a schema gets a new version (keep the old baselines: they are what users' disks hold):

    OMP_NUM_THREADS=1 .venv/bin/python tests/baselines/make_baselines.py tests/baselines

Everything is tiny (width multipliers of 0.05, 8x8 crops) and synthetic; nothing comes from shot data.
``tests/test_stamped.py`` loads each of them with the current readers.
"""

from __future__ import annotations

import sys
import tempfile
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch


def make_checkpoint(out: Path) -> Path:
    from vfx.comb.checkpoint import Manifest, PersonaRecord, save_checkpoint
    from vfx.comb.network import CombConfig, CombNetwork

    torch.manual_seed(0)
    config = CombConfig(resolution=8, width=0.01, personas=("p0",))
    net = CombNetwork(config)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    net(torch.rand(1, 3, 4, 4), "p0").mean().backward()
    optimizer.step()
    manifest = Manifest(config, (PersonaRecord("p0", ("facesets/p0",), "p0 agreed to this test, 2026", "0f" * 8),),
                        level=0, alpha=1.0, step=1, level_step=1, lr=1e-3, train={"batch_size": 1},
                        losses=[[1.0, 0.0, 0.25]])
    generators = {"batches": torch.Generator().manual_seed(1)}
    return save_checkpoint(out / "comb_v1", net, optimizer, generators, manifest, keep=1)


def make_edit_vector(out: Path) -> Path:
    from vfx.edit.vectors import EditVector, save_edit_vector

    delta = torch.linspace(-1.0, 1.0, 8)
    vector = EditVector(delta=delta, persona="p0", fingerprint="0123456789abcdef", classes=(5, 6), resolution=8,
                        settings={"steps": 2}, source={"keyframe": 1001}, metrics={"iou": np.float32(0.5)})
    return save_edit_vector(out / "edit_vector_v1.vfxedit", vector)


def make_seg_head(out: Path) -> Path:
    from vfx.edit.segment import SegHead, SegHeadInfo, save_seg_head

    torch.manual_seed(0)
    head = SegHead((4, 2), classes=8, hidden=(4, 4))
    info = SegHeadInfo(persona="p0", fingerprint="0123456789abcdef", channels=(4, 2), hidden=(4, 4), resolution=8,
                       steps=2, seconds=0.5, train_frames=1, held_frames=0)
    return save_seg_head(out / "seghead_v1", head, info)


def make_refiner(out: Path) -> Path:
    from vfx.retouch.refiner import LayoutRefiner, RefinerConfig, TrainedRefiner, save_refiner

    config = RefinerConfig(width=0.05, depth=1, bottom_up_levels=1, z_dim=4, mapping_layers=1, disc_scales=1,
                           disc_layers=1)
    torch.manual_seed(0)
    trained = TrainedRefiner(LayoutRefiner(config), config, steps=2, size=(8, 8),
                             history=[{"step": 2, "seconds": 0.5, "g_total": 1.0}])
    return save_refiner(out / "refiner_v1", trained)


def make_faceset(out: Path) -> Path:
    import cv2

    from vfx.faceset.store import FaceRecord, Faceset, FacesetInfo

    info = FacesetInfo(source="/plates/sh010.####.exr", source_kind="sequence", crop_size=8, landmarker="dlib",
                       jitter_beta=0.05, jitter_shifts=9, smooth_window=5, forehead_raise=0.0,
                       colorspace="sRGB Encoded Rec.709 (sRGB)", shot="sh010", vfx_version="0.1.0")
    faceset = Faceset.create(out / "faceset_v1", info)
    crop = faceset.crop_path(0, 1001)
    crop.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(crop), np.full((8, 8, 3), 128, np.uint8))
    points = np.stack([np.linspace(1, 7, 68), np.linspace(7, 1, 68)], axis=1)
    matrix = np.array([[0.5, 0.0, -2.0], [0.0, 0.5, -3.0]])
    faceset.write_index([
        FaceRecord(1001, 0, "ok", crop=Faceset.crop_name(0, 1001), box=(4.0, 6.0, 20.0, 22.0), score=0.9,
                   landmarks=points * 2 + 4, landmarks_raw=points * 2 + 4, crop_landmarks=points, matrix=matrix),
        FaceRecord(1002, None, "no_face"),
    ])
    return faceset.folder


def make_task_record(out: Path) -> Path:
    from vfx.farm.task import TaskRecord

    record = TaskRecord(task="swap.1001-1004", stage="swap", frames="1001-1004", state="done", host="render01",
                        pid=4242, attempt=1, started=1767225600.0, finished=1767225660.5, frames_total=4,
                        frames_done=3, frames_skipped=1, exit_code=0, message="", shot_hash="0f" * 8)
    path = out / "task_record_v1.json"
    record.write(path)
    return path


def make_comp_package(out: Path) -> Path:
    """A 2-frame 8x8 PNG plate, rendered frames through the rendered-frame contract, and its package."""
    from vfx.export import RenderInfo, frame_timecode, write_comp_package, write_rendered_frame
    from vfx.io.image import write_image
    from vfx.shot import load_shot, save_shot
    from vfx.shot.schema import OutputsConfig, PlateConfig, Shot

    with tempfile.TemporaryDirectory(prefix="vfx_baseline_") as scratch:
        root = Path(scratch)
        for frame in (1001, 1002):
            write_image(root / "plates" / f"sh010.{frame}.png", np.full((8, 8, 3), 0.5, np.float32),
                        channels=("R", "G", "B"), dtype="uint8")
        shot = Shot(name="sh010", plate=PlateConfig(path=Path("plates/sh010.####.png"), fps=Fraction(25)),
                    outputs=OutputsConfig(exr=Path("out/sh010_swap.####.exr"), comp_package=(out / "comp_v1").absolute()))
        save_shot(shot, root / "sh010.yaml")
        shot = load_shot(root / "sh010.yaml")
        for frame in (1001, 1002):
            matte = np.zeros((8, 8), np.float32)
            matte[2:6, 2:6] = 1.0 if frame == 1001 else 0.0
            beauty = np.full((8, 8, 3), 0.5, np.float32) * (1 - matte[:, :, None]) + 0.9 * matte[:, :, None]
            face = frame == 1001
            info = RenderInfo(frame=frame, persona="p0", model="runs/sh010@1", blend="enhanced",
                              matrix=np.array([[2.0, 0.0, -4.0], [0.0, 2.0, -4.0]]) if face else None, crop_size=8,
                              face_box=(2, 2, 6, 6) if face else None)
            write_rendered_frame(Path(str(shot.outputs.exr).replace("####", str(frame))), beauty, matte, info,
                                 timecode=frame_timecode(frame, Fraction(25)), fps=Fraction(25),
                                 colorspace=shot.plate.colorspace, shot_hash=shot.content_hash())
        summary = write_comp_package(shot, progress=False)
    # Only the two stamped JSON files are baselines; the EXRs and the Nuke script are not schema-stamped.
    for path in sorted(summary.layout.folder.rglob("*"), reverse=True):
        if path.is_dir():
            path.rmdir() if not any(path.iterdir()) else None
        elif path.name not in ("package.json", "transforms.json"):
            path.unlink()
    return summary.layout.folder


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    for make in (make_checkpoint, make_edit_vector, make_seg_head, make_refiner, make_faceset, make_task_record,
                 make_comp_package):
        print(make.__name__, make(out))


if __name__ == "__main__":
    main(Path(sys.argv[1]))

"""Retouch: layout edits, the sparse-attention layout warp, the pipeline and its bad inputs."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from tests.face_shapes import MEAN_SHAPE
from vfx.errors import ConfigError, MediaError
from vfx.eval.retouch import known_warp_case
from vfx.face.layout import LABEL_COLOURS, FaceLabel, face_layout
from vfx.face.mask import face_axes
from vfx.retouch.edits import (
    GroupKey,
    PaintedMap,
    edit_landmarks,
    edited_layout,
    edits_from_shot,
    group_field,
    read_painted_map,
    select_edits,
)
from vfx.retouch.warp import WarpConfig, dense_layout_warp, edit_mask, layout_warp
from vfx.utils.psnr import masked_psnr

SIZE = 128


def _landmarks(size: int = SIZE) -> np.ndarray:
    """The mean face framed like an aligned crop (eyes about a quarter of the crop apart)."""
    return MEAN_SHAPE * (0.5 * size) + np.array([0.25 * size, 0.22 * size])


def _face_image(labels: np.ndarray, seed: int = 0) -> np.ndarray:
    """A crop whose colours follow the layout, with smooth texture (so a misplaced pixel shows)."""
    rng = np.random.default_rng(seed)
    base = LABEL_COLOURS[labels].astype(np.float32) / 255.0
    noise = cv2.GaussianBlur(rng.normal(0, 1, labels.shape + (3,)).astype(np.float32), (0, 0), 1.5)
    return np.clip(0.8 * base + 0.1 + 0.15 * noise, 0, 1).astype(np.float32)


# ---------------------------------------------------------------------------------------------- edits

def test_edits_parse_with_constant_and_keyed_values():
    edits = edits_from_shot([
        {"name": "smile", "group": "mouth", "scale": 1.1},
        {"name": "grow", "group": "mouth", "keys": [{"frame": 1001}, {"frame": 1011, "scale": [1.2, 1.0]}]},
        {"name": "close", "kind": "relabel", "source": "mouth", "target": "upper_lip"},
    ])
    assert edits[0].at(5000).scale == (1.1, 1.1)
    assert edits[1].at(1000).scale == (1.0, 1.0) and edits[1].at(1020).scale == (1.2, 1.0)
    assert edits[1].at(1006).scale == pytest.approx((1.1, 1.0))
    assert [e.name for e in select_edits(edits, ["close"])] == ["close"]
    with pytest.raises(ConfigError, match="smile"):
        select_edits(edits, ["nope"])


def test_an_unknown_group_or_region_lists_the_valid_names():
    with pytest.raises(ConfigError) as err:
        edits_from_shot([{"name": "x", "group": "ear", "move": [0, 0.1]}])
    assert "ear" in str(err.value) and "upper_lip" in str(err.value) and "left_brow" in str(err.value)
    with pytest.raises(ConfigError) as err:
        edits_from_shot([{"name": "y", "kind": "relabel", "source": "freckle", "target": "skin"}])
    assert "freckle" in str(err.value) and "lower_lip" in str(err.value) and "background" in str(err.value)
    with pytest.raises(ConfigError, match="increasing"):
        edits_from_shot([{"group": "mouth", "keys": [{"frame": 5}, {"frame": 2}]}])
    with pytest.raises(ConfigError, match="share a name"):
        edits_from_shot([{"name": "a", "group": "nose", "scale": 1.1}, {"name": "a", "group": "jaw", "scale": 0.9}])


def test_group_edits_move_in_inter_ocular_distances_about_the_group_centre():
    points = _landmarks()
    _, up, distance = face_axes(points)
    moved = edit_landmarks(points, "mouth", GroupKey(frame=0, move=(0.0, 0.1)))
    assert np.allclose(moved[48:68] - points[48:68], -0.1 * distance * up, atol=1e-6)  # down the face
    assert np.array_equal(moved[:48], points[:48])
    wider = edit_landmarks(points, "mouth", GroupKey(frame=0, scale=(1.5, 1.0)))
    assert np.allclose(wider[48:68].mean(0), points[48:68].mean(0))
    # The mean face is slightly tilted: the scale is along its own axes, so along the image's only nearly.
    assert np.ptp(wider[48:68, 0]) == pytest.approx(1.5 * np.ptp(points[48:68, 0]), rel=1e-2)
    assert np.ptp(wider[48:68, 1]) == pytest.approx(np.ptp(points[48:68, 1]), rel=1e-2)


def test_group_field_moves_the_group_exactly_and_leaves_the_far_face_alone():
    points = _landmarks()
    field, moved = group_field(points, "mouth", GroupKey(frame=0, move=(0.0, 0.05), scale=(1.1, 1.0)), (SIZE, SIZE))
    at = np.round(moved[48:68]).astype(int)
    source = field[at[:, 1], at[:, 0]]
    assert np.allclose(source, points[48:68] + (at - moved[48:68]) * np.array([1 / 1.1, 1.0]), atol=0.05)
    eyes = np.round(points[36:48]).astype(int)
    assert np.allclose(field[eyes[:, 1], eyes[:, 0]], eyes, atol=1e-4)


# ---------------------------------------------------------------------------------------------- warp

def test_an_unchanged_layout_warps_nothing():
    labels = torch.from_numpy(face_layout(_landmarks(), SIZE))
    image = torch.rand(3, SIZE, SIZE)
    result = layout_warp(image, labels, labels)
    assert not result.mask.any() and torch.equal(result.image, image)


def test_edit_mask_holds_the_changed_pixels_and_whole_changed_parts_grown_by_ten_percent():
    points = _landmarks()
    labels = torch.from_numpy(face_layout(points, SIZE))
    edited = torch.from_numpy(face_layout(edit_landmarks(points, "mouth", GroupKey(frame=0, move=(0, 0.05))), SIZE))
    ungrown = edit_mask(labels, edited, grow=0.0)
    mask = edit_mask(labels, edited)
    assert bool(((labels != edited) <= mask).all()) and bool((ungrown <= mask).all())
    assert bool(mask[labels == FaceLabel.MOUTH].all())  # the unchanged middle of a moved part moves too
    assert 1.08 <= float(mask.sum()) / float(ungrown.sum()) <= 1.4


def test_the_warp_recovers_a_known_mouth_edit_and_keeps_every_other_pixel():
    points = _landmarks()
    crop = _face_image(face_layout(points, SIZE))
    result = known_warp_case(crop, points, move=(0.0, 0.04), scale=(1.1, 1.0))
    assert result.outside_identical
    assert result.psnr_warp > result.psnr_unwarped + 8.0
    assert result.psnr_warp > result.psnr_no_penalty


def test_the_warp_keeps_n_times_m_keys_whose_weights_sum_to_one():
    points = _landmarks()
    labels = torch.from_numpy(face_layout(points, SIZE))
    edited = torch.from_numpy(face_layout(edit_landmarks(points, "nose", GroupKey(frame=0, scale=(1.2, 1.0))), SIZE))
    config = WarpConfig(particles=3, iterations=5)
    result = layout_warp(torch.rand(3, SIZE, SIZE), labels, edited, config=config)
    y0, x0, y1, x1 = result.box
    assert result.keys.shape == (15, y1 - y0, x1 - x0, 2)
    assert torch.allclose(result.weights.sum(0), torch.ones(y1 - y0, x1 - x0), atol=1e-5)


def test_the_same_inputs_warp_the_same_every_time():
    points = _landmarks()
    labels = torch.from_numpy(face_layout(points, SIZE))
    edited = torch.from_numpy(face_layout(edit_landmarks(points, "mouth", GroupKey(frame=0, scale=(1.1, 1.0))), SIZE))
    image = torch.rand(3, SIZE, SIZE)
    assert torch.equal(layout_warp(image, labels, edited).image, layout_warp(image, labels, edited).image)


def test_sparse_warp_recovers_a_known_edit_as_well_as_dense_attention():
    size = 64
    points = _landmarks(size)
    labels = face_layout(points, size)
    field, moved = group_field(points, "mouth", GroupKey(frame=0, move=(0, 0.04), scale=(1.1, 1.0)), (size, size))
    edited = face_layout(moved, size)
    crop = _face_image(labels)
    truth = cv2.remap(crop, field[..., 0], field[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    image = torch.from_numpy(crop.transpose(2, 0, 1).copy())
    sparse = layout_warp(image, torch.from_numpy(labels), torch.from_numpy(edited))
    dense = dense_layout_warp(image, torch.from_numpy(labels), torch.from_numpy(edited))
    mask = sparse.mask.numpy()
    sparse_psnr = masked_psnr(sparse.image.numpy().transpose(1, 2, 0), truth, mask)
    dense_psnr = masked_psnr(dense.numpy().transpose(1, 2, 0), truth, mask)
    assert sparse_psnr > dense_psnr - 1.0, (sparse_psnr, dense_psnr)


def test_a_region_the_source_lacks_is_reported_unfilled():
    labels = torch.full((48, 48), int(FaceLabel.SKIN))
    labels[20:24, 14:34] = int(FaceLabel.UPPER_LIP)
    edited = labels.clone()
    edited[22:34, 14:34] = int(FaceLabel.MOUTH)  # an open mouth where the source's mouth is closed
    result = layout_warp(torch.rand(3, 48, 48), labels, edited)
    assert result.unfilled_fraction["mouth"] > 0.9
    assert bool(result.unfilled[edited == int(FaceLabel.MOUTH)].all())


def test_bad_warp_inputs_are_refused():
    labels = torch.zeros(16, 16, dtype=torch.long)
    with pytest.raises(Exception, match="match"):
        layout_warp(torch.rand(3, 8, 8), labels, labels)
    with pytest.raises(Exception, match="Unknown labels"):
        layout_warp(torch.rand(3, 16, 16), labels, labels + 9)
    with pytest.raises(Exception, match="temperature"):
        WarpConfig(temperature=0)


# ---------------------------------------------------------------------------------------------- paint

def test_painted_maps_read_as_values_or_layout_colours_and_carry_to_other_frames(tmp_path):
    points = _landmarks()
    own = face_layout(points, SIZE)
    painted = own.copy()
    cy, cx = np.round(points[48:68].mean(0)[::-1]).astype(int)
    painted[cy - 2:cy + 2, cx - 30:cx - 26] = FaceLabel.BROWS  # a mark on the cheek
    cv2.imwrite(str(tmp_path / "grey.png"), painted)
    cv2.imwrite(str(tmp_path / "colour.png"), LABEL_COLOURS[painted][:, :, ::-1])
    assert np.array_equal(read_painted_map(tmp_path / "grey.png", (SIZE, SIZE)), painted)
    assert np.array_equal(read_painted_map(tmp_path / "colour.png", (SIZE, SIZE)), painted)
    changes = np.where(painted != own, painted, 255).astype(np.uint8)
    edits = edits_from_shot([{"name": "mark", "kind": "paint", "keyframe": 1, "map": str(tmp_path / "grey.png")}])
    shifted = points + np.array([3.0, 0.0])
    _, edited, _ = edited_layout(shifted, (SIZE, SIZE), edits, 2, painted={"mark": PaintedMap(changes, points)})
    assert (edited == FaceLabel.BROWS).sum() >= 16 + (own == FaceLabel.BROWS).sum() - 4
    mark = np.argwhere((edited == FaceLabel.BROWS) & (face_layout(shifted, SIZE) != FaceLabel.BROWS))
    assert abs(mark[:, 1].mean() - (cx - 28 + 3)) < 1.5  # the mark moved with the face


def test_a_painted_map_of_the_wrong_size_or_with_unknown_colours_is_refused(tmp_path):
    cv2.imwrite(str(tmp_path / "small.png"), np.zeros((64, 64), np.uint8))
    with pytest.raises(MediaError, match="wrong size") as err:
        read_painted_map(tmp_path / "small.png", (SIZE, SIZE))
    assert "128x128" in str(err.value)
    cv2.imwrite(str(tmp_path / "odd.png"), np.full((SIZE, SIZE, 3), 7, np.uint8))
    with pytest.raises(MediaError, match="colours"):
        read_painted_map(tmp_path / "odd.png", (SIZE, SIZE))
    with pytest.raises(MediaError, match="Cannot read"):
        read_painted_map(tmp_path / "missing.png", (SIZE, SIZE))


# ---------------------------------------------------------------------------------------------- real data

@pytest.mark.slow
def test_known_warp_recovery_on_real_faces(shared_clips, tmp_path):
    """In-mask PSNR >= 30 dB against the known field, and the cross-label penalty worth about 8 dB (the issue's
    figures). Over 20 crops of both clips the penalty is worth 8.0 dB (see the README); on these 6 crops the
    margin is thin, so this asserts 7."""
    from vfx.faceset.extract import ExtractConfig, MediaSource, extract_faceset
    from vfx.faceset.store import Faceset
    from vfx.io.image import read_image
    from vfx.shot.frames import FrameRange

    results = []
    for clip in ("pair_x_aoc", "pair_y_kh"):
        source = MediaSource(path=str(shared_clips / f"{clip}.mp4"), start_frame=0, shot=clip)
        faces = extract_faceset(source, tmp_path / clip, frames=FrameRange.parse("0-199x67"),
                                config=ExtractConfig(crop_size=256, track=0, workers=1))
        assert faces.faces > 0
        faceset = Faceset.open(tmp_path / clip)
        for record in faceset.faces(0):
            crop = read_image(faceset.folder / record.crop).rgb()
            results.append(known_warp_case(crop, record.crop_landmarks, move=(0.0, 0.03), scale=(1.06, 1.0)))
    warp = np.mean([r.psnr_warp for r in results])
    plain = np.mean([r.psnr_no_penalty for r in results])
    assert all(r.outside_identical for r in results)
    assert warp >= 30.0, [round(r.psnr_warp, 2) for r in results]
    assert warp - plain >= 7.0, (warp, plain)


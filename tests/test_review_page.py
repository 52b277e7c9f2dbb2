"""`vfx review`: the shot's review page, built on a small rendered shot and opened in a real headless browser.

The shot is the 8-frame 128² demo plate (astronaut, ACEScg EXR) with frame 1008 blanked (no face), swapped
with an untrained tiny comb model whose persona records point at the demo's extracted facesets (so identity to
the persona and the faceset contact sheets have something to read), a training preview and loss curve in its
run folder, and one farm task record. The browser test needs Debian's ``chromium`` and ``chromium-driver``
and selenium; it skips with the reason where they are missing.
"""

from __future__ import annotations

import os
import re
import shutil
from fractions import Fraction
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest
import torch

from vfx.cli import entrypoint
from vfx.comb.checkpoint import Manifest, PersonaRecord, save_checkpoint
from vfx.comb.network import CombConfig, CombNetwork
from vfx.io.timecode import frame_timecode
from vfx.shot import load_shot, save_shot

NO_FACE = 1008
FRAMES = list(range(1001, 1009))
CONSENT = "hopper: Grace Hopper portrait, public domain (US Navy), for the vfx demo only"


def _tiny_model(run: Path, facesets: dict[str, Path]) -> None:
    """An untrained comb checkpoint (swapping needs weights, not good ones) that names its facesets, with the
    preview and loss curve a training run leaves in its run folder."""
    from vfx.comb.preview import write_loss_curve
    from vfx.io.image import write_image

    torch.manual_seed(0)
    config = CombConfig(resolution=32, width=0.05, personas=("hopper", "astronaut"))
    net = CombNetwork(config)
    net.grow(config.top_level)
    records = tuple(PersonaRecord(p, (str(facesets[p]),), CONSENT if p == "hopper" else None) for p in config.personas)
    manifest = Manifest(config, records, level=config.top_level, alpha=1.0, step=40, level_step=10, lr=1e-4,
                        losses=[[s, min(3, s // 10), 0.5 - 0.004 * s] for s in range(1, 41)])
    save_checkpoint(run, net, torch.optim.Adam(net.parameters()), {}, manifest)
    write_loss_curve(manifest.losses, run / "loss.png")
    grid = np.linspace(0, 1, 64 * 96 * 3, dtype=np.float32).reshape(64, 96, 3)
    write_image(run / "preview.png", grid, channels=("R", "G", "B"), dtype="uint8")
    write_image(run / "timelapse_level2.png", grid, channels=("R", "G", "B"), dtype="uint8")


@pytest.fixture(scope="module")
def review_shot(tmp_path_factory) -> Path:
    """The rendered shot's file (see the module docstring); ``vfx review`` has not run on it yet."""
    from vfx.demo import build_demo, extract_demo_facesets
    from vfx.farm.graph import build_graph
    from vfx.io.image import read_image, write_image
    from vfx.shot.layout import farm_folder
    from vfx.shot.schema import ModelConfig
    from vfx.swap import swap_shot

    folder = tmp_path_factory.mktemp("review")
    result = extract_demo_facesets(build_demo(folder, num_frames=8, size=128), crop_size=64)
    blank = result.sequences["astronaut"].replace("####", str(NO_FACE))
    image = read_image(blank)
    write_image(blank, np.full_like(image.pixels, 0.18), channels=image.channels, dtype="half")
    _tiny_model(folder / "models" / "tiny", {n: folder / "facesets" / n for n in ("hopper", "astronaut")})
    shot = load_shot(result.shot_file)
    personas = {**shot.personas, "hopper": shot.personas["hopper"].model_copy(update={"consent": CONSENT})}
    shot = shot.model_copy(update={"model": ModelConfig(checkpoint=folder / "models" / "tiny", resolution=32,
                                                        width=0.05), "personas": personas})
    save_shot(shot, folder / "shot.yaml")
    shot = load_shot(folder / "shot.yaml")
    swap_shot(shot, show_progress=False, workers=1)
    graph = build_graph(folder / "shot.yaml", shot=shot)
    records = farm_folder(shot)
    records.mkdir(parents=True, exist_ok=True)
    (records / f"{graph.tasks[0].id}.json").write_text("{not a record")  # a farm run whose first record broke
    return folder / "shot.yaml"


@pytest.fixture(scope="module")
def page(review_shot) -> Path:
    code = entrypoint(["review", str(review_shot)])
    assert code == 0
    return Path(load_shot(review_shot).outputs.exr).parent / "review" / "index.html"


# ---------------------------------------------------------------------------------------------- the folder

class _Refs(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.refs: list[str] = []

    def handle_starttag(self, tag, attrs):  # type: ignore[no-untyped-def]
        self.refs += [value for name, value in attrs if name in ("src", "href") and value]


def test_the_page_is_one_self_contained_folder(page):
    folder = page.parent
    parser = _Refs()
    parser.feed(page.read_text(encoding="utf-8"))
    local = [r for r in parser.refs if not r.startswith("#")]
    assert local and not [r for r in local if re.match(r"^(https?:|//|data:|file:)", r)]
    assert all((folder / r).is_file() for r in local), [r for r in local if not (folder / r).is_file()]
    text = page.read_text(encoding="utf-8") + (folder / "review.js").read_text() + (folder / "review.css").read_text()
    assert "http://" not in text and "https://" not in text and "fetch(" not in text
    for frame in FRAMES:
        for name in (f"plate.{frame}.jpg", f"result.{frame}.jpg", f"matte.{frame}.png"):
            assert (folder / "frames" / name).stat().st_size > 0
    for name in ("qc.png", "contact_sheet.png", "train_preview.png", "train_loss.png", "train_timelapse_level2.png"):
        assert (folder / name).is_file(), name
    assert list(folder.glob("faceset_*.png")), "the personas' faceset contact sheets"
    assert not list(folder.parent.glob(".review.*")), "no temporary folder left behind"


def test_the_page_shows_the_model_card_farm_and_figures(page):
    text = page.read_text(encoding="utf-8")
    assert "SYNTHETIC FACE" in text
    assert CONSENT.split(":")[1].strip()[:20] in text and "NONE RECORDED" in text  # astronaut has no consent
    assert "comb, 32²" in text and ">40<" in text  # architecture and iterations
    assert 'id="farm"' in text and "corrupt" in text
    assert "frames without a face" in text and f"<td>{NO_FACE}</td>" in text


def test_the_figures_mark_the_frame_without_a_face(review_shot, tmp_path):
    from vfx.export.review_page import ReviewExtras, model_card, plan_review_page, write_review_page

    shot = load_shot(review_shot)
    summary = write_review_page(plan_review_page(shot, out=tmp_path / "page"),
                                extras=ReviewExtras(model=model_card(shot)), proxy_height=32)
    s = summary.series
    i = FRAMES.index(NO_FACE)
    assert s.frames == tuple(FRAMES) and not s.has_face[i] and s.has_face.sum() == 7
    assert s.matte_area[i] == 0 and (s.matte_area[:i] > 1).all()
    assert np.isnan(s.identity_persona[i]) and np.isfinite(s.identity_persona[:i]).all()
    assert np.isfinite(s.identity_actor[:i]).all() and (s.identity_actor[:i] < 2).all()
    assert np.isfinite(s.jitter[1:i - 1]).all() and np.isnan(s.jitter[0])
    assert np.isfinite(s.flicker[1:i]).all() and np.isnan(s.flicker[i]) and np.isfinite(s.flicker_shot)
    assert s.timecodes[0] == frame_timecode(1001, Fraction(24))
    # the pooled flicker is the library's (vfx.blend.metrics) on the same display-referred frames
    from vfx.blend.metrics import face_region_flicker
    from vfx.io.color import to_working
    from vfx.io.plate import open_plate
    from vfx.render.rendered import read_rendered_frame
    from vfx.shot.layout import rendered_sequence

    plate, _ = open_plate(shot.plate)
    with plate:
        done = [read_rendered_frame(rendered_sequence(shot).path(f)) for f in FRAMES]
        plates = [to_working(plate.read(f).rgb(), plate.colorspace) for f in FRAMES]
    results = [to_working(d.rgb, plate.colorspace) for d in done]
    assert s.flicker_shot == pytest.approx(face_region_flicker(results, plates, [d.matte for d in done]), rel=1e-6)


# ---------------------------------------------------------------------------------------------- bad input

def _nothing_under(folder: Path) -> bool:
    return not folder.exists() or not any(folder.iterdir())


def test_a_shot_not_rendered_yet_exits_2_with_nothing_written(review_shot, tmp_path, capsys):
    shot = load_shot(review_shot)
    out = tmp_path / "out"
    save_shot(shot.model_copy(update={"outputs": shot.outputs.model_copy(update={
        "exr": out / "v002.####.exr", "review": None, "comp_package": None})}), tmp_path / "shot.yaml")
    assert entrypoint(["review", str(tmp_path / "shot.yaml")]) == 2
    err = capsys.readouterr().err
    assert "not rendered yet" in err and "vfx swap" in err
    assert _nothing_under(out)


def test_missing_frames_are_named_and_nothing_is_written(review_shot, tmp_path, capsys):
    shot = load_shot(review_shot)
    source = Path(shot.outputs.exr)
    out = tmp_path / "partial"
    out.mkdir()
    for frame in FRAMES[:5]:
        name = source.name.replace("####", str(frame))
        shutil.copyfile(source.parent / name, out / name)
    save_shot(shot.model_copy(update={"outputs": shot.outputs.model_copy(update={
        "exr": out / source.name, "review": None, "comp_package": None})}), tmp_path / "shot.yaml")
    assert entrypoint(["review", str(tmp_path / "shot.yaml")]) == 2
    assert "1006-1008" in capsys.readouterr().err
    assert not (out / "review").exists()


def test_a_folder_of_other_files_or_an_input_is_refused(review_shot, tmp_path, capsys):
    busy = tmp_path / "busy"
    busy.mkdir()
    (busy / "notes.txt").write_text("mine")
    assert entrypoint(["review", str(review_shot), "--out", str(busy)]) == 2
    assert "holds other files" in capsys.readouterr().err and sorted(os.listdir(busy)) == ["notes.txt"]
    plate_folder = Path(load_shot(review_shot).plate.path).parent
    before = sorted(os.listdir(plate_folder))
    assert entrypoint(["review", str(review_shot), "--out", str(plate_folder)]) == 2
    assert "overwrite the plate" in capsys.readouterr().err and sorted(os.listdir(plate_folder)) == before
    model = Path(load_shot(review_shot).model.checkpoint)
    assert entrypoint(["review", str(review_shot), "--out", str(model / "review")]) == 2
    assert "model.checkpoint" in capsys.readouterr().err and not (model / "review").exists()


# ---------------------------------------------------------------------------------------------- in a browser

def _browser():  # type: ignore[no-untyped-def]
    """A headless chromium driven by selenium, or a skip that says what is missing."""
    try:
        from selenium import webdriver
        from selenium.common.exceptions import WebDriverException
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.skip("selenium is not installed (pip install -e '.[test]')")
    binary = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome") if shutil.which(n)), None)
    driver = shutil.which("chromedriver")
    if binary is None or driver is None:
        pytest.skip("no headless browser here: install Debian's `chromium` and `chromium-driver` "
                    f"(found chromium: {binary or 'no'}, chromedriver: {driver or 'no'})")
    options = webdriver.ChromeOptions()
    for arg in ("--headless=new", "--no-sandbox", "--allow-file-access-from-files", "--disable-gpu",
                "--disable-dev-shm-usage", "--window-size=1400,1000"):
        options.add_argument(arg)
    options.binary_location = binary
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    try:
        return webdriver.Chrome(service=Service(driver), options=options)
    except WebDriverException as err:
        pytest.skip(f"chromium would not start headless here: {str(err).splitlines()[0]}")


def test_the_page_plays_in_a_headless_browser(page, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import WebDriverWait

    browser = _browser()
    try:
        browser.get(page.absolute().as_uri())
        WebDriverWait(browser, 20).until(lambda d: d.execute_script(
            "return document.readyState === 'complete' && document.getElementById('qc-image').naturalWidth > 0"))
        errors = [e for e in browser.get_log("browser") if e["level"] in ("SEVERE", "WARNING")]
        assert errors == [], errors
        label, timecode = browser.find_element(By.ID, "frame-label"), browser.find_element(By.ID, "timecode")
        result = browser.find_element(By.ID, "view-result")
        assert label.text == "1001" and result.get_attribute("src").endswith("frames/result.1001.jpg")
        assert timecode.text == frame_timecode(1001, Fraction(24))

        # the scrubber: as a user drags it (value set, then the input event a drag fires)
        browser.execute_script("const s = document.getElementById('scrubber'); s.value = 3;"
                               "s.dispatchEvent(new Event('input', {bubbles: true}));")
        assert label.text == "1004" and result.get_attribute("src").endswith("frames/result.1004.jpg")
        assert browser.find_element(By.ID, "view-plate").get_attribute("src").endswith("frames/plate.1004.jpg")
        assert browser.find_element(By.ID, "view-matte").get_attribute("src").endswith("frames/matte.1004.png")
        assert timecode.text == frame_timecode(1004, Fraction(24))
        # the keyboard and the buttons step one frame
        browser.find_element(By.ID, "scrubber").send_keys("\ue014")  # arrow right
        assert label.text == "1005"
        browser.find_element(By.ID, "last").click()
        assert label.text == str(NO_FACE) and browser.find_element(By.ID, "face-flag").text == "NO FACE"
        browser.find_element(By.ID, "prev").click()
        assert label.text == "1007" and browser.find_element(By.ID, "face-flag").text == "face"
        WebDriverWait(browser, 10).until(lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('img')).every(i => i.complete && i.naturalWidth > 0)"))
        # play runs at the plate's fps and moves the frame on
        browser.find_element(By.ID, "first").click()
        browser.find_element(By.ID, "play").click()
        WebDriverWait(browser, 5).until(lambda d: d.find_element(By.ID, "frame-label").text != "1001")
        browser.find_element(By.ID, "play").click()

        # a screenshot at a real size shows the QC plots: the plot area is drawn, not blank
        browser.execute_script("document.getElementById('qc').scrollIntoView()")
        shot_png = tmp_path / "review_page.png"
        assert browser.save_screenshot(str(shot_png)) and shot_png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
        box = browser.execute_script("const r = document.getElementById('qc-image').getBoundingClientRect();"
                                     "return [r.left, r.top, r.width, r.height, window.devicePixelRatio];")
        assert box[2] > 400 and box[3] > 300
        from vfx.io.image import read_image

        pixels = read_image(shot_png).pixels
        scale = box[4]
        top, left = max(0, int(box[1] * scale)), int(box[0] * scale)
        crop = pixels[top:int((box[1] + box[3]) * scale), left:int((box[0] + box[2]) * scale)]
        assert crop.size and crop.std() > 0.05, "the plot area of the screenshot is blank"
        assert browser.get_log("browser") == []
        keep = os.environ.get("VFX_REVIEW_SCREENSHOT")
        if keep:  # for a person to look at: VFX_REVIEW_SCREENSHOT=/tmp/review_page.png
            browser.execute_script("const s = document.getElementById('scrubber'); s.value = 3;"
                                   "s.dispatchEvent(new Event('input', {bubbles: true})); window.scrollTo(0, 0)")
            browser.save_screenshot(keep)
            browser.execute_script("document.getElementById('qc').scrollIntoView()")
            browser.save_screenshot(str(Path(keep).with_name(Path(keep).stem + "_qc.png")))
    finally:
        browser.quit()

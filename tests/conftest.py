from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"
CLIPS = SHARED_DATA / "clips"


@pytest.fixture(scope="session")
def shared_clips() -> Path:
    """The real clips in ../shared/data/clips; tests that need them skip on a machine without them."""
    if not CLIPS.is_dir():
        pytest.skip(f"real test footage not found at {CLIPS} (it lives beside the repository, not in it)")
    return CLIPS


@pytest.fixture(scope="session")
def demo_shot(tmp_path_factory) -> Path:
    """A small demo shot built once per session (16 frames at 64x64)."""
    from vfx.demo import build_demo

    folder = tmp_path_factory.mktemp("demo")
    return build_demo(folder, num_frames=16, size=64).shot_file

"""The emoji image.icons learns from: reading the package, the committed split, the pinned source."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from museforge.plugins.image import icons_data


def _package(root: Path) -> Path:
    """A two-emoji stand-in for emoji-datasource-google's layout."""
    images = root / "img" / "google" / "64"
    images.mkdir(parents=True)
    entries = [
        {"image": "b.png", "category": "Flags", "sort_order": 2, "has_img_google": True},
        {"image": "a.png", "category": "Smileys & Emotion", "sort_order": 1, "has_img_google": True},
        {"image": "c.png", "category": "Component", "sort_order": 3, "has_img_google": True},
        {"image": "d.png", "category": "Objects", "sort_order": 4, "has_img_google": False},
    ]
    (root / "emoji.json").write_text(json.dumps(entries))
    for i, name in enumerate(("a.png", "b.png", "c.png")):
        pixels = np.zeros((64, 64, 4), dtype=np.uint8)
        pixels[..., :3] = 200  # colour everywhere, transparent outside the square
        pixels[16:48, 16:48, 3] = 255
        pixels[16:48, 16:48, 0] = 40 * i
        Image.fromarray(pixels, "RGBA").save(images / name)
    return root


def test_reads_base_emoji_in_order_and_blanks_hidden_colour(tmp_path: Path) -> None:
    icons = icons_data.read_icons(_package(tmp_path))
    names = icons_data.CATEGORIES
    assert icons.category.tolist() == [names.index("smileys"), names.index("flags")]
    assert icons.icons.shape == (2, 64, 64, 4)
    assert icons.icons[0, 0, 0].tolist() == [0, 0, 0, 0]  # invisible colour is not learnt
    assert icons.icons[1, 20, 20].tolist() == [40, 200, 200, 255]


def test_committed_split_covers_every_category_and_is_disjoint() -> None:
    held, fixture = icons_data.icons_held_out(), icons_data.icons_train_fixture()
    assert len(held) == 282 and len(fixture) == 90
    assert set(held.category.tolist()) == set(range(len(icons_data.CATEGORIES)))
    assert set(fixture.category.tolist()) == set(range(len(icons_data.CATEGORIES)))
    seen = {icon.tobytes() for icon in held.icons}
    assert not any(icon.tobytes() in seen for icon in fixture.icons)


def test_quick_split_needs_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    split = icons_data.icons_split(quick=True)
    assert len(split.train) == 90 and len(split.held_out) == 282
    assert not any(tmp_path.iterdir())


def test_the_source_is_pinned_with_its_licence() -> None:
    source = icons_data.ICONS_SOURCE
    assert source.command() == ["npm", "pack", "emoji-datasource-google@16.0.0"]
    assert source.licence == "Apache-2.0" and "package/README.md" in source.licence_files
    data = icons_data.ICONS_TRAINING_DATA
    assert data.commercial_use and data.sha256 == source.sha256 and "Noto" in data.attribution

"""The tiles image.tiles learns from: cutting the sheets, the looks, the committed split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from museforge.plugins.image import tiles_data


def test_cut_keeps_whole_textured_tiles_only() -> None:
    rng = np.random.default_rng(0)
    sheet = rng.integers(0, 256, size=(64, 96, 4), dtype=np.uint8)
    sheet[..., 3] = 255
    sheet[0:32, 32:64, 3] = 0  # a transparent cell: a decoration, not a tile
    sheet[32:64, 0:32, :3] = 90  # a flat cell: a blank
    tiles, cells = tiles_data.cut_tiles(sheet)
    assert tiles.shape == (4, 32, 32, 3) and tiles.dtype == np.uint8
    assert cells.tolist() == [0, 2, 4, 5]
    np.testing.assert_array_equal(tiles[1], sheet[0:32, 64:96, :3])


def test_cut_refuses_a_sheet_off_the_grid() -> None:
    with pytest.raises(ValueError, match="32-px cells"):
        tiles_data.cut_tiles(np.zeros((40, 64, 4), dtype=np.uint8))


def test_committed_split_is_labelled_and_disjoint() -> None:
    held, train = tiles_data.tiles_held_out(), tiles_data.tiles_train()
    fixture = tiles_data.tiles_train_fixture()
    assert (len(held), len(train), len(fixture)) == (420, 1648, 96)
    for part in (held, train, fixture):
        assert part.tiles.shape[1:] == (32, 32, 3)
        assert set(part.kind.tolist()) == {0, 1}
        assert set(part.look.tolist()) == set(range(len(tiles_data.LOOKS)))
    held_rows = {t.tobytes() for t in held.tiles}
    assert not any(t.tobytes() in held_rows for t in train.tiles)
    train_rows = {t.tobytes() for t in train.tiles}
    assert all(t.tobytes() in train_rows for t in fixture.tiles)


def test_looks_are_the_nearest_committed_centres() -> None:
    held = tiles_data.tiles_held_out()
    np.testing.assert_array_equal(tiles_data.assign_looks(held.tiles, tiles_data.look_centres()), held.look)


def test_quick_split_needs_no_network(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    split = tiles_data.tiles_split(quick=True)
    assert len(split.train) == 96 and len(split.held_out) == 420
    assert not any(tmp_path.iterdir())  # nothing fetched


def test_the_source_is_pinned_with_its_licence() -> None:
    source = tiles_data.TILES_SOURCE
    assert (source.registry, source.package, source.version) == ("debian", "crawl-tiles-data", "2:0.28.0-1.1")
    assert source.command() == ["apt-get", "download", "crawl-tiles-data=2:0.28.0-1.1"]
    assert tiles_data.COPYRIGHT_SOURCE.licence_files == ("usr/share/doc/crawl-common/copyright",)
    data = tiles_data.TILES_TRAINING_DATA
    assert data.commercial_use and data.sha256 == source.sha256 and "Stone Soup" in data.attribution

"""The handwriting font pool: the family table, fetching with npm (a stand-in `npm` here, since
tests never reach the network), checksums, and the fallback when npm is missing."""

from __future__ import annotations

import hashlib
import io
import os
import tarfile
from pathlib import Path

import numpy as np
import pytest
from fake_npm import fake_npm
from helpers import lines_config

from text_recognizer.data.synthetic import pool
from text_recognizer.data.synthetic.fonts import load_fonts, package_dir, pool_families
from text_recognizer.data.synthetic.generate import generate
from text_recognizer.data.synthetic.render import KINDS, Augmentation, render_line


def test_the_table_parses_and_every_row_has_a_licence_and_checksums() -> None:
    families = pool.read_table()
    assert len(families) >= 100
    assert all(f.licence in ("OFL-1.1", "Apache-2.0") for f in families)
    assert all(f.files and all(len(d) == 64 for _, d in f.files) for f in families)
    train = [f for f in families if f.split == "train"]
    heldout = [f for f in families if f.split == "heldout"]
    assert len(train) >= 80 and len(heldout) >= 16
    assert sum(f.style == "cursive" for f in heldout) == sum(f.style == "print" for f in heldout)
    assert {"satisfy", "indie-flower"} <= {f.name for f in heldout}
    assert all(f.version for f in families if f.source == "fontsource")


def test_packaged_rows_match_the_installed_files() -> None:
    for fam in pool.families():
        if fam.source == "fontpkg":
            assert pool.verified_files(fam, package_dir(fam.name)) is not None, fam.name


def test_a_malformed_row_is_refused_with_its_row_number(tmp_path: Path) -> None:
    table = tmp_path / "families.csv"
    header = "family,source,version,style,licence,split,case,files\n"
    table.write_text(header + f"a,fontsource,1.0.0,print,MIT,train,mixed,a.woff:{'0' * 64}\n")
    with pytest.raises(ValueError, match="row 2: licence 'MIT' is not one of"):
        pool.read_table(table)


def test_heldout_families_never_appear_in_training() -> None:
    train, heldout = pool_families("train"), pool_families("heldout")
    assert train and heldout and not set(train) & set(heldout)
    config = lines_config()
    train_files = {f.path for f in config.fonts("train")}
    assert train_files and not train_files & {f.path for f in config.fonts("val")}
    table = {f.name: f.split for f in pool.families()}
    assert {table[f.family] for f in config.fonts("train")} == {"train"}
    assert {table[f.family] for f in config.fonts("test")} == {"heldout"}


def _font_bytes() -> bytes:
    return next(package_dir("kalam").glob("*Regular.ttf")).read_bytes()


def _family(name: str, data: bytes) -> pool.Family:
    digest = hashlib.sha256(data).hexdigest()
    return pool.Family(
        name, "fontsource", "1.0.0", "print", "OFL-1.1", "train", False, ((f"{name}.ttf", digest),)
    )


def _tarball(folder: Path, fam: pool.Family, data: bytes) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with tarfile.open(folder / f"fontsource-{fam.name}-{fam.version}.tgz", "w:gz") as archive:
        info = tarfile.TarInfo(f"package/files/{fam.files[0][0]}")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))


def test_fetch_places_checked_files_and_a_second_fetch_does_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _font_bytes()
    fam = _family("test-hand", data)
    _tarball(tmp_path / "registry", fam, data)
    fake_npm(tmp_path / "bin", tmp_path / "registry")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "data"
    assert pool.fetch(root, [fam]) == []
    (path,) = pool.fetched(fam, root) or []
    assert path == root / "fonts" / "test-hand" / "test-hand.ttf" and path.read_bytes() == data
    assert not [p for p in (root / "fonts").iterdir() if p.name.startswith(".")]
    assert pool.fetch(root, [fam]) == []
    assert "all 1 fetched families present" in capsys.readouterr().out


def test_a_font_whose_sha256_does_not_match_is_refused_and_removed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = _font_bytes()
    fam = _family("test-hand", data)
    _tarball(tmp_path / "registry", fam, data + b"tampered")
    fake_npm(tmp_path / "bin", tmp_path / "registry")
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    root = tmp_path / "data"
    assert pool.fetch(root, [fam]) == [fam]  # refused from the tarball: never written
    assert "does not match its recorded sha256; refused" in capsys.readouterr().out
    assert not (root / "fonts" / "test-hand" / "test-hand.ttf").exists()
    # A file changed on disk after fetching is refused and removed when it is next used.
    on_disk = root / "fonts" / "test-hand" / "test-hand.ttf"
    on_disk.parent.mkdir(parents=True, exist_ok=True)
    on_disk.write_bytes(data[:-1])
    assert pool.fetched(fam, root) is None and not on_disk.exists()
    assert f"{on_disk} does not match its recorded sha256; removed" in capsys.readouterr().out


def test_npm_missing_gives_one_line_and_training_fonts_fall_back_to_the_packaged(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    missing = pool.fetch()
    fetchable = [f for f in pool.families() if f.source == "fontsource"]
    assert missing == fetchable
    (line,) = capsys.readouterr().out.splitlines()
    assert "npm not found" in line and "make fonts" in line
    config = lines_config(train_size=4, val_size=2, test_size=2)
    assert {f.family for f in config.fonts("train")} == {
        f.name for f in pool.families() if f.source == "fontpkg" and f.split == "train"
    }
    assert generate(config, workers=1).exists()


def test_a_failing_npm_gives_one_line_and_fetches_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    fam = _family("test-hand", _font_bytes())
    fake_npm(tmp_path / "bin", tmp_path / "registry", code=1)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    assert pool.fetch(tmp_path / "data", [fam]) == [fam]
    failure = [line for line in capsys.readouterr().out.splitlines() if "failed" in line]
    assert failure == [
        "fonts: npm pack failed (npm error 404 Not Found); training uses the families present; "
        "run `make fonts` again to fetch the rest"
    ]


@pytest.mark.parametrize("kind", KINDS)
def test_each_augmentation_is_deterministic_for_a_seed_and_changes_the_line(kind: str) -> None:
    (font,) = load_fonts(["delius"])
    text = "Quickly, the brown fox jumped over 23 lazy dogs?"

    def draw(kinds: tuple[str, ...], seed: int) -> np.ndarray:
        aug = Augmentation(kinds=frozenset(kinds))
        image = render_line(text, font, np.random.default_rng(seed), 32, 640, aug)
        assert image is not None
        return image

    first = draw((kind,), 1)
    assert np.array_equal(first, draw((kind,), 1))
    assert not np.array_equal(first, draw((kind,), 2))
    # The kind does something: the same seed without it draws another line.
    changed = [draw((kind,), seed) != draw((), seed) for seed in range(1, 4)]
    assert any(c.any() for c in changed)


def test_an_unknown_augmentation_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match="unknown augmentation wobble; choose from glyph"):
        lines_config(augmentations=["glyph", "wobble"])

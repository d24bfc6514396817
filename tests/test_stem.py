"""The stem's two resize rules, one judgement of ink for uint8 crops and float batches, and how
batches are ordered and cropped."""

import numpy as np
import pytest
import torch

from text_recognizer.data.base import collate_cropped
from text_recognizer.data.transforms import ImageStem, crop_to_content
from text_recognizer.data.transforms.ink import (
    INK_CONTRAST,
    content_heights,
    content_widths,
    ink_mask,
    ink_mask_inverted,
    paper_level,
)
from text_recognizer.data.transforms.stem import EvalTransform


def page(height: int, width: int, paper: int = 230) -> np.ndarray:
    """Paper with a dark bar across the top left quarter, ending at width // 2."""
    pixels = np.full((height, width), paper, dtype=np.uint8)
    pixels[height // 4 : height // 2, : width // 2] = 20
    return pixels


@pytest.mark.parametrize(
    ("resize", "crop", "size"),
    [
        ("height", (16, 100), (32, 200)),  # a short line is scaled up to the height
        ("height", (64, 1000), (26, 400)),  # ... and down, further if it is too wide
        ("shrink", (16, 100), (16, 100)),  # a small page keeps its scale
        ("shrink", (64, 1000), (26, 400)),  # a page too large shrinks to fit
    ],
)
def test_each_rule_scales_uniformly(
    resize: str, crop: tuple[int, int], size: tuple[int, int]
) -> None:
    stem = ImageStem(32, 400, resize)  # type: ignore[arg-type]
    fitted = stem.fit(page(*crop))
    assert fitted.shape == (32, 400)
    rows, cols = np.flatnonzero((fitted < 128).any(1)), np.flatnonzero((fitted < 128).any(0))
    # The bar covers a quarter of the height and half the width, whatever the scale.
    assert abs(len(rows) - size[0] / 4) <= 1 and abs(len(cols) - size[1] / 2) <= 1
    assert fitted[-1, -1] == paper_level(page(*crop))  # padded with the crop's own paper


def test_an_unknown_rule_is_refused() -> None:
    with pytest.raises(ValueError, match="resize must be one of height, shrink, got 'fit'"):
        ImageStem(32, 400, "fit")  # type: ignore[arg-type]


def test_ink_is_judged_alike_before_and_after_the_stem() -> None:
    """The sampler measures uint8 lines, the batch crop measures float batches: the same ink."""
    lines = np.stack([page(32, 640), page(32, 640, paper=200)])
    lines[1, :, 200:] = 200  # a darker paper, and ink that ends sooner
    stem = ImageStem(32, 640)
    batch = torch.stack([stem(line) for line in lines])
    assert np.array_equal(ink_mask(lines), ink_mask_inverted(batch)[:, 0].numpy())
    assert content_widths(lines).tolist() == [320, 200]
    assert crop_to_content(batch).shape[-1] == 352  # the widest ink, a margin, rounded to 32
    assert not ink_mask(np.full((4, 4), 255 - INK_CONTRAST + 1, dtype=np.uint8)).any()


def test_pages_are_cropped_to_their_tallest_and_widest_content() -> None:
    pages = torch.zeros(2, 1, 576, 640)
    pages[0, :, 10:40, 8:300] = 1.0  # one line
    pages[1, :, 10:130, 8:200] = 1.0  # four lines' height, narrower
    cropped = crop_to_content(pages, rows=True)
    assert cropped.shape == (2, 1, 160, 320)  # ink to 130 and 300, a margin, rounded to 32
    assert torch.equal(cropped, pages[..., :160, :320])
    assert crop_to_content(pages, columns=False, rows=True).shape == (2, 1, 160, 640)
    assert crop_to_content(pages).shape == (2, 1, 576, 320)  # lines: the height is the network's


def test_a_training_batch_of_pages_keeps_a_strip_of_paper_drawn_from_its_labels() -> None:
    pages = torch.zeros(2, 1, 576, 640)
    pages[:, :, 10:130, 8:300] = 1.0
    heights = set()
    for label in range(40):
        samples = [(pages[0], torch.tensor([label, 1])), (pages[1], torch.tensor([2, 3]))]
        images, _ = collate_cropped(samples, rows=True, paper=64)
        again, _ = collate_cropped(samples, rows=True, paper=64)
        assert torch.equal(images, again)  # the same batch, the same crop: resumes exactly
        assert torch.equal(images, pages[..., : images.shape[-2], :320])
        heights.add(images.shape[-2])
    assert min(heights) >= 160 and max(heights) <= 160 + 64 and len(heights) > 10
    assert collate_cropped(samples, rows=True)[0].shape[-2] == 160  # validation: no strip


def test_pages_are_read_in_order_of_height_lines_of_width() -> None:
    pages = np.full((3, 576, 640), 255, dtype=np.uint8)
    for i, bottom in enumerate((300, 100, 200)):
        pages[i, 10:bottom, 8 : 600 - bottom] = 0
    assert content_heights(pages).tolist() == [300, 100, 200]
    reader = EvalTransform(576, 640, crop_width=True, resize="shrink", crop_height=True)
    assert reader.order(list(pages)).tolist() == [1, 2, 0]
    lines = EvalTransform(576, 640, crop_width=True, resize="shrink")
    assert lines.order(list(pages)).tolist() == [0, 2, 1]  # by width: 300, 400, 500

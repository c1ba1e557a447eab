"""Several images -> one labelled grid ("Image 1", "Image 2", ...).

The grid is planned from the headers alone; then each image is decoded, drawn
and dropped before the next is read, so memory holds one decoded image at a
time whatever the number of images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from langchain_dynaspark.errors import DynasparkImageError
from langchain_dynaspark.image_codec import (
    decode,
    encode,
    exif_orientation,
    fit,
    flattened,
    is_photo,
    normalized,
    open_image,
    reading,
    scaled,
    upright,
    upright_size,
)
from langchain_dynaspark.image_limits import ImageLimits, RawImage
from langchain_dynaspark.transport import Upload

__all__ = ["composite"]

_MIN_LABEL = 16
_BACKGROUND = (160, 160, 160)
_LABEL_INK = (0, 0, 0)
_LABEL_PAPER = (232, 232, 232)


def composite(loaders: Sequence[Callable[[], RawImage]], limits: ImageLimits) -> Upload:
    """Compose the images, in order, into one grid with a label above each."""
    from PIL import Image, ImageDraw, ImageFont  # noqa: PLC0415 (lazy)

    # Two passes: the headers first (sizes, orientations) to plan the grid,
    # then each image decoded, drawn and dropped before the next is read.
    orientations = []
    sizes = []
    for load in loaders:
        raw = load()
        image = open_image(raw, limits)
        with reading(raw.label):
            orientations.append(exif_orientation(image, raw.data))
        sizes.append(upright_size(image, orientations[-1]))
        image.close()
        del raw, image
    grid = _Grid.plan(sizes, limits.max_side)
    canvas = Image.new("RGB", grid.canvas, _BACKGROUND)
    draw = ImageDraw.Draw(canvas)
    font = ImageFont.load_default(size=grid.font_size)
    photo = False
    for index, load in enumerate(loaders):
        raw = load()
        image = open_image(raw, limits)
        target = fit(sizes[index], grid.cell)
        decode(image, raw.label, orientations[index], target)
        photo = photo or image.format in ("JPEG", "MPO")
        tile = scaled(normalized(image), target, orientations[index])
        tile = upright(tile, orientations[index])
        del image, raw
        photo = photo or is_photo(tile)
        left, top = grid.origin(index)
        draw.rectangle(
            (left, top, left + grid.cell[0] - 1, top + grid.label_height - 1),
            fill=_LABEL_PAPER,
        )
        draw.text(
            (left + grid.label_height // 4, top + grid.label_height // 2),
            f"Image {index + 1}",
            fill=_LABEL_INK,
            font=font,
            anchor="lm",
        )
        tile = flattened(tile)
        x = left + (grid.cell[0] - tile.width) // 2
        y = top + grid.label_height + (grid.cell[1] - tile.height) // 2
        canvas.paste(tile, (x, y))
    return encode(canvas, "JPEG" if photo else "PNG", "images", limits, {})


@dataclass(frozen=True)
class _Grid:
    """Where each image of a composite goes.

    Attributes:
        columns: Cells per row.
        cell: The box each image is fitted into, in pixels.
        label_height: Height of the label band above each cell.
        gap: Space between cells and around the grid.
        canvas: Size of the whole composite.
        font_size: Label text size.
    """

    columns: int
    cell: tuple[int, int]
    label_height: int
    gap: int
    canvas: tuple[int, int]
    font_size: int

    @classmethod
    def plan(cls, sizes: Sequence[tuple[int, int]], side: int) -> _Grid:
        """A near-square grid for images of `sizes`, at most `side` a side.

        Cells are no larger than the largest image, so small images are not
        blown up.

        Raises:
            DynasparkImageError: If the images cannot fit with their labels.
        """
        count = len(sizes)
        columns = math.ceil(math.sqrt(count))
        rows = math.ceil(count / columns)
        gap = max(2, side // 256)
        row_height = (side - (rows + 1) * gap) // rows
        width_limit = (side - (columns + 1) * gap) // columns
        if row_height < 2 * _MIN_LABEL or width_limit < 2 * _MIN_LABEL:
            msg = (
                f"{count} images do not fit in one composite of max_image_side "
                f"({side} px). Send fewer images, or raise max_image_side."
            )
            raise DynasparkImageError(msg)
        tallest = max(h for _, h in sizes)
        label_height = max(_MIN_LABEL, min(64, row_height // 8, tallest // 4))
        font_size = label_height * 5 // 8
        cell_width = min(width_limit, max(*(w for w, _ in sizes), font_size * 5))
        cell_height = min(row_height - label_height, tallest)
        canvas = (
            columns * cell_width + (columns + 1) * gap,
            rows * (label_height + cell_height) + (rows + 1) * gap,
        )
        return cls(
            columns, (cell_width, cell_height), label_height, gap, canvas, font_size
        )

    def origin(self, index: int) -> tuple[int, int]:
        """Top-left corner of the label band of image `index` (0-based)."""
        row, column = divmod(index, self.columns)
        left = self.gap + column * (self.cell[0] + self.gap)
        top = self.gap + row * (self.label_height + self.cell[1] + self.gap)
        return left, top

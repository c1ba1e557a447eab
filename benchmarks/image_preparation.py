"""Preparing images for upload: `benchmarks/images.py`'s figures and goals.

Skipped with `--no-images`; a missing `images.py` is a missed goal.
"""

from __future__ import annotations

import sys

from harness import BENCHMARKS, Goal, Options, Section, row

TITLE = "Image preparation (benchmarks/images.py)"
CASES = (
    ("photo", "one 6000x4000 JPEG"),
    ("composite", "4-image composite (4000x3000 JPEGs)"),
)


def measure_images() -> tuple[dict[str, float], dict[str, float]] | None:
    """`benchmarks/images.py`'s figures and goals; `None` if it is missing."""
    if not (BENCHMARKS / "images.py").exists():
        return None
    if str(BENCHMARKS) not in sys.path:
        sys.path.insert(0, str(BENCHMARKS))
    import images

    return images.measure_image_preparation(), dict(images.GOALS)


def section(images: tuple[dict[str, float], dict[str, float]] | None) -> Section:
    """The image rows, and the goals `images.py` sets."""
    if images is None:
        missing = Goal(
            "image preparation measured", "benchmarks/images.py missing", False
        )
        return Section(
            [TITLE, "  not measured: benchmarks/images.py is missing"], [missing]
        )
    figures, goals = images
    lines = [TITLE, row("", "best ms", "median", "CPU ms, peak memory")]
    for case, label in CASES:
        lines.append(
            row(
                label,
                figures[f"{case}_seconds"] * 1e3,
                figures[f"{case}_median_seconds"] * 1e3,
                f"{figures[f'{case}_cpu_seconds'] * 1e3:.0f} ms, "
                f"{figures[f'{case}_peak_mb']:.0f} MB",
            )
        )
    return Section(
        lines,
        [
            Goal(
                f"6000x4000 JPEG: {name} < {limit:g}",
                f"{figures[name]:.2f}",
                figures[name] < limit,
            )
            for name, limit in goals.items()
        ],
    )


def run(options: Options) -> Section:
    if not options.images:
        return Section([TITLE, "  skipped (--no-images)"])
    return section(measure_images())

"""Time and peak memory to prepare images for upload.

    python benchmarks/images.py

Each case runs in a fresh subprocess so that one's memory does not hide
another's:

- `photo`: one 6000x4000 JPEG (a 24 MP camera photo, with EXIF orientation and
  GPS), downscaled to 2048 px, turned upright and stripped;
- `composite`: four 4000x3000 JPEGs composed into one labelled grid;
- 20 images of 3000x3000 in one conversation, for each of PNG (screenshots),
  JPEG and WEBP (photos), composed into one grid. Images are decoded one at a
  time, so the peak must stay under twice one decoded image plus the output
  (the composite's pixels and its encoded file). Where pillow's decoder alone
  already needs that much for one input (a full decode of it, measured in the
  same subprocess), the goal cannot be met by decoding one image at a time: the
  miss is printed with that figure as its cause, and does not fail the run.
  Today that is WEBP: pillow decodes it through libwebp's animation decoder,
  which keeps two RGBA canvases of the whole image, then copies the frame into
  a `bytes` object and from there into the image (about four decoded images at
  once); `draft()` does nothing for WEBP and `reduce`, `thumbnail` and early
  conversion all act after that peak.

Each case goes through `images.prepare_upload`, as `ChatDynaspark` calls it
(base64 blocks in, one `Upload` out, pillow in a worker thread). Each case runs
a few times after a warm-up on a small image (pillow's plugins loaded); the
figures are the best and the median wall time, and the median CPU time (all
threads): on a shared machine, the best run is the one least disturbed.
Peak memory is the process's resident-set high-water mark above its size just
before the run: pillow allocates its pixel buffers in C, where `tracemalloc` does
not look, so the kernel's count is used (`VmHWM`, reset through
`/proc/self/clear_refs`; `ru_maxrss` where that is not available). The inputs
themselves (the base64 strings) are in memory before the baseline is taken.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import io
import json
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
RUNS = 5
MANY = 20
"""Images in one conversation for the `many` cases."""
MANY_SIDE = 3000
MANY_RUNS = 2
GOALS = {"photo_cpu_seconds": 0.5, "photo_peak_mb": 300.0}
"""What the 6000x4000 JPEG must stay under. The work is one thread's, so its CPU
time is its wall time on an idle machine, and is not inflated by other load."""


def measure_image_preparation() -> dict[str, float]:
    """Prepare a 6000x4000 JPEG and a 4-image composite; report time and memory.

    Returns:
        For each case (`photo`, `composite`): `<case>_seconds` (best wall
        time), `<case>_median_seconds`, `<case>_cpu_seconds` (median),
        `<case>_peak_mb` and `<case>_input_mb` (MB: 10^6 bytes).
    """
    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder, "photo.jpg")
        photo.write_bytes(_camera_jpeg((6000, 4000), seed=1))
        shots = []
        for seed in range(4):
            shot = Path(folder, f"shot{seed}.jpg")
            shot.write_bytes(_camera_jpeg((4000, 3000), seed=seed + 2))
            shots.append(shot)
        figures: dict[str, float] = {}
        for case, paths in (("photo", [photo]), ("composite", shots)):
            for name, value in _run_child(case, paths).items():
                figures[f"{case}_{name}"] = value
        return figures


def measure_many_images() -> dict[str, float]:
    """Compose 20 images of 3000x3000 px, per format; report memory against its goal.

    Returns:
        For each format (`png`, `jpeg`, `webp`): `many_<format>_peak_mb`,
        `many_<format>_goal_mb` (twice one decoded image plus the output),
        `many_<format>_decode_peak_mb` (pillow decoding one input alone),
        `many_<format>_decoded_mb` (one input's pixels, decoded),
        `many_<format>_seconds` (best wall time) and `many_<format>_input_mb`.
    """
    figures: dict[str, float] = {}
    with tempfile.TemporaryDirectory() as folder:
        for fmt in ("PNG", "JPEG", "WEBP"):
            path = Path(folder, f"input.{fmt.lower()}")
            path.write_bytes(_many_input(fmt))
            measured = _run_child("many", [path] * MANY)
            goal = 2 * measured["decoded_mb"] + measured["output_mb"]
            key = f"many_{fmt.lower()}"
            figures[f"{key}_peak_mb"] = measured["peak_mb"]
            figures[f"{key}_goal_mb"] = goal
            figures[f"{key}_seconds"] = measured["seconds"]
            figures[f"{key}_input_mb"] = measured["input_mb"]
            figures[f"{key}_decode_peak_mb"] = measured["decode_peak_mb"]
            figures[f"{key}_decoded_mb"] = measured["decoded_mb"]
    return figures


def _many_input(fmt: str) -> bytes:
    """A 3000x3000 screenshot (PNG) or photo (JPEG, WEBP)."""
    from PIL import Image, ImageDraw

    size = (MANY_SIDE, MANY_SIDE)
    if fmt != "PNG":
        photo = Image.open(io.BytesIO(_camera_jpeg(size, seed=7)))
        buffer = io.BytesIO()
        photo.save(buffer, fmt, quality=85)
        return buffer.getvalue()
    screen = Image.new("RGB", size, (250, 250, 250))
    draw = ImageDraw.Draw(screen)
    draw.rectangle((0, 0, MANY_SIDE, 120), fill=(40, 60, 90))
    draw.rectangle((0, 120, 500, MANY_SIDE), fill=(230, 232, 236))
    for row in range(160, MANY_SIDE - 40, 36):
        for column in range(560, MANY_SIDE - 200, 310):
            width = 120 + (row * 7 + column) % 170
            draw.rectangle((column, row, column + width, row + 14), fill=(30, 30, 30))
    buffer = io.BytesIO()
    screen.save(buffer, "PNG")
    return buffer.getvalue()


def _camera_jpeg(size: tuple[int, int], *, seed: int) -> bytes:
    """A photo-like JPEG (noise over gradients) with EXIF orientation and GPS."""
    from PIL import Image

    gradient = Image.linear_gradient("L").resize(size)
    noise = Image.effect_noise(size, 24 + seed)
    red = Image.blend(gradient, noise, 0.35)
    green = Image.blend(gradient.rotate(90).resize(size), noise, 0.5)
    blue = Image.blend(noise, Image.new("L", size, 40 * seed % 255), 0.5)
    image = Image.merge("RGB", (red, green, blue))
    exif = Image.Exif()
    exif[0x0112] = 6
    exif[0x010F] = "Camera"
    exif[0x8825] = {1: "N", 2: (52.0, 22.0, 1.0)}
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90, exif=exif)
    return buffer.getvalue()


def _run_child(case: str, paths: list[Path]) -> dict[str, float]:
    done = subprocess.run(
        [
            sys.executable,
            str(Path(__file__).resolve()),
            "--child",
            case,
            *map(str, paths),
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=ROOT,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def _child(paths: list[str], runs: int = RUNS) -> dict[str, float]:
    """Runs in the subprocess: prepare the images, measure, print JSON.

    Besides time and peak memory, it reports `decoded_mb` (the largest input's
    pixels, decoded), `decode_peak_mb` (pillow's peak while decoding the first
    input alone, at full size) and `output_mb` (the upload's pixels and file).
    """
    sys.path.insert(0, str(ROOT))
    from PIL import Image

    from langchain_dynaspark.images import ImageLimits, prepare_upload
    from langchain_dynaspark.transport import TransportSettings

    settings = TransportSettings("http://127.0.0.1:9/unused", 10.0, 10.0, 0)
    limits = ImageLimits()

    def blocks_of(datas: list[bytes]) -> list[dict[str, Any]]:
        return [
            {
                "type": "image",
                "base64": base64.b64encode(d).decode(),
                "mime_type": "image/jpeg",
            }
            for d in datas
        ]

    uploads = []

    async def prepare(blocks: list[dict[str, Any]]) -> None:
        uploads.append(await prepare_upload(blocks, limits=limits, settings=settings))
        del uploads[:-1]

    small = io.BytesIO()
    Image.new("RGB", (64, 64), "red").save(small, "JPEG")
    asyncio.run(prepare(blocks_of([small.getvalue()] * 2)))

    datas = [Path(path).read_bytes() for path in paths]
    blocks = blocks_of(datas)
    baseline = _reset_peak()
    alone = Image.open(io.BytesIO(datas[0]))
    alone.load()
    del alone
    decode_peak = _peak() - baseline
    baseline = _reset_peak()
    walls, cpus = [], []
    for _ in range(runs):
        started, cpu = time.perf_counter(), time.process_time()
        asyncio.run(prepare(blocks))
        walls.append(time.perf_counter() - started)
        cpus.append(time.process_time() - cpu)
    peak = _peak() - baseline
    decoded = max(_pixel_bytes(Image.open(io.BytesIO(data))) for data in datas)
    (upload,) = uploads
    output = _pixel_bytes(Image.open(io.BytesIO(upload.data))) + len(upload.data)
    return {
        "seconds": min(walls),
        "median_seconds": statistics.median(walls),
        "cpu_seconds": statistics.median(cpus),
        "peak_mb": peak / 1e6,
        "input_mb": sum(map(len, datas)) / 1e6,
        "decoded_mb": decoded / 1e6,
        "decode_peak_mb": decode_peak / 1e6,
        "output_mb": output / 1e6,
    }


def _pixel_bytes(image: Any) -> int:
    """Bytes of `image`'s pixels once decoded (pillow keeps RGB as 4 bytes)."""
    return image.width * image.height * (4 if len(image.getbands()) >= 3 else 1)


def _reset_peak() -> int:
    """Reset the high-water mark if the kernel allows; return the current RSS."""
    with contextlib.suppress(OSError):  # else the peak may include earlier use
        Path("/proc/self/clear_refs").write_text("5")
    return _status_bytes("VmRSS") or 0


def _peak() -> int:
    hwm = _status_bytes("VmHWM")
    if hwm is not None:
        return hwm
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def _status_bytes(field: str) -> int | None:
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return None
    for line in status.splitlines():
        if line.startswith(f"{field}:"):
            return int(line.split()[1]) * 1024
    return None


def decoder_over_budget(figures: dict[str, float], fmt: str) -> bool:
    """Whether pillow's decoder alone needs twice one decoded `fmt` image or more.

    Then no composite of such images can meet its goal, however one at a time
    it decodes them: the decoder's own peak leaves no room for the output.
    """
    key = f"many_{fmt}"
    return figures[f"{key}_decode_peak_mb"] >= 2 * figures[f"{key}_decoded_mb"]


def main() -> int:
    """Print the figures; exit 1 if a goal is missed, unless the decoder alone does."""
    if len(sys.argv) > 2 and sys.argv[1] == "--child":
        runs = MANY_RUNS if sys.argv[2] == "many" else RUNS
        print(json.dumps(_child(sys.argv[3:], runs)))
        return 0
    figures = measure_image_preparation()
    print(
        f"Image preparation ({RUNS} runs: best / median wall, median CPU; "
        "peak RSS above the baseline)"
    )
    for case, title in (
        ("photo", "6000x4000 JPEG -> 2048 px"),
        ("composite", "4 x 4000x3000 JPEG -> grid"),
    ):
        print(
            f"  {title:28}"
            f" {figures[f'{case}_seconds'] * 1000:5.0f} /"
            f" {figures[f'{case}_median_seconds'] * 1000:5.0f} ms wall,"
            f" {figures[f'{case}_cpu_seconds'] * 1000:5.0f} ms CPU,"
            f" {figures[f'{case}_peak_mb']:4.0f} MB peak"
            f"  ({figures[f'{case}_input_mb']:.1f} MB of JPEG in)"
        )
    missed = [name for name, goal in GOALS.items() if figures[name] >= goal]
    for name in missed:
        print(f"  MISSED: {name} = {figures[name]:.2f} (goal < {GOALS[name]})")
    many = measure_many_images()
    print(
        f"{MANY} images of {MANY_SIDE}x{MANY_SIDE} in one conversation -> one grid "
        "(peak RSS above the baseline; goal: twice one decoded image plus the output)"
    )
    for fmt, title in (
        ("png", "PNG screenshots"),
        ("jpeg", "JPEG photos"),
        ("webp", "WEBP photos"),
    ):
        peak, goal = many[f"many_{fmt}_peak_mb"], many[f"many_{fmt}_goal_mb"]
        met = "ok" if peak < goal else "MISSED"
        print(
            f"  {title:17} {peak:4.0f} MB peak, goal < {goal:3.0f} MB: {met:6}"
            f" one full decode alone {many[f'many_{fmt}_decode_peak_mb']:4.0f} MB,"
            f" {many[f'many_{fmt}_seconds'] * 1000:5.0f} ms,"
            f" {many[f'many_{fmt}_input_mb']:.1f} MB in"
        )
        if peak < goal:
            continue
        if decoder_over_budget(many, fmt):
            print(
                f"    not counted: pillow's {fmt.upper()} decoder alone takes"
                f" {many[f'many_{fmt}_decode_peak_mb']:.0f} MB for one input, more"
                f" than twice its pixels ({2 * many[f'many_{fmt}_decoded_mb']:.0f} MB)"
            )
        else:
            missed.append(f"many_{fmt}_peak_mb")
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())

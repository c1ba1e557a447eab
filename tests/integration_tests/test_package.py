"""What ships: the wheel and sdist hold what a user needs and nothing else.

Both are built once per run (`python -m build --no-isolation`: the sdist, then
the wheel from it, with the test environment's hatchling, so nothing is
downloaded). The wheel is installed into a fresh virtual environment that finds
its dependencies in the test environment (a `.pth` line, no download, and not
the editable checkout), and that environment runs the command line against the
local server it ships.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import sysconfig
import tarfile
import zipfile
from collections.abc import Iterator
from email.parser import Parser
from pathlib import Path

import pytest
from PIL import Image

from langchain_dynaspark import __version__

ROOT = Path(__file__).parents[2]
PACKAGE = ROOT / "langchain_dynaspark"
DIST_INFO = f"langchain_dynaspark-{__version__}.dist-info"
SDIST_ROOT = f"langchain_dynaspark-{__version__}"
WAIT = 300.0
"""Most seconds a build or install may take before the test gives up."""


def package_files() -> set[str]:
    """The package's files in the checkout, relative to the repository root."""
    return {
        path.relative_to(ROOT).as_posix()
        for path in PACKAGE.rglob("*")
        if path.is_file()
        and "__pycache__" not in path.parts
        and path.suffix in (".py", ".typed")
    }


def doc_files() -> set[str]:
    """The reference pages in the checkout, relative to the repository root."""
    return {path.relative_to(ROOT).as_posix() for path in (ROOT / "docs").glob("*.md")}


def run(command: list[str | Path], *, cwd: Path = ROOT, input: str = "") -> str:
    """Run `command` in `cwd`, with `input` piped in; its output, or fail."""
    done = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        input=input,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("dist")
    run([sys.executable, "-m", "build", "--no-isolation", "--outdir", out, ROOT])
    [wheel] = out.glob("*.whl")
    [sdist] = out.glob("*.tar.gz")
    return {"wheel": wheel, "sdist": sdist}


@pytest.fixture(scope="module")
def venv(dist: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtual environment with the wheel installed."""
    root = tmp_path_factory.mktemp("venv")
    run([sys.executable, "-m", "venv", "--without-pip", root])
    python = root / "bin" / "python"
    purelib = Path(run([python, "-c", _PURELIB]).strip())
    # The dependencies come from the test environment: its site-packages joins
    # sys.path after the venv's own (its .pth files, such as the editable
    # install of this checkout, are not read).
    (purelib / "test-environment.pth").write_text(
        "\n".join(dict.fromkeys(sysconfig.get_path(n) for n in ("purelib", "platlib")))
        + "\n"
    )
    run(
        [
            *(sys.executable, "-m", "pip", "--python", python, "install"),
            *("--no-deps", "--no-index", "--no-cache-dir"),
            *("--disable-pip-version-check", dist["wheel"]),
        ]
    )
    return root


_PURELIB = "import sysconfig; print(sysconfig.get_path('purelib'))"


def test_the_wheel_holds_the_package_and_its_metadata(dist: dict[str, Path]) -> None:
    with zipfile.ZipFile(dist["wheel"]) as wheel:
        names = set(wheel.namelist())
        metadata = Parser().parsestr(wheel.read(f"{DIST_INFO}/METADATA").decode())
        entry_points = wheel.read(f"{DIST_INFO}/entry_points.txt").decode()
        license_text = wheel.read(f"{DIST_INFO}/licenses/LICENSE").decode()
    assert names == package_files() | {
        f"{DIST_INFO}/{name}"
        for name in ("METADATA", "WHEEL", "RECORD", "entry_points.txt")
    } | {f"{DIST_INFO}/licenses/LICENSE"}
    assert "langchain_dynaspark/py.typed" in names
    assert "langchain_dynaspark/testing/server.py" in names
    assert metadata["Name"] == "langchain-dynaspark"
    assert metadata["Version"] == __version__
    assert metadata["License-Expression"] == "MIT"
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload() == (ROOT / "README.md").read_text()
    assert "langchain-dynaspark = langchain_dynaspark.cli:main" in entry_points
    assert license_text == (ROOT / "LICENSE").read_text()


def test_the_sdist_holds_the_package_and_nothing_else(dist: dict[str, Path]) -> None:
    with tarfile.open(dist["sdist"]) as sdist:
        names = {name for name in sdist.getnames() if not sdist.getmember(name).isdir()}
    inside = {name.removeprefix(f"{SDIST_ROOT}/") for name in names}
    assert "docs/README.md" in inside
    assert inside == package_files() | doc_files() | {
        "PKG-INFO",
        "pyproject.toml",
        "README.md",
        "LICENSE",
        "CHANGELOG.md",
        ".gitignore",  # hatchling always ships it, so a rebuild ignores the same
    }


def test_the_installed_command_line_runs_against_the_shipped_server(
    venv: Path, tmp_path: Path
) -> None:
    python, command = venv / "bin" / "python", venv / "bin" / "langchain-dynaspark"
    where = run(
        [python, "-c", "import langchain_dynaspark as p; print(p.__file__)"],
        cwd=tmp_path,
    )
    assert Path(where.strip()).is_relative_to(venv)  # the wheel, not the checkout
    version = run([command, "--version"], cwd=tmp_path)
    assert version == f"langchain-dynaspark {__version__}\n"
    photo = tmp_path / "red.png"
    Image.new("RGB", (32, 32), "red").save(photo)
    with shipped_server(python, tmp_path) as url:
        answer = run(
            [command, "--base-url", url, "-i", photo, "Hello from the wheel"],
            cwd=tmp_path,
        )
        assert answer.startswith("Echo: Hello from the wheel\n[Image 1] (with ")
        piped = run(
            [python, "-m", "langchain_dynaspark", "--base-url", url, "--json"],
            cwd=tmp_path,
            input="piped prompt",
        )
        assert '"content": "Echo: piped prompt"' in piped


def test_the_installed_package_is_typed_for_its_users(
    venv: Path, tmp_path: Path
) -> None:
    user_code = tmp_path / "user_code.py"
    user_code.write_text(
        "from langchain_dynaspark import ChatDynaspark\n"
        "text: str = ChatDynaspark().invoke('Hi').text\n"
        "number: int = ChatDynaspark().invoke('Hi').text\n"
        # The documented arguments type-check as written in the README.
        "ChatDynaspark(model='gemini-2.0-flash', stop=['x'], temperature=0.2)\n"
        "ChatDynaspark(endpoint='api', seed=7, timeout=None, max_retries=3)\n"
    )
    done = subprocess.run(
        [
            *(sys.executable, "-m", "mypy", "--strict", "--no-incremental"),
            *("--python-executable", str(venv / "bin" / "python"), str(user_code)),
        ],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=WAIT,
        check=False,
    )
    # Only the deliberate mistake is found: the package is typed, not missing.
    assert done.stdout.count("error:") == 1, done.stdout
    assert "user_code.py:3: error: Incompatible types in assignment" in done.stdout


@contextlib.contextmanager
def shipped_server(python: Path, cwd: Path) -> Iterator[str]:
    """The installed local server on a free port, for the length of a block."""
    process = subprocess.Popen(
        [python, "-m", "langchain_dynaspark.testing.server", "--port", "0"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        assert line.startswith("Dynaspark test server on http://"), line
        yield line.rsplit(" ", 1)[1].strip()
    finally:
        process.terminate()
        process.communicate(timeout=WAIT)

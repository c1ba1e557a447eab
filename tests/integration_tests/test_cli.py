"""The command line driven as a user would: through pipes, and in a terminal.

One-shot runs get their input through a pipe and are read back from pipes;
`chat` runs in a pseudo-terminal, where Ctrl-C and Ctrl-D are keys typed, and the
local server records what each turn sent.
"""

from __future__ import annotations

import fcntl
import io
import json
import os
import pty
import re
import select
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from PIL import Image

from langchain_dynaspark.cli.output import WAKING_NOTICE_AFTER
from langchain_dynaspark.testing.server import DynasparkTestServer, Reply

COMMAND = [sys.executable, "-m", "langchain_dynaspark"]
WAIT = 60.0
"""Most seconds any step may take before the test gives up (never asserted)."""
SLOW = WAKING_NOTICE_AFTER + 3
"""A first answer slow enough for the waking-up notice."""


def environment() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("DYNASPARK_")}
    env.update(TERM="dumb", INPUTRC=os.devnull, NO_PROXY="127.0.0.1,localhost")
    return env


def run(
    *args: str, stdin: bytes | str = b"", timeout: float = WAIT
) -> subprocess.CompletedProcess[str]:
    data = stdin.encode() if isinstance(stdin, str) else stdin
    done = subprocess.run(
        [*COMMAND, *args],
        input=data,
        capture_output=True,
        timeout=timeout,
        check=False,
        env=environment(),
    )
    return subprocess.CompletedProcess(
        done.args, done.returncode, done.stdout.decode(), done.stderr.decode()
    )


def png(color: str, size: tuple[int, int] = (40, 30)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", size, color).save(buffer, "PNG")
    return buffer.getvalue()


def wait_for(condition: Callable[[], bool]) -> None:
    deadline = time.monotonic() + WAIT
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def assert_one_line_error(done: subprocess.CompletedProcess[str], status: int) -> str:
    assert done.returncode == status, done.stderr
    assert done.stdout == ""
    assert done.stderr.startswith("error: ")
    assert done.stderr.count("\n") == 1
    assert done.stderr.endswith("\n")
    assert "Traceback" not in done.stderr
    return done.stderr


# One-shot, through pipes


def test_piped_text_joins_the_prompt(server: DynasparkTestServer) -> None:
    done = run("--base-url", server.url, "Summarise this", stdin="line 1\nline 2\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Echo: Summarise this\n\nline 1\nline 2\n"
    assert done.stderr == ""
    [request] = server.requests
    assert request.fields["user_input"] == "Summarise this\n\nline 1\nline 2"


def test_piped_text_is_the_prompt_without_an_argument(
    server: DynasparkTestServer,
) -> None:
    done = run("--base-url", server.url, stdin="What is 2 + 2?\n")
    assert done.returncode == 0, done.stderr
    assert done.stdout == "Echo: What is 2 + 2?\n"


def test_system_prompt_and_model(server: DynasparkTestServer) -> None:
    server.script("4")
    done = run(
        "--base-url", server.url, "--endpoint", "form", "-s", "Be terse.",
        "-m", "gemini-2.0-flash", "2+2?",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout == "4\n"
    assert server.requests[0].fields == {
        "user_input": "System: Be terse.\n\nUser: 2+2?\n\nAssistant:",
        "ai_model": "gemini-2.0-flash",
    }


def test_stream_prints_the_answer(server: DynasparkTestServer) -> None:
    server.script("streamed answer")
    done = run("--base-url", server.url, "--stream", "Hi")
    assert (done.returncode, done.stdout, done.stderr) == (0, "streamed answer\n", "")


def test_api_endpoint_options_reach_the_query(server: DynasparkTestServer) -> None:
    server.script("4")
    done = run(
        "--base-url", server.url, "--endpoint", "api", "--temperature", "0.5",
        "--seed", "7", "-s", "Be terse.", "2+2?",
    )  # fmt: skip
    assert (done.returncode, done.stdout, done.stderr) == (0, "4\n", "")
    [request] = server.requests
    assert (request.method, request.path) == ("GET", "/api/generate_response")
    assert request.fields["user_input"] == "2+2?"
    assert request.fields["system"] == "Be terse."
    assert request.fields["temperature"] == "0.5"
    assert request.fields["seed"] == "7"
    assert "model" not in request.fields


def test_stream_on_the_api_prints_tokens_as_they_arrive(
    server: DynasparkTestServer,
) -> None:
    server.script(Reply(events=["one ", "two ", "three"], event_delay=2.0))
    with subprocess.Popen(
        [*COMMAND, "--base-url", server.url, "--endpoint", "api", "--stream", "Hi"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    ) as process:
        assert process.stdout is not None
        first = os.read(process.stdout.fileno(), 64)
        # The first token is printed while the server still holds the others.
        assert first == b"one "
        assert not server.streams[0].disconnected
        rest, errors = process.communicate(timeout=WAIT)
    assert process.returncode == 0, errors
    assert first + rest == b"one two three\n"


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["--endpoint", "rest"], "invalid choice: 'rest'"),
        (["--temperature", "hot"], "invalid float value: 'hot'"),
        (["--endpoint", "api", "--temperature", "9"], "temperature"),
    ],
)
def test_bad_api_options_exit_2_before_anything_is_sent(
    server: DynasparkTestServer, args: list[str], said: str
) -> None:
    done = run("--base-url", server.url, *args, "Hi")
    assert said in assert_one_line_error(done, 2)
    assert server.requests == []


def test_json_output_parses_back(server: DynasparkTestServer) -> None:
    server.script("Bonjour ! ✓")
    done = run(
        "--base-url", server.url, "--endpoint", "form", "--json",
        "-m", "gemini-2.0-flash", "Hi",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert done.stdout.count("\n") == 1
    assert json.loads(done.stdout) == {
        "content": "Bonjour ! ✓",
        "tool_calls": [],
        "invalid_tool_calls": [],
        "response_metadata": {
            "model_name": "gemini-2.0-flash",
            "model_provider": "dynaspark",
            "finish_reason": "stop",
            "endpoint": "form",
        },
        "usage_metadata": None,
    }


def test_images_reach_the_server(server: DynasparkTestServer, tmp_path: Path) -> None:
    photo = tmp_path / "red.jpg"
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    Image.new("RGB", (64, 48), "red").save(photo, "JPEG", exif=exif.tobytes())
    server.files["green.png"] = (png("green"), "image/png")
    done = run(
        "--base-url", server.url, "-i", str(photo), "--image",
        f"{server.url}/files/green.png", "Which colours?",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    [request] = server.requests
    assert request.fields["user_input"] == "Which colours?\n[Image 1]\n[Image 2]"
    assert request.file is not None
    grid = Image.open(io.BytesIO(request.file.data)).convert("RGB")
    width, height = grid.size
    colours = {grid.getpixel((x, y)) for x in range(width) for y in range(height)}
    assert any(r > 200 and g < 60 and b < 60 for r, g, b in colours)  # the photo
    assert any(g > 100 and r < 60 and b < 60 for r, g, b in colours)  # the URL


def test_one_image_arrives_without_its_metadata(
    server: DynasparkTestServer, tmp_path: Path
) -> None:
    photo = tmp_path / "red.jpg"
    exif = Image.Exif()
    exif[0x010F] = "CameraMaker"
    Image.new("RGB", (64, 48), "red").save(photo, "JPEG", exif=exif.tobytes())
    done = run("--base-url", server.url, "-i", str(photo), "What is this?")
    assert done.returncode == 0, done.stderr
    [request] = server.requests
    assert request.file is not None
    assert request.file.content_type == "image/jpeg"
    sent = Image.open(io.BytesIO(request.file.data))
    assert sent.size == (64, 48)
    assert b"CameraMaker" not in request.file.data
    assert request.fields["user_input"] == "What is this?\n[Image 1]"


@pytest.mark.parametrize(
    ("make_args", "said"),
    [
        (lambda d: ["-i", str(d / "missing.png"), "Hi"], "missing.png: no such file"),
        (lambda d: ["-i", str(d / "notes.txt"), "Hi"], "is not an image that can be"),
        (lambda d: ["-i", "URL/files/gone.png", "Hi"], "failed: HTTP 404"),
        (lambda d: [], "Nothing to send"),
        (lambda d: ["--bogus", "Hi"], "unrecognized arguments: --bogus"),
        (lambda d: ["chat", "Hi"], "unrecognized arguments: Hi"),
        (lambda d: ["--base-url", "ftp://host", "Hi"], "not an http(s) URL"),
    ],
    ids=[
        "missing-file",
        "not-an-image",
        "image-url-404",
        "no-prompt",
        "unknown-flag",
        "chat-with-prompt",
        "bad-base-url",
    ],
)
def test_bad_usage_and_input_exit_2_before_anything_is_sent(
    server: DynasparkTestServer,
    tmp_path: Path,
    make_args: Callable[[Path], list[str]],
    said: str,
) -> None:
    (tmp_path / "notes.txt").write_text("not an image")
    args = [arg.replace("URL", server.url) for arg in make_args(tmp_path)]
    done = run("--base-url", server.url, *args)
    assert said in assert_one_line_error(done, 2)
    assert server.requests == []


def test_binary_stdin_is_refused(server: DynasparkTestServer) -> None:
    done = run("--base-url", server.url, "Describe", stdin=png("red"))
    assert "not UTF-8 text" in assert_one_line_error(done, 2)
    assert server.requests == []


@pytest.mark.parametrize(
    ("replies", "said"),
    [
        ([Reply(status=400, body={"error": "bad model"})], "HTTP 400"),
        ([Reply(status=503, body="<html>waking</html>")] * 3, "503"),
        ([Reply(body="<html>maintenance</html>")], "HTML"),
    ],
    ids=["rejected", "unavailable-after-retries", "html-page"],
)
def test_service_errors_exit_1_with_what_to_do(
    server: DynasparkTestServer, replies: list[Reply], said: str
) -> None:
    server.script(*replies)
    done = run("--base-url", server.url, "Hi")
    line = assert_one_line_error(done, 1)
    assert said in line
    assert len(server.requests) == len(replies)


def test_an_unreachable_service_exits_1(unused_port: int) -> None:
    done = run("--base-url", f"http://127.0.0.1:{unused_port}", "Hi")
    line = assert_one_line_error(done, 1)
    assert "Could not talk to Dynaspark" in line
    assert "retry" in line


def test_ctrl_c_exits_130_without_a_traceback(server: DynasparkTestServer) -> None:
    server.script(Reply(text="too late", delay=5))
    process = subprocess.Popen(
        [*COMMAND, "--base-url", server.url, "Hi"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=environment(),
    )
    wait_for(lambda: len(server.requests) == 1)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=WAIT)
    assert process.returncode == 130
    assert out == b""
    assert b"Traceback" not in err


def test_nothing_extra_is_printed_when_piped(server: DynasparkTestServer) -> None:
    server.script(Reply(text="late answer", delay=SLOW))
    done = run("--base-url", server.url, "Hi")
    assert (done.returncode, done.stdout, done.stderr) == (0, "late answer\n", "")


@pytest.fixture
def unused_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


# In a terminal


class Terminal:
    """The command running in a pseudo-terminal, typed into like a user would."""

    def __init__(self, args: list[str]) -> None:
        self.master, slave = pty.openpty()
        fcntl.ioctl(self.master, termios.TIOCSWINSZ, struct.pack("HHHH", 40, 200, 0, 0))
        self.process = subprocess.Popen(
            [*COMMAND, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env=environment(),
            start_new_session=True,
            preexec_fn=_take_controlling_terminal,  # noqa: PLW1509
        )
        os.close(slave)
        self.output = b""
        self._seen = 0

    def expect(self, pattern: str) -> str:
        """Read until `pattern` (a regex) appears in output not yet expected."""
        seen = self.read_until(pattern, WAIT)
        assert seen is not None, (
            f"never saw {pattern!r} in {self.output[self._seen :]!r}"
        )
        return seen

    def read_until(self, pattern: str, within: float) -> str | None:
        """Like `expect`, but `None` when `pattern` is not seen `within` seconds."""
        regex = re.compile(pattern.encode())
        deadline = time.monotonic() + within
        while True:
            match = regex.search(self.output, self._seen)
            if match:
                seen = self.output[self._seen : match.end()]
                self._seen = match.end()
                return seen.decode(errors="replace")
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            ready, _, _ = select.select([self.master], [], [], left)
            if ready:
                try:
                    data = os.read(self.master, 4096)
                except OSError:  # EIO: the command closed the terminal
                    data = b""
                assert data, f"closed before {pattern!r}: {self.output[self._seen :]!r}"
                self.output += data

    def type(self, text: str) -> None:
        os.write(self.master, text.encode())

    def prompt(self) -> None:
        self.expect(r"(?m)^> ")

    def interrupt_line(self) -> None:
        """Press Ctrl-C at the prompt, again if need be, until a new prompt shows.

        CPython's `readline` sees a SIGINT only while it waits for a key: one
        that lands while it is handling the previous key is noticed at the next
        key, so a user at a real terminal may have to press Ctrl-C twice too. A
        second Ctrl-C at the fresh, empty prompt changes nothing.
        """
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            self.type("\x03")
            if self.read_until(r"(?m)^> ", 2.0) is not None:
                return
        raise AssertionError(f"no new prompt after Ctrl-C: {self.output!r}")

    def exit_status(self) -> int:
        return self.process.wait(timeout=WAIT)

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait()
        os.close(self.master)


def _take_controlling_terminal() -> None:
    """In the child: make the pty its terminal, so Ctrl-C sends SIGINT."""
    fcntl.ioctl(0, termios.TIOCSCTTY, 0)


@pytest.fixture
def terminal(server: DynasparkTestServer) -> Iterator[Callable[..., Terminal]]:
    opened: list[Terminal] = []

    def open_terminal(*args: str) -> Terminal:
        opened.append(Terminal(list(args)))
        return opened[-1]

    yield open_terminal
    for term in opened:
        term.close()


def sent(server: DynasparkTestServer) -> list[str]:
    return [request.fields["user_input"] for request in server.requests]


def test_chat_keeps_history_resets_and_leaves_on_ctrl_d(
    server: DynasparkTestServer, terminal: Callable[..., Terminal]
) -> None:
    server.script("Hello Ada.", "You are Ada.", "I don't know.")
    term = terminal(
        "chat", "--base-url", server.url, "--endpoint", "form", "-s", "Be brief."
    )
    term.expect(r"/reset \(forget the conversation\)")
    term.prompt()
    term.type("My name is Ada.\r")
    term.expect("Hello Ada.\r?\n")
    term.prompt()
    term.type("What is my name?\r")
    term.expect("You are Ada.\r?\n")
    term.prompt()
    term.type("/reset\r")
    term.expect(r"\(conversation forgotten\)")
    term.prompt()
    term.type("What is my name?\r")
    term.expect("I don't know.\r?\n")
    term.prompt()
    term.type("\x04")  # Ctrl-D
    assert term.exit_status() == 0
    assert sent(server) == [
        "System: Be brief.\n\nUser: My name is Ada.\n\nAssistant:",
        "System: Be brief.\n\nUser: My name is Ada.\n\nAssistant: Hello Ada.\n\n"
        "User: What is my name?\n\nAssistant:",
        "System: Be brief.\n\nUser: What is my name?\n\nAssistant:",
    ]
    assert b"Traceback" not in term.output


def test_chat_ctrl_c_stops_the_answer_and_keeps_the_session(
    server: DynasparkTestServer, terminal: Callable[..., Terminal]
) -> None:
    server.script("Hi.", Reply(text="A long story", delay=5), "Still here.")
    term = terminal("chat", "--base-url", server.url)
    term.prompt()
    term.type("Hello\r")
    term.expect("Hi.\r?\n")
    term.prompt()
    term.type("Tell me a long story\r")
    wait_for(lambda: len(server.requests) == 2)
    term.type("\x03")  # Ctrl-C while the answer is awaited
    term.expect(r"\(answer stopped\)")
    term.prompt()
    term.type("half a line")
    term.expect("half a line")
    term.interrupt_line()  # Ctrl-C at the prompt drops the line
    term.type("Are you there?\r")
    term.expect("Still here.\r?\n")
    term.prompt()
    term.type("/exit\r")
    assert term.exit_status() == 0
    assert sent(server)[2] == (
        "User: Hello\n\nAssistant: Hi.\n\nUser: Are you there?\n\nAssistant:"
    )
    assert len(server.requests) == 3
    assert "A long story" not in term.output.decode()
    assert b"Traceback" not in term.output


def test_chat_line_editing_recalls_earlier_lines(
    server: DynasparkTestServer, terminal: Callable[..., Terminal]
) -> None:
    pytest.importorskip("readline")
    term = terminal("chat", "--base-url", server.url)
    term.prompt()
    term.type("first line\r")
    term.expect("Echo: first line")
    term.prompt()
    term.type("\x10 again\r")  # Ctrl-P: the previous line, then edited
    term.expect("Assistant:\r?\n")
    term.prompt()
    term.type("\x04")
    assert term.exit_status() == 0
    assert sent(server)[1].endswith("User: first line again\n\nAssistant:")


def test_chat_images_go_with_the_first_message(
    server: DynasparkTestServer, terminal: Callable[..., Terminal], tmp_path: Path
) -> None:
    (tmp_path / "red.png").write_bytes(png("red"))
    term = terminal("chat", "--base-url", server.url, "-i", str(tmp_path / "red.png"))
    term.prompt()
    term.type("What colour?\r")
    term.expect(r"Echo: What colour\?\r?\n\[Image 1\] \(with ")
    term.prompt()
    term.type("\x04")
    assert term.exit_status() == 0
    [request] = server.requests
    assert request.file is not None
    assert Image.open(io.BytesIO(request.file.data)).convert("RGB").getpixel(
        (0, 0)
    ) == (255, 0, 0)


def test_chat_errors_keep_the_session(
    server: DynasparkTestServer, terminal: Callable[..., Terminal]
) -> None:
    server.script(Reply(status=400, body={"error": "bad"}), "Fine.")
    term = terminal("chat", "--base-url", server.url)
    term.prompt()
    term.type("Hi\r")
    term.expect("error: Dynaspark rejected the request with HTTP 400[^\n]*\n")
    term.prompt()
    term.type("/help\r")
    term.expect("Commands: /reset")
    term.prompt()
    term.type("/nope\r")
    term.expect("Unknown command /nope")
    term.prompt()
    term.type("Hi again\r")
    term.expect("Fine.")
    term.prompt()
    term.type("\x04")
    assert term.exit_status() == 0
    assert sent(server) == ["Hi", "Hi again"]


def test_a_slow_first_answer_says_the_service_may_be_waking_up(
    server: DynasparkTestServer, terminal: Callable[..., Terminal]
) -> None:
    server.script(Reply(text="Awake now.", delay=SLOW))
    term = terminal("chat", "--base-url", server.url)
    term.prompt()
    term.type("Hello?\r")
    notice = term.expect(r"Waiting \d+ s for Dynaspark: it may be waking up")
    term.expect(r"Waiting \d+ s")  # the count goes on
    answer = term.expect("Awake now.")
    assert re.search(r"\r +\rAwake now\.$", answer), answer  # the notice is erased
    assert "\rWaiting" in notice
    term.prompt()
    term.type("\x04")
    assert term.exit_status() == 0


def test_chat_from_a_pipe_takes_a_turn_per_line(server: DynasparkTestServer) -> None:
    server.script("One.", "Two.")
    done = run("chat", "--base-url", server.url, stdin="first\n\nsecond\n")
    assert (done.returncode, done.stdout, done.stderr) == (0, "One.\nTwo.\n", "")
    assert (
        sent(server)[1]
        == "User: first\n\nAssistant: One.\n\nUser: second\n\nAssistant:"
    )


# Pictures and speech


def test_an_image_model_writes_the_picture_and_prints_its_path(
    server: DynasparkTestServer, tmp_path: Path
) -> None:
    out = tmp_path / "cat.png"
    done = run(
        "--base-url", server.url, "-m", "flux", "--width", "80", "--height", "72",
        "a red cat", "-o", str(out),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n"
    with Image.open(out) as image:
        assert (image.format, image.size) == ("PNG", (80, 72))
    [request] = server.requests
    assert request.fields["user_input"] == "a red cat"


def test_without_output_an_image_model_prints_the_url_only(
    server: DynasparkTestServer,
) -> None:
    done = run("--base-url", server.url, "-m", "turbo", "a red cat")

    assert done.returncode == 0, done.stderr
    assert re.fullmatch(
        re.escape(server.url) + r"/generated/\w+\.jpg\?\S+\n", done.stdout
    )
    assert done.stderr == ""


def test_speech_is_written_with_the_chosen_voice(
    server: DynasparkTestServer, tmp_path: Path
) -> None:
    out = tmp_path / "hello.mp3"
    done = run(
        "--base-url", server.url, "-m", "openai-audio", "--voice", "nova",
        "hello", "-o", str(out),
    )  # fmt: skip

    assert done.returncode == 0, done.stderr
    assert done.stdout == f"{out}\n"
    assert out.read_bytes().startswith(b"ID3")
    [request] = server.requests
    assert request.fields["voice"] == "nova"


def test_speech_goes_to_a_pipe_but_never_to_a_terminal(
    server: DynasparkTestServer, terminal: Callable[..., Terminal]
) -> None:
    piped = subprocess.run(
        [*COMMAND, "--base-url", server.url, "-m", "openai-audio", "hello"],
        capture_output=True,
        timeout=WAIT,
        check=False,
        env=environment(),
    )
    assert piped.returncode == 0, piped.stderr
    assert piped.stdout.startswith(b"ID3")
    server.reset()

    term = terminal("--base-url", server.url, "-m", "openai-audio", "hello")

    term.expect(r"error: Refusing to write MP3 audio to a terminal[^\n]*\n")
    assert term.exit_status() == 2
    assert b"ID3" not in term.output
    assert server.requests == []


@pytest.mark.parametrize(
    "args",
    [
        ["-m", "flux", "--width", "9999", "a cat"],
        ["-m", "openai-audio", "--voice", "robot", "hi"],
        ["-o", "answer.txt", "hi"],
        ["chat", "-m", "flux"],
    ],
    ids=["size", "voice", "output-for-text", "chat"],
)
def test_bad_media_usage_exits_2_before_anything_is_sent(
    server: DynasparkTestServer, args: list[str]
) -> None:
    done = run(*args, "--base-url", server.url)

    assert_one_line_error(done, 2)
    assert server.requests == []

"""Every shell block of README.md and docs/ works pasted as written.

Each block is named below with what it needs: ``RUN`` blocks need nothing but this machine and run here;
the others need an AWS account, a Raspberry Pi, the gdk CLI, or run for long, and name the test that
runs them instead. Whatever a block needs, each ``fanwatch`` command in it is parsed by the real
command-line parser (so a renamed option or a missing subcommand fails here), each ``make`` target
exists, and each file it names is in the repository. A new block fails until it is named here.
"""

from __future__ import annotations

import importlib
import os
import re
import shlex
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]

RUN = "run here"
ACCOUNT = "needs an AWS account and credentials"
PI = "needs a Raspberry Pi with Greengrass"
GDK = "needs the gdk CLI (and an account to publish)"


def covered(test: str) -> str:
    return f"run by {test}"


#: (document, the block's first command) -> what it needs
NEEDS: dict[tuple[str, str], str] = {
    ("README.md", "make demo"): covered("tests/e2e/test_demo.py (make test is CI itself)"),
    ("README.md", "make build"): GDK,
    ("README.md", "sudo apt install python3-venv"): PI,
    ("README.md", "make build\nfanwatch core run"): RUN,
    ("README.md", "fanwatch fleet local"): covered("tests/e2e/fleet/test_walkthrough.py"),
    ("README.md", "make synth"): covered("tests/unit/stack (a synthesis per session)"),
    ("README.md", "make synth && source .venv/bin/activate"): ACCOUNT,
    ("aws.md", "make synth"): ACCOUNT,
    ("aws.md", "aws s3 mb s3://my-fanwatch-deploy-$AWS_REGION"): ACCOUNT,
    ("aws.md", "fanwatch stack check"): covered("tests/functional/stack/test_stack_check.py on the stand-in"),
    ("aws.md", "ALERTS=$(aws cloudformation describe-stacks --stack-name fanwatch-cloud"): ACCOUNT,
    ("aws.md", "aws resourcegroupstaggingapi get-resources"): ACCOUNT,
    ("aws.md", ".venv/bin/python -c"): ACCOUNT,
    (
        "core-mqtt.md",
        ".venv/bin/python -m pytest tests/unit/core/mqtt tests/functional/core/mqtt -q",
    ): covered("the suite itself"),
    ("core-mqtt.md", "export FANWATCH_BROKER_USERNAME=fanwatch"): covered(
        "tests/functional/core/mqtt/test_amqtt_login.py"
    ),
    ("core.md", "make build"): covered("the README's block of the same commands, run here"),
    ("demo.md", "make demo"): covered("tests/e2e/test_demo.py"),
    ("detection.md", "out() {"): ACCOUNT,
    ("demo.md", ".venv/bin/python -m pytest tests/functional/demo -q"): covered("the suite itself"),
    ("edge.md", "python docs/examples/edge_simulated_fan.py"): covered("tests/unit/edge"),
    ("edge.md", "python docs/examples/edge_configuration.py"): covered("tests/unit/edge"),
    ("edge.md", "make build"): GDK,
    ("edge.md", "sudo usermod -aG gpio ggc_user && sudo systemctl restart greengrass"): PI,
    ("edge.md", "python -m pytest tests/unit/edge tests/unit/build tests/unit/test_telemetry.py"): covered(
        "the suite itself"
    ),
    ("fleet.md", "CLAIM=$(aws iot create-keys-and-certificate --set-as-active"): ACCOUNT,
    ("fleet.md", "sudo apt install -y default-jre-headless python3-venv"): PI,
    ("fleet.md", "sudo -E java"): PI,
    ("standin.md", "fanwatch stack up"): covered(
        "tests/functional/standin (test_stack_cli, test_lake_queries)"
    ),
}


@dataclass(frozen=True)
class Block:
    doc: Path
    text: str

    @property
    def id(self) -> str:
        return f"{self.doc.name}:{self.text.splitlines()[0][:50]}"

    def commands(self) -> list[str]:
        """The block's lines without comments, continuation lines joined."""
        joined = re.sub(r"\\\n\s*", " ", self.text)
        lines = (re.sub(r"(^|\s+)#(\s.*)?$", "", line).strip() for line in joined.splitlines())
        return [line for line in lines if line]

    def key(self) -> tuple[str, str] | None:
        """Its entry in NEEDS: the longest first command that this block starts with."""
        text = "\n".join(self.commands())
        keys = [(doc, start) for doc, start in NEEDS if doc == self.doc.name and text.startswith(start)]
        return max(keys, key=lambda k: len(k[1]), default=None)

    def needs(self) -> str | None:
        key = self.key()
        return None if key is None else NEEDS[key]


def blocks() -> list[Block]:
    found = []
    for doc in DOCS:
        for match in re.finditer(r"^```(?:sh|bash)\n(.*?)^```", doc.read_text(), flags=re.M | re.S):
            found.append(Block(doc, match.group(1)))
    return found


BLOCKS = blocks()


def simple_commands(block: Block) -> list[list[str]]:
    """Each simple command of the block (split at &&, ||, ;, |, &, parentheses, as the shell would;
    a ``$(...)`` gives one word, a ``$VAR`` the word VALUE; ``VAR=value`` before a command dropped)."""
    out = []
    for line in block.commands():
        line = re.sub(r"\$\((?:[^()]|\([^()]*\))*\)", "SUBSTITUTED", line)
        line = re.sub(r"\$\{?[A-Z_]+\}?", "VALUE", line)
        lexer = shlex.shlex(line, posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        words: list[str] = []
        for token in [*lexer, ";"]:
            if token and set(token) <= set("&|;()"):
                while words and re.fullmatch(r"[A-Z_]+=\S*", words[0]):
                    words = words[1:]
                if words:
                    out.append(words)
                words = []
            else:
                words.append(token)
    return out


def parse_fanwatch(argv: list[str]) -> None:
    """Parse ``fanwatch ARGV`` with the real parsers, running nothing."""
    from fanwatch.cli import SUBCOMMANDS

    assert argv and argv[0] in SUBCOMMANDS, f"fanwatch has no command {argv[:1]}"
    import argparse

    module = importlib.import_module(SUBCOMMANDS[argv[0]][0])
    parser = argparse.ArgumentParser(prog=f"fanwatch {argv[0]}", exit_on_error=False)
    module.add_arguments(parser)
    try:
        parser.parse_args(argv[1:])
    except SystemExit as exc:
        raise AssertionError(f"fanwatch {shlex.join(argv)}: refused by its parser") from exc


def test_every_block_is_named_with_what_it_needs() -> None:
    assert BLOCKS, "README.md and docs/ show commands"
    unnamed = [b.id for b in BLOCKS if b.needs() is None]
    assert unnamed == [], "name these blocks in NEEDS (run here, or what they need and what runs them)"
    assert set(NEEDS) - {b.key() for b in BLOCKS} == set(), "NEEDS names blocks that are gone"


@pytest.mark.parametrize("block", BLOCKS, ids=lambda b: b.id)
def test_each_command_of_each_block_exists_as_written(block: Block) -> None:
    syntax = subprocess.run(["bash", "-n", "-c", block.text], capture_output=True, text=True)
    assert syntax.returncode == 0, syntax.stderr
    targets = set(re.findall(r"^([a-z]+):", (REPO / "Makefile").read_text(), flags=re.M))
    for words in simple_commands(block):
        if words[0] == "fanwatch":
            parse_fanwatch(words[1:])
        elif words[0] == "make":
            assert set(words[1:]) <= targets, words
        elif words[0] in ("python", "python3", ".venv/bin/python") and words[1:2] != ["-c"]:
            paths = [w for w in words[1:] if w.startswith(("docs/", "tests/", "bench/"))]
            assert paths and all((REPO / p.split("::")[0]).exists() for p in paths), words
        if "docs/examples/" in " ".join(words):
            for path in re.findall(r"docs/examples/[\w.]+", " ".join(words)):
                assert (REPO / path).exists(), path


@pytest.fixture
def shell_env(tmp_path: Path) -> dict[str, str]:
    """The environment a reader has after ``make``: the venv's ``fanwatch`` on PATH, and a ``make`` that
    runs each target's commands with that venv without installing again (it is installed already)."""
    venv = Path(sys.prefix)
    shims = tmp_path / "bin"
    shims.mkdir()
    make = shutil.which("make")
    assert make, "make is not installed"
    stamps = [".ready", ".installed-demo", ".installed-test", ".installed-synth", ".installed-bench"]
    old = " ".join(f"-o {venv / s}" for s in stamps)
    (shims / "make").write_text(f'#!/bin/sh\nexec {make} {old} VENV={venv} "$@"\n')
    (shims / "make").chmod(0o755)
    return {**os.environ, "PATH": f"{shims}{os.pathsep}{venv / 'bin'}{os.pathsep}{os.environ['PATH']}"}


@pytest.mark.slow
@pytest.mark.timeout(300)
@pytest.mark.parametrize("block", [b for b in BLOCKS if b.needs() == RUN], ids=lambda b: b.id)
def test_blocks_that_need_nothing_but_this_machine_run_as_written(
    block: Block, shell_env: dict[str, str], tmp_path: Path
) -> None:
    # the one change: a private folder for /tmp/gg, so two runs on one machine do not meet
    script = block.text.replace("/tmp/gg", str(tmp_path / "gg"))
    done = subprocess.run(
        ["bash", "-e", "-c", f"trap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n{script}"],
        cwd=REPO,
        env=shell_env,
        capture_output=True,
        text=True,
        timeout=240,
    )
    assert done.returncode == 0, f"{block.id}\n--- stdout\n{done.stdout}\n--- stderr\n{done.stderr}"
    if "fanwatch core deploy" in block.text:
        assert re.search(r"^fan-001: cli-\w+: SUCCESSFUL", done.stdout, flags=re.M), done.stdout
        assert re.search(r"^fan-002: cli-\w+: SUCCESSFUL", done.stdout, flags=re.M), done.stdout
    if "fanwatch core stop" in block.text:
        assert "stopped:" in done.stdout

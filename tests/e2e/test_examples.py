"""The instrumentation examples run against a local OpenAI-compatible server and print the span trees."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Iterator

import pytest
from conftest import REPO

pytest.importorskip("openai")
pytest.importorskip("langchain_core")

from openai_server import OpenAIServer


@pytest.fixture(scope="module")
def server() -> Iterator[OpenAIServer]:
    running = OpenAIServer()
    yield running
    running.stop()


def _run(example: str, server: OpenAIServer, data_dir: Path) -> str:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TRACEHOUSE_", "OPENAI_"))}
    env.update(OPENAI_BASE_URL=server.url, OPENAI_API_KEY="test", TRACEHOUSE_DIR=str(data_dir))
    result = subprocess.run(
        [sys.executable, str(REPO / "examples" / example)], env=env, capture_output=True, text=True, timeout=180
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_rag_openai_example(server: OpenAIServer, tmp_path: Path) -> None:
    out = _run("rag_openai.py", server, tmp_path)
    assert out.count("A: Rotate keys every 90 days.") == 2
    assert "└─ generate [chain]" in out and "   └─ chat gpt-4o-mini [chat]" in out and "tokens=" in out
    assert "├─ retrieve [retriever]" in out
    table = {line.split()[0]: line.split() for line in out.splitlines() if line.startswith("chat gpt-4o-mini ")}
    assert table, out


def test_rag_langchain_example(server: OpenAIServer, tmp_path: Path) -> None:
    out = _run("rag_langchain.py", server, tmp_path)
    lines = out.splitlines()
    assert any(line.startswith("└─ RunnableSequence [chain]") for line in lines)
    assert any("KeywordRetriever [retriever]" in line for line in lines)
    chat = [i for i, line in enumerate(lines) if "chat gpt-4o-mini [chat]" in line]
    assert len(chat) == 2 and "tokens=" not in lines[chat[0]] and "tokens=" in lines[chat[1]]
    assert lines[chat[1]].index("└─") > lines[chat[0]].index("├─"), "the OpenAI span is the model span's child"

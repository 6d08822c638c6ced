"""Payload capture that never fails.

Unit tests of `tracehouse.spans.serialize` (`capture`, `to_json_bytes`) and the same guarantees end to end
through `@th.trace`: any value becomes bounded, valid text (or only its size), and tracing a function
never changes what the function does.
"""

from __future__ import annotations

import base64
import dataclasses
import datetime as dt
import decimal
import enum
import json
import re
import textwrap
import uuid
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any, Iterator, Optional

import numpy as np
import pydantic
import pytest
from conftest import reconfigure, run_python

import tracehouse as th
from tracehouse._json import to_json_bytes
from tracehouse.spans.serialize import capture
from tracehouse.testing import CapturedSpans

LIMIT = 64 * 1024


def as_json(value: Any) -> Any:
    """What `to_json_bytes` made of `value`, parsed back (it must always be valid JSON)."""
    return json.loads(to_json_bytes(value))


def compact(value: Any) -> str:
    """The compact JSON text tracehouse stores for a JSON-able value."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


# --- values of every kind ----------------------------------------------------------------------------


class Colour(enum.Enum):
    RED = 1
    GREEN = "green"


class Mode(str, enum.Enum):
    FAST = "fast"


class Level(enum.IntEnum):
    HIGH = 3


class Author(pydantic.BaseModel):
    name: str
    email: Optional[str] = None


class Post(pydantic.BaseModel):
    title: str
    author: Author
    tags: set[str]
    created: dt.datetime
    colour: Colour
    score: decimal.Decimal


@dataclasses.dataclass
class Point:
    x: float
    y: float


@dataclasses.dataclass
class Shape:
    name: str
    points: list[Point]
    labels: frozenset[str]
    raw: bytes


class BrokenRepr:
    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


class Hostile:
    """Every protocol a serialiser might try raises."""

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        raise RuntimeError("no repr")

    def __str__(self) -> str:
        raise RuntimeError("no str")

    def __getattr__(self, name: str) -> Any:
        raise RuntimeError(f"no attribute {name}")

    def __iter__(self) -> Iterator[Any]:
        raise RuntimeError("no iter")

    def __len__(self) -> int:
        raise RuntimeError("no len")

    def __eq__(self, other: object) -> bool:
        raise RuntimeError("no eq")


class ExplodingMapping(Mapping[str, Any]):
    def __getitem__(self, key: str) -> Any:
        raise RuntimeError("no getitem")

    def __iter__(self) -> Iterator[str]:
        raise RuntimeError("no iter")

    def __len__(self) -> int:
        return 1


class FakeModel:
    """Looks like a pydantic model, but its model_dump raises."""

    def model_dump(self, **kwargs: Any) -> Any:
        raise ValueError("cannot dump")

    def __repr__(self) -> str:
        return "FakeModel()"


class Plain:
    def __init__(self) -> None:
        self.secret = 1

    def __repr__(self) -> str:
        return "Plain(secret=1)"


def test_strings_are_stored_as_they_are() -> None:
    assert capture("hello", LIMIT) == ("hello", 5)
    assert capture("héllo €", LIMIT) == ("héllo €", len("héllo €".encode()))
    assert capture("", LIMIT) == ("", 0)
    assert capture('{"already": "json"}', LIMIT) == ('{"already": "json"}', 19)  # not JSON-encoded again


def test_other_values_are_stored_as_json() -> None:
    text, size = capture({"q": "hi", "k": [1, 2.5, None, True]}, LIMIT)
    assert text == '{"q":"hi","k":[1,2.5,null,true]}'
    assert size == len(text.encode())
    assert capture(None, LIMIT) == ("null", 4)
    assert capture(42, LIMIT) == ("42", 2)
    assert capture(("a", 1), LIMIT) == ('["a",1]', 7)
    assert capture({1: "a", None: "b"}, LIMIT)[0] == '{"1":"a","null":"b"}'  # non-string keys


def test_pydantic_v2_models() -> None:
    post = Post(
        title="t",
        author=Author(name="ann"),
        tags={"x"},
        created=dt.datetime(2024, 5, 6, 7, 8, 9, tzinfo=dt.timezone.utc),
        colour=Colour.GREEN,
        score=decimal.Decimal("1.50"),
    )
    assert as_json(post) == post.model_dump(mode="json")
    assert as_json(post) == {
        "title": "t",
        "author": {"name": "ann", "email": None},
        "tags": ["x"],
        "created": "2024-05-06T07:08:09Z",
        "colour": "green",
        "score": "1.50",
    }
    assert as_json({"posts": [post], "author": Author(name="bo")})["author"] == {"name": "bo", "email": None}
    assert "Author" in as_json(Author)  # a model class is not dumped, it is described


def test_dataclasses_including_nested_and_non_json_fields() -> None:
    shape = Shape(name="tri", points=[Point(0, 0), Point(1, 0.5)], labels=frozenset({"a"}), raw=b"ok")
    assert as_json(shape) == {
        "name": "tri",
        "points": [{"x": 0, "y": 0}, {"x": 1, "y": 0.5}],
        "labels": ["a"],
        "raw": "ok",
    }
    assert as_json(Point).startswith("<class ")  # the class itself: its repr


def test_numpy_scalars_and_contiguous_arrays() -> None:
    assert as_json(np.int64(3)) == 3
    assert as_json(np.float32(1.5)) == 1.5
    assert as_json(np.float16(1.5)) == 1.5
    assert as_json(np.bool_(True)) is True
    assert as_json(np.arange(6).reshape(2, 3)) == [[0, 1, 2], [3, 4, 5]]
    assert as_json(np.array([0.5, 1.5], dtype=np.float64)) == [0.5, 1.5]
    assert as_json({"embedding": np.array([1, 2], dtype=np.int32), "n": np.uint8(7)}) == {"embedding": [1, 2], "n": 7}


@pytest.mark.parametrize(
    "array",
    [
        pytest.param(np.arange(6).reshape(2, 3).T, id="transposed"),
        pytest.param(np.arange(10)[::2], id="strided"),
        pytest.param(np.array(["a", "b"]), id="str-dtype"),
        pytest.param(np.array([1, "a"], dtype=object), id="object-dtype"),
    ],
)
def test_numpy_arrays_orjson_cannot_take_natively_become_lists(array: Any) -> None:
    assert as_json(array) == array.tolist()


def test_bytes_utf8_and_binary() -> None:
    assert as_json(b"hello") == "hello"
    assert as_json("héllo".encode()) == "héllo"
    assert as_json(bytearray(b"ab")) == "ab"
    assert as_json(memoryview(b"cd")) == "cd"
    assert as_json(b"\xff\x00\x01") == {"base64": base64.b64encode(b"\xff\x00\x01").decode(), "size": 3}
    big = bytes(range(256)) * 40  # 10 240 bytes, not UTF-8
    stored = as_json(big)
    assert stored["size"] == len(big)
    assert base64.b64decode(stored["base64"]) == big[:4096]  # only a bounded prefix is kept


def test_sets_become_lists() -> None:
    assert sorted(as_json({3, 1, 2})) == [1, 2, 3]
    assert as_json(frozenset({"a"})) == ["a"]
    assert sorted(as_json({"s": {"x", "y"}})["s"]) == ["x", "y"]


def test_enum_decimal_datetime_path_uuid() -> None:
    assert as_json([Colour.RED, Colour.GREEN, Mode.FAST, Level.HIGH]) == [1, "green", "fast", 3]
    assert as_json(dt.datetime(2024, 1, 2, 3, 4, 5)) == "2024-01-02T03:04:05"
    assert as_json(dt.date(2024, 1, 2)) == "2024-01-02"
    assert as_json(dt.time(3, 4)) == "03:04:00"
    assert as_json(uuid.UUID(int=1)) == "00000000-0000-0000-0000-000000000001"
    stored_decimal = as_json(decimal.Decimal("1.10"))
    assert isinstance(stored_decimal, str) and "1.10" in stored_decimal
    stored_path = as_json(PurePosixPath("/tmp/data.txt"))
    assert isinstance(stored_path, str) and "/tmp/data.txt" in stored_path


def test_arbitrary_objects_fall_back_to_repr() -> None:
    assert as_json(Plain()) == "Plain(secret=1)"
    assert as_json({"obj": Plain(), "c": 1 + 2j}) == {"obj": "Plain(secret=1)", "c": "(1+2j)"}
    assert as_json(FakeModel()) == "FakeModel()"  # a failing model_dump is not fatal


def test_failing_repr_and_hostile_objects_never_raise() -> None:
    stored = as_json(BrokenRepr())
    assert stored.startswith("<unrepresentable") and "BrokenRepr" in stored
    assert as_json([1, BrokenRepr()])[0] == 1
    hostile = as_json(Hostile())
    assert isinstance(hostile, str) and "Hostile" in hostile
    assert isinstance(as_json({"m": ExplodingMapping()}), (str, dict))
    text, size = capture(Hostile(), LIMIT)
    assert json.loads(text) == hostile and size == len(text.encode())


def test_cycles_are_cut_and_shared_references_are_not_cycles() -> None:
    looped: list[Any] = [1]
    looped.append(looped)
    assert as_json(looped) == [1, "<cycle>"]

    node: dict[str, Any] = {"name": "n"}
    node["self"] = node
    assert as_json(node) == {"name": "n", "self": "<cycle>"}

    a: dict[str, Any] = {"id": "a"}
    b: dict[str, Any] = {"id": "b", "peer": a}
    a["peer"] = b
    assert as_json(a) == {"id": "a", "peer": {"id": "b", "peer": "<cycle>"}}

    shared = {"k": 1}
    assert as_json([shared, shared, looped]) == [{"k": 1}, {"k": 1}, [1, "<cycle>"]]


def test_deeply_nested_structures() -> None:
    moderate: Any = "leaf"
    for _ in range(50):
        moderate = {"d": [moderate]}
    assert as_json(moderate) == json.loads(json.dumps(moderate))  # kept whole

    deep: Any = "leaf"
    for _ in range(5000):
        deep = [deep]
    stored = as_json(deep)  # its cost: bench/trace_overhead.py's payloads part
    depth = 0
    while isinstance(stored, list):
        stored, depth = stored[0], depth + 1
    assert stored == "<too deep>"
    assert 10 <= depth < 5000


def test_truncation_keeps_the_original_size() -> None:
    text, size = capture("a" * 1000, 100)
    assert (text, size) == ("a" * 100, 1000)
    data = {"text": "b" * 1000}
    text, size = capture(data, 100)
    assert size == len(compact(data).encode())
    assert len(text.encode()) <= 100 and compact(data).startswith(text)
    assert capture("c" * 100, 100) == ("c" * 100, 100)  # exactly the limit is not truncated


@pytest.mark.parametrize("char", ["a", "é", "€", "𝄞"], ids=["1-byte", "2-byte", "3-byte", "4-byte"])
@pytest.mark.parametrize("limit", [64, 65, 66, 67])
def test_truncation_never_splits_a_utf8_character(char: str, limit: int) -> None:
    for value in (char * 200, {"t": char * 200}, ["x" + char * 200]):
        text, size = capture(value, limit)
        encoded = text.encode("utf-8")  # valid UTF-8 (a split character would not encode back)
        assert len(encoded) <= limit
        assert len(encoded) > limit - len(char.encode())  # only the partial character is dropped
        assert "\ufffd" not in text
        full = value if isinstance(value, str) else compact(value)
        assert full.startswith(text)
        assert size == len(full.encode())


def test_redact_is_applied_before_storage_and_before_truncation() -> None:
    def mask(text: str) -> str:
        return re.sub(r"[\w.+-]+@[\w-]+\.[\w.]+", "<email>", text)

    assert capture("write to bob@example.com", LIMIT, redact=mask) == ("write to <email>", 24)
    text, _ = capture({"to": ["bob@example.com"]}, LIMIT, redact=mask)
    assert text == '{"to":["<email>"]}'  # the redactor sees the JSON text
    long_value = "x" * 60 + " bob@example.com"
    text, size = capture(long_value, 64, redact=mask)
    assert text == "x" * 60 + " <em"  # redacted first, then truncated: no partial address
    assert size == len(long_value)


def test_redact_that_raises_drops_the_content() -> None:
    def broken(text: str) -> str:
        raise RuntimeError("redactor down")

    for value in ("password=hunter2", {"password": "hunter2"}):
        text, size = capture(value, LIMIT, redact=broken)
        assert "hunter2" not in text
        assert size == len((value if isinstance(value, str) else compact(value)).encode())


def test_capture_content_false_keeps_only_sizes() -> None:
    assert capture("héllo", LIMIT, capture_content=False) == ("", 6)
    assert capture({"a": 1}, LIMIT, capture_content=False) == ("", 7)
    assert capture("x" * 10_000, 64, capture_content=False, redact=str.upper) == ("", 10_000)


def test_lone_surrogates_are_stored_as_valid_utf8() -> None:
    name = b"report-\xff.txt".decode("utf-8", errors="surrogateescape")  # as os.listdir returns it
    for value in (name, {"file": name}):
        text, size = capture(value, LIMIT)
        text.encode("utf-8")  # must not raise
        assert size > 0
        assert "report-" in text


# --- end to end through @th.trace ------------------------------------------------------------------


def test_models_dataclasses_and_numpy_through_trace(spans: CapturedSpans) -> None:
    @th.trace(name="summarise")
    def summarise(post: Post, shape: Shape, weights: Any) -> dict[str, Any]:
        return {"title": post.title, "mean": np.float64(weights.mean()), "points": shape.points}

    post = Post(
        title="t",
        author=Author(name="ann", email="a@b.c"),
        tags={"x"},
        created=dt.datetime(2024, 1, 1),
        colour=Colour.RED,
        score=decimal.Decimal("2"),
    )
    shape = Shape(name="s", points=[Point(1, 2)], labels=frozenset(), raw=b"\xff")
    summarise(post, shape, np.array([1.0, 3.0]))
    row = spans.by_name("summarise")
    assert row["status"] == "ok"
    assert json.loads(row["input"]) == {
        "post": post.model_dump(mode="json"),
        "shape": {"name": "s", "points": [{"x": 1, "y": 2}], "labels": [], "raw": {"base64": "/w==", "size": 1}},
        "weights": [1.0, 3.0],
    }
    assert json.loads(row["output"]) == {"title": "t", "mean": 2.0, "points": [{"x": 1, "y": 2}]}


def test_cycles_and_broken_repr_through_trace(spans: CapturedSpans) -> None:
    looped: list[Any] = ["a"]
    looped.append(looped)
    broken = BrokenRepr()

    @th.trace(name="walk")
    def walk(graph: list[Any], extra: Any) -> Any:
        return extra

    assert walk(looped, broken) is broken
    row = spans.by_name("walk")
    stored_input = json.loads(row["input"])
    assert stored_input["graph"] == ["a", "<cycle>"]
    assert "BrokenRepr" in stored_input["extra"]
    assert "BrokenRepr" in json.loads(row["output"])


def test_truncation_through_trace(th_env: th.Settings, spans: CapturedSpans) -> None:
    reconfigure(th_env, max_payload_bytes=64)

    @th.trace(name="echo")
    def echo(text: str) -> str:
        th.current_span().set_context([text])
        return text

    value = "€" * 100
    assert echo(value) == value
    row = spans.by_name("echo")
    for column in ("input", "output", "context"):
        stored = row[column]
        assert 0 < len(stored.encode("utf-8")) <= 64
        assert "\ufffd" not in stored
    assert row["output"] == "€" * 21  # 63 bytes: the 22nd character would be split
    assert compact({"text": value}).startswith(row["input"])
    assert compact([{"text": value}]).startswith(row["context"])
    assert row["input_size"] == len(compact({"text": value}).encode())
    assert row["output_size"] == 300


def test_redact_masks_input_output_and_context(th_env: th.Settings, spans: CapturedSpans) -> None:
    def mask(text: str) -> str:
        return re.sub(r"[\w.+-]+@[\w-]+\.[\w.]+", "<email>", text)

    reconfigure(th_env, redact=mask)

    @th.trace(name="reply")
    def reply(message: str) -> str:
        th.current_span().set_context([{"text": "contact bob@example.com", "id": "d1"}])
        return f"we wrote to bob@example.com about: {message}"

    result = reply("hi from alice@example.org")
    assert result == "we wrote to bob@example.com about: hi from alice@example.org"  # the app sees real values
    with th.span("manual", input="cc carol@example.net") as s:
        s.set_output({"to": "dave@example.io"})

    assert spans.tree(fields=("name", "input", "output", "context")) == [
        {
            "name": "reply",
            "input": '{"message":"hi from <email>"}',
            "output": "we wrote to <email> about: hi from <email>",
            "context": '[{"text":"contact <email>","id":"d1"}]',
            "children": [],
        },
        {"name": "manual", "input": "cc <email>", "output": '{"to":"<email>"}', "context": "", "children": []},
    ]
    assert spans.by_name("reply")["output_size"] == len(result.encode())


def test_redact_that_raises_never_stores_unredacted_text(th_env: th.Settings, spans: CapturedSpans) -> None:
    def broken(text: str) -> str:
        raise RuntimeError("redactor down")

    reconfigure(th_env, redact=broken)

    @th.trace(name="login")
    def login(user: str, password: str) -> str:
        th.current_span().set_context(["hunter2 is the password"])
        return f"token-for-{password}"

    assert login("ann", "hunter2") == "token-for-hunter2"  # the function is unaffected
    row = spans.by_name("login")
    assert row["status"] == "ok"
    for column in ("input", "output", "context"):
        assert "hunter2" not in row[column]
    assert row["input_size"] == len(compact({"user": "ann", "password": "hunter2"}).encode())
    assert row["output_size"] == len(b"token-for-hunter2")


def test_capture_content_false_records_sizes_only(th_env: th.Settings, spans: CapturedSpans) -> None:
    reconfigure(th_env, capture_content=False)

    @th.trace(name="private", kind="llm")
    def private(prompt: str) -> dict[str, str]:
        th.current_span().set_context(["doc text"])
        th.current_span().set_usage(model="gpt-4o-mini", input_tokens=10, output_tokens=5)
        return {"answer": "héllo"}

    assert private("tell me") == {"answer": "héllo"}
    row = spans.by_name("private")
    assert (row["input"], row["output"], row["context"]) == ("", "", "")
    assert row["input_size"] == len(b'{"prompt":"tell me"}')
    assert row["output_size"] == len('{"answer":"héllo"}'.encode())
    assert (row["model"], row["total_tokens"]) == ("gpt-4o-mini", 15)  # metadata is not content


def test_huge_input_behaves_as_untraced_and_is_bounded(spans: CapturedSpans) -> None:
    big = "x" * (5 * 1024 * 1024)

    @th.trace(name="passthrough")
    def passthrough(text: str) -> str:
        return text

    assert passthrough(big) is big  # its cost: bench/trace_overhead.py's payloads part
    row = spans.by_name("passthrough")
    assert row["input_size"] == len(big) + len(b'{"text":""}')
    assert row["output_size"] == len(big)
    assert len(row["input"].encode()) <= LIMIT and len(row["output"].encode()) <= LIMIT
    assert row["output"] == big[:LIMIT]
    assert row["input"].startswith('{"text":"xxx')


def test_unserialisable_return_value_is_returned_unchanged(spans: CapturedSpans) -> None:
    hostile = Hostile()
    array = np.arange(6).reshape(2, 3).T

    @th.trace(name="make")
    def make(kind: str) -> Any:
        return hostile if kind == "hostile" else array

    @th.trace(name="gen")
    def gen() -> Iterator[Any]:
        yield hostile
        yield BrokenRepr()

    assert make("hostile") is hostile
    assert make("array") is array
    items = list(gen())
    assert items[0] is hostile and isinstance(items[1], BrokenRepr)
    assert [row["status"] for row in spans] == ["ok", "ok", "ok"]
    first, second, third = spans
    assert "Hostile" in json.loads(first["output"])
    assert first["output_size"] == len(first["output"].encode())
    assert second["output"]  # something was recorded for the array
    stored_items = json.loads(third["output"])
    assert len(stored_items) == 2 and "Hostile" in stored_items[0] and "BrokenRepr" in stored_items[1]


def test_hostile_arguments_do_not_break_the_call(spans: CapturedSpans) -> None:
    @th.trace(name="take")
    def take(a: Any, b: Any, c: Any, d: str) -> str:
        return "fine"

    assert take(Hostile(), FakeModel(), BrokenRepr(), "kept") == "fine"
    assert take(ExplodingMapping(), 1, 2, "x") == "fine"
    first, second = spans
    assert first["status"] == second["status"] == "ok"
    stored = json.loads(first["input"])
    assert stored["b"] == "FakeModel()" and stored["d"] == "kept"  # each bad value degrades alone
    assert "Hostile" in stored["a"] and "BrokenRepr" in stored["c"]
    assert second["input"] and second["input_size"] > 0


def test_a_container_that_fails_to_iterate_degrades_alone() -> None:
    stored = as_json({"m": ExplodingMapping(), "d": "kept", "h": Hostile()})
    assert isinstance(stored, dict)
    assert stored["d"] == "kept"
    assert isinstance(stored["m"], str) and "ExplodingMapping" in stored["m"]


def test_input_is_recorded_as_it_was_at_call_time(spans: CapturedSpans) -> None:
    @th.trace(name="consume")
    def consume(items: list[str], options: dict[str, Any]) -> int:
        items.append("added inside")
        options["seen"] = True
        return len(items)

    items = ["a"]
    options: dict[str, Any] = {"k": 1}
    assert consume(items, options) == 2
    items.append("added after")
    options.clear()
    row = spans.by_name("consume")
    assert json.loads(row["input"]) == {"items": ["a"], "options": {"k": 1}}
    assert row["output"] == "2"


def test_output_is_recorded_as_it_was_at_return_time(spans: CapturedSpans) -> None:
    @th.trace(name="produce")
    def produce() -> list[int]:
        return [1, 2]

    result = produce()
    result.append(3)
    assert spans.by_name("produce")["output"] == "[1,2]"


def test_lone_surrogate_output_does_not_lose_spans(tmp_path: Path) -> None:
    code = """
        import os
        import tracehouse as th

        th.configure(project="surrogates")

        @th.trace(name="echo")
        def echo(value):
            return value

        echo("before")
        echo(b"report-\\xff.txt".decode("utf-8", errors="surrogateescape"))
        echo("after")
        th.flush()
        print("SPANS", int(th.query("SELECT count() AS n FROM spans")["n"][0]))
    """
    result = run_python(textwrap.dedent(code), env={"TRACEHOUSE_DIR": str(tmp_path / "data")}, timeout=60, clean=True)
    assert result.returncode == 0, result.stderr
    assert "SPANS 3" in result.stdout, result.stdout + result.stderr
    assert "Traceback" not in result.stderr, result.stderr

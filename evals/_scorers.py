"""Scorers: `(output, expected, **fields) -> float | bool | dict`, built in or your own.

A scorer returns a number (a score), a bool (pass / fail: its mean is the pass rate) or a dict of
named numbers or bools (each becomes `<scorer>.<key>`). It may be async. One that raises or runs
past its timeout records an error for that example only. `@scorer` turns a function into one (and
registers it by name).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import math
import re
from typing import Any, Callable, Optional, Sequence

from tracehouse._errors import ConfigError

REGISTRY: dict[str, Scorer] = {}
DEFAULT_TIMEOUT = 60.0


class Scorer:
    """A named scoring function with a timeout (seconds)."""

    def __init__(self, function: Callable[..., Any], name: Optional[str] = None,
                 timeout: Optional[float] = DEFAULT_TIMEOUT) -> None:  # fmt: skip
        if not callable(function):
            raise ConfigError("scorer", f"expected a function (output, expected, **fields), got {function!r}")
        if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
            raise ConfigError("timeout", f"expected a positive number of seconds, got {timeout!r}")
        self.function = function
        self.name: str = str(name or getattr(function, "__name__", type(function).__name__))
        self.timeout = timeout
        self.is_async = inspect.iscoroutinefunction(function)
        parameters = inspect.signature(function).parameters.values()
        self._wants_all = any(p.kind is p.VAR_KEYWORD for p in parameters)
        named = [p for p in parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)]
        self._names = {p.name for p in named}
        self._required = {p.name for p in named if p.default is p.empty}

    def arguments(self, output: Any, expected: Any, fields: dict[str, Any]) -> dict[str, Any]:
        """The keyword arguments this scorer takes (a missing field raises KeyError naming it)."""
        available = {**fields, "output": output, "expected": expected}
        if self._wants_all:
            return available
        missing = self._required - available.keys()
        if missing:
            raise KeyError(f"the example has no field {sorted(missing)[0]!r} that {self.name} needs")
        return {n: available[n] for n in self._names if n in available}

    async def score(self, output: Any, expected: Any, fields: dict[str, Any]) -> Any:
        """Run the scorer (in a thread when it is synchronous), bounded by its timeout."""
        kwargs = self.arguments(output, expected, fields)
        call = self.function(**kwargs) if self.is_async else asyncio.to_thread(self.function, **kwargs)
        try:
            return await asyncio.wait_for(call, self.timeout)
        except asyncio.TimeoutError:
            raise TimeoutError(f"{self.name} took longer than {self.timeout} s") from None

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.function(*args, **kwargs)

    def __repr__(self) -> str:
        return f"Scorer({self.name!r})"


def scorer(function: Optional[Callable[..., Any]] = None, *, name: Optional[str] = None,
           timeout: Optional[float] = DEFAULT_TIMEOUT) -> Any:  # fmt: skip
    """Decorator: `@scorer` or `@scorer(name=..., timeout=...)` makes (and registers) a scorer."""

    def wrap(fn: Callable[..., Any]) -> Scorer:
        made = Scorer(fn, name=name, timeout=timeout)
        REGISTRY[made.name] = made
        return made

    return wrap(function) if function is not None else wrap


def as_scorer(value: Any) -> Scorer:
    """A Scorer from a Scorer, a function, or a registered scorer's name."""
    if isinstance(value, Scorer):
        return value
    if isinstance(value, str):
        if value not in REGISTRY:
            raise ConfigError("scorers", f"no scorer named {value!r}; registered: {', '.join(sorted(REGISTRY))}")
        return REGISTRY[value]
    return Scorer(value)


def _text(value: Any) -> str:
    return value if isinstance(value, str) else json.dumps(value, default=str)


# --- built in -------------------------------------------------------------------------------------
def exact_match(case_sensitive: bool = True, strip: bool = True) -> Scorer:
    """Output equals expected (as text; optionally ignoring case and surrounding space)."""

    def exact_match(output: Any, expected: Any) -> bool:
        a, b = _text(output), _text(expected)
        if strip:
            a, b = a.strip(), b.strip()
        return a == b if case_sensitive else a.lower() == b.lower()

    return Scorer(exact_match)


def contains(ignore_case: bool = True) -> Scorer:
    """The expected text (or each of a list of texts) appears in the output."""

    def contains(output: Any, expected: Any) -> bool:
        haystack = _text(output).lower() if ignore_case else _text(output)
        needles = expected if isinstance(expected, list) else [expected]
        return all((_text(n).lower() if ignore_case else _text(n)) in haystack for n in needles)

    return Scorer(contains)


def regex(pattern: Optional[str] = None, flags: int = 0) -> Scorer:
    """The output matches `pattern` (or the example's expected value as a pattern)."""
    compiled = re.compile(pattern, flags) if pattern is not None else None

    def regex(output: Any, expected: Any = None) -> bool:
        matcher = compiled or re.compile(_text(expected), flags)
        return matcher.search(_text(output)) is not None

    return Scorer(regex)


def json_valid() -> Scorer:
    """The output is (or parses as) JSON."""

    def json_valid(output: Any) -> bool:
        if not isinstance(output, str):
            return isinstance(output, (dict, list))
        try:
            json.loads(output)
        except ValueError:
            return False
        return True

    return Scorer(json_valid)


def json_schema(schema: Optional[dict[str, Any]] = None) -> Scorer:
    """The output (JSON text or an object) validates against `schema` (or the example's expected)."""
    try:
        import jsonschema
    except ImportError:
        raise ConfigError("scorers", "json_schema needs jsonschema: pip install 'tracehouse[evals]'") from None

    def json_schema(output: Any, expected: Any = None) -> bool:
        try:
            value = json.loads(output) if isinstance(output, str) else output
        except ValueError:
            return False
        try:
            jsonschema.validate(value, schema if schema is not None else expected)
        except jsonschema.ValidationError:
            return False
        return True

    return Scorer(json_schema)


def numeric_close(rel_tol: float = 1e-6, abs_tol: float = 0.0) -> Scorer:
    """The output is a number close to the expected one (math.isclose)."""

    def numeric_close(output: Any, expected: Any) -> bool:
        try:
            return math.isclose(float(output), float(expected), rel_tol=rel_tol, abs_tol=abs_tol)
        except (TypeError, ValueError):
            return False

    return Scorer(numeric_close)


def string_similarity(method: str = "ratio") -> Scorer:
    """RapidFuzz similarity of output and expected in [0, 1] (`ratio`, `partial_ratio`, `token_sort_ratio`,
    `token_set_ratio`)."""
    try:
        from rapidfuzz import fuzz
    except ImportError:
        raise ConfigError("scorers", "string_similarity needs rapidfuzz: pip install 'tracehouse[evals]'") from None
    if not hasattr(fuzz, method):
        raise ConfigError(
            "method", f"expected a rapidfuzz.fuzz scorer such as ratio or token_set_ratio, got {method!r}"
        )
    measure = getattr(fuzz, method)

    def string_similarity(output: Any, expected: Any) -> float:
        return float(measure(_text(output), _text(expected))) / 100.0

    return Scorer(string_similarity)


def embedding_similarity(embed: Callable[[str], Sequence[float]]) -> Scorer:
    """Cosine similarity of the embeddings `embed(text)` gives output and expected."""
    if not callable(embed):
        raise ConfigError("embed", f"expected a function text -> vector, got {embed!r}")

    def embedding_similarity(output: Any, expected: Any) -> float:
        a, b = list(embed(_text(output))), list(embed(_text(expected)))
        norm = math.sqrt(sum(x * x for x in a)) * math.sqrt(sum(y * y for y in b))
        return sum(x * y for x, y in zip(a, b, strict=True)) / norm if norm else 0.0

    return Scorer(embedding_similarity)


_NUMBER = re.compile(r"-?\d+(?:\.\d+)?")


def llm_judge(client: Any, model: str, template: str, scale: float = 10.0, name: str = "llm_judge",
              timeout: float = DEFAULT_TIMEOUT) -> Scorer:  # fmt: skip
    """Ask an OpenAI-compatible client (sync or async) to grade: `template` is formatted with the
    example's fields plus `output` and `expected`; the first number in the reply, divided by `scale`,
    is the score (an error when the reply holds none)."""
    completions = getattr(getattr(client, "chat", None), "completions", None)
    if completions is None or not hasattr(completions, "create"):
        raise ConfigError("client", "expected an OpenAI-compatible client (client.chat.completions.create)")
    if not isinstance(template, str) or "{output}" not in template:
        raise ConfigError("template", "the judge's prompt template must mention {output}")

    async def judge(output: Any, expected: Any = None, **fields: Any) -> float:
        try:
            prompt = template.format(**fields, output=_text(output), expected=_text(expected))
        except KeyError as error:
            raise KeyError(f"the judge's template needs the field {error.args[0]!r}") from None
        request = {"model": model, "messages": [{"role": "user", "content": prompt}], "temperature": 0}
        if inspect.iscoroutinefunction(completions.create):
            reply = await completions.create(**request)
        else:  # a synchronous client: in a thread, so judges of other examples go on meanwhile
            reply = await asyncio.to_thread(completions.create, **request)
        text = reply.choices[0].message.content or ""
        found = _NUMBER.search(text)
        if found is None:
            raise ValueError(f"the judge's reply holds no score: {text[:80]!r}")
        return float(found.group()) / scale

    judge.__name__ = name
    return Scorer(judge, name=name, timeout=timeout)

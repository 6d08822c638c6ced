"""What free SQL may be: one read-only statement that reaches nothing but the store's tables.

Every SQL surface (`th.query`, `tracehouse query`, `POST /api/v1/query`) passes the text through
`check_readonly_sql` before it reaches ClickHouse, which then runs it on a `readonly=1` session
with limits on rows, bytes, memory and time. The check is the first wall, the session the second:

- exactly one statement of SELECT / WITH / SHOW / DESCRIBE / EXPLAIN (a trailing `;` is fine);
- no SETTINGS / SET (limits are not the caller's to lift), no INTO OUTFILE / FROM INFILE, no
  statement keywords that write (INSERT, DROP, SYSTEM, KILL, ...) anywhere in it;
- no function that reaches files, the network, processes, other tables by pattern or the host
  Python (`file`, `url`, `s3`, `remote`, `mysql`, `merge`, `executable`, chDB's `python`, ...):
  every ClickHouse table function is refused except generators such as `numbers` and `values`;
- no `{name:Identifier}` parameters (they would name a table the text does not show);
- never the `api_keys` table.

The scanner follows ClickHouse's lexer where it matters (nested block comments, `--` and `#`
comments, backslash escapes in strings); where it cannot be sure, it refuses (a `$` outside a
string, a backslash inside a quoted identifier), so a comment or string can never be longer here
than ClickHouse thinks it is.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable, Optional

from tracehouse._errors import ConfigError

FIRST_KEYWORDS = frozenset({"select", "with", "show", "describe", "desc", "explain"})
FORBIDDEN_KEYWORDS = frozenset({
    "settings", "set", "into", "outfile", "infile", "insert", "create", "alter", "drop", "truncate", "delete",
    "update", "rename", "attach", "detach", "optimize", "grant", "revoke", "kill", "backup", "restore", "exchange",
    "undrop",
})  # fmt: skip
# Table functions that only generate rows; every other one reaches something outside the query.
SAFE_TABLE_FUNCTIONS = frozenset({
    "numbers", "numbers_mt", "zeros", "zeros_mt", "generaterandom", "generate_series", "generateseries",
    "primes", "values", "null", "sqlstandardvalues", "format",
})  # fmt: skip
# ClickHouse 26's table functions (system.table_functions) plus scalar functions that read host files.
_KNOWN_REACHING_FUNCTIONS = frozenset({
    "arrowstream", "azureblobstorage", "azureblobstoragecluster", "bigquery", "cluster", "clusterallreplicas",
    "cosn", "deltalake", "deltalakeazure", "deltalakeazurecluster", "deltalakecluster", "deltalakelocal",
    "deltalakes3", "deltalakes3cluster", "dictionary", "eval", "executable", "file", "filecluster", "filesystem",
    "fuzzjson", "fuzzquery", "gcs", "hdfs", "hdfscluster", "hudi", "hudicluster", "iceberg", "icebergazure",
    "icebergazurecluster", "icebergcluster", "iceberghdfs", "iceberghdfscluster", "iceberglocal",
    "iceberglocalcluster", "icebergs3", "icebergs3cluster", "input", "jdbc", "loop", "merge",
    "mergetreeanalyzeindexes", "mergetreeanalyzeindexesuuid", "mergetreecodecblockcounts", "mergetreeindex",
    "mergetreeprojection", "mergetreetextindex", "mongodb", "mysql", "odbc", "oss", "paimon", "paimonazure",
    "paimonazurecluster", "paimoncluster", "paimonhdfs", "paimonhdfscluster", "paimonlocal", "paimons3",
    "paimons3cluster", "postgresql", "prometheusquery", "prometheusqueryrange", "python", "redis", "remote",
    "remotesecure", "s3", "s3cluster", "sqlite", "timeseriesdata", "timeseriesmetricfamilies",
    "timeseriesmetrics", "timeseriessamples", "timeseriesselector", "timeseriestags", "url", "urlcluster",
    "view", "viewexplain", "viewifpermitted", "ytsaurus", "catboostevaluate",
})  # fmt: skip
PRIVATE_TABLES = frozenset({"api_keys"})
_WORD_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER_RE = re.compile(r"[0-9][0-9A-Za-z_.]*(?:[eEpP][+-]?[0-9]+)?")


@dataclass(frozen=True)
class Token:
    """A significant token: a bare word, a quoted identifier, a string, or one punctuation character."""

    kind: str  # "word", "quoted", "string", "number", "punct"
    text: str  # lowercased for words and quoted identifiers


def _refuse(problem: str) -> ConfigError:
    return ConfigError("sql", problem)


def _skip_block_comment(sql: str, i: int) -> int:
    """The index after a (nested, as ClickHouse nests them) block comment opening at `i`."""
    depth, n = 0, len(sql)
    while i < n:
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    raise _refuse("a /* comment is not closed")


def _skip_line_comment(sql: str, i: int) -> int:
    ends = [p for p in (sql.find("\n", i), sql.find("\r", i)) if p >= 0]
    return min(ends) + 1 if ends else len(sql)


def _quoted_end(sql: str, i: int, quote: str, escapes: bool) -> int:
    """The index after the quoted run opening at `i`: a doubled quote stays inside, and so does a
    backslash-escaped character where ClickHouse honours backslashes."""
    n, j = len(sql), i + 1
    while j < n:
        char = sql[j]
        if char == "\\" and escapes:
            j += 2
            continue
        if char == quote:
            if j + 1 < n and sql[j + 1] == quote:
                j += 2
                continue
            return j + 1
        j += 1
    raise _refuse(f"a {quote} quote is not closed")


def tokens(sql: str) -> list[Token]:
    """The significant tokens of `sql` (comments and whitespace dropped); ConfigError where unsure."""
    out: list[Token] = []
    i, n = 0, len(sql)
    while i < n:
        char = sql[i]
        if char.isspace():
            i += 1
        elif sql.startswith("--", i) or char == "#":
            i = _skip_line_comment(sql, i)
        elif sql.startswith("/*", i):
            i = _skip_block_comment(sql, i)
        elif char == "'":
            end = _quoted_end(sql, i, "'", escapes=True)
            out.append(Token("string", sql[i + 1 : end - 1]))
            i = end
        elif char in ('"', "`"):
            end = _quoted_end(sql, i, char, escapes=True)
            inner = sql[i + 1 : end - 1]
            if "\\" in inner:
                raise _refuse(f"escapes inside a quoted identifier are not accepted: {sql[i:end]!r}")
            out.append(Token("quoted", inner.replace(char * 2, char).lower()))
            i = end
        elif char == "$":
            raise _refuse("'$' outside a string is not accepted (heredoc strings are not supported here)")
        elif (word := _WORD_RE.match(sql, i)) is not None:
            out.append(Token("word", word.group().lower()))
            i = word.end()
        elif char.isdigit():
            number = _NUMBER_RE.match(sql, i)
            assert number is not None
            out.append(Token("number", number.group()))
            i = number.end()
        else:
            out.append(Token("punct", char))
            i += 1
    return out


def _statement(parts: list[Token]) -> list[Token]:
    """The one statement's tokens: `;` may only end the text."""
    for index, token in enumerate(parts):
        if token.kind == "punct" and token.text == ";":
            rest = parts[index + 1 :]
            if any(not (t.kind == "punct" and t.text == ";") for t in rest):
                raise _refuse("one statement only: remove everything after the ';'")
            return parts[:index]
    return parts


def check_readonly_sql(sql: str, reaching_functions: Optional[Iterable[str]] = None) -> str:
    """`sql` if it is one read-only statement that reaches only the store; ConfigError("sql") naming
    what is refused otherwise. `reaching_functions` adds table function names the engine reports."""
    if not isinstance(sql, str) or not sql.strip():
        raise _refuse("expected a SQL statement")
    if "\0" in sql:
        raise _refuse("a NUL character is not accepted")
    parts = _statement(tokens(sql))
    first = next((t for t in parts if not (t.kind == "punct" and t.text == "(")), None)
    if first is None or first.kind != "word" or first.text not in FIRST_KEYWORDS:
        shown = first.text.upper() if first is not None else "nothing"
        raise _refuse(f"only SELECT, WITH, SHOW, DESCRIBE and EXPLAIN are allowed (writes go through the API), "
                      f"not {shown}")  # fmt: skip
    denied = _KNOWN_REACHING_FUNCTIONS | {name.lower() for name in reaching_functions or ()}
    denied -= SAFE_TABLE_FUNCTIONS
    for index, token in enumerate(parts):
        _check_token(parts, index, token, denied)
    return sql


def _check_token(parts: list[Token], index: int, token: Token, denied: frozenset[str] | set[str]) -> None:
    if token.kind not in ("word", "quoted"):
        if token.kind == "punct" and token.text == "{":
            _check_parameter(parts, index)
        return
    if token.text in PRIVATE_TABLES:
        raise _refuse(f"the {token.text} table is not readable through SQL (use `tracehouse keys list`)")
    if token.kind == "word" and token.text in FORBIDDEN_KEYWORDS:
        raise _refuse(f"{token.text.upper()} is not allowed: SQL here is read-only and its limits are fixed")
    following = parts[index + 1] if index + 1 < len(parts) else None
    called = following is not None and following.kind == "punct" and following.text == "("
    if called and token.text in denied:
        raise _refuse(f"{token.text}() is not allowed: it reaches files, the network, processes or other tables")


def _check_parameter(parts: list[Token], index: int) -> None:
    """`{name:Type}`: every type but Identifier (which would name a table the text does not show)."""
    window = parts[index + 1 : index + 4]
    if len(window) == 3 and window[1].text == ":" and window[2].kind == "word" and window[2].text == "identifier":
        raise _refuse(f"{{{window[0].text}:Identifier}} parameters are not accepted; write the table name")


__all__ = ["SAFE_TABLE_FUNCTIONS", "check_readonly_sql", "tokens"]

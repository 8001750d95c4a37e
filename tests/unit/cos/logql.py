"""A strict reader of LogQL stream selectors, and the rule Loki applies to them.

Loki refuses a query unless each of its stream selectors (`{label op "value", …}`) has at least
one matcher that cannot match the empty string; a stream without a label reads it as "". So
`{app=~".*"}` and `{app!="x"}` are refused, `{app=~".+"}` and `{app="x"}` are taken. Grafana
builds the query by pasting variable values into the text first (`$var`, `${var}`,
`${var:format}`, `[[var]]`), so a dashboard query has to pass with the values a user can pick,
"All" included.

Only what our shipped queries need is read; anything else raises `LogQLError`, so a query this
module cannot read fails its test rather than passing unread.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Mapping

OPERATORS = ("=~", "!~", "!=", "=")  # longest first: `=~` must not read as `=`
LABEL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
VARIABLE = re.compile(r"\$\{(\w+)(?::[^}]*)?\}|\[\[(\w+)(?::[^\]]*)?\]\]|\$(\w+)")
SIMPLE_ESCAPES = {
    "a": "\a",
    "b": "\b",
    "f": "\f",
    "n": "\n",
    "r": "\r",
    "t": "\t",
    "v": "\v",
    "\\": "\\",
    '"': '"',
}
HEX_ESCAPE_DIGITS = {"x": 2, "u": 4, "U": 8}
# Python-only regex syntax: Loki's Go RE2 has no look-around, back-references or atomic
# groups, and spells the end-of-text anchor \z, so such a pattern would mean something else
# (or nothing) there; \Z is Python's spelling.
NOT_RE2 = re.compile(r"\(\?(?:=|!|<=|<!|P=|>)|\\[1-9]|\\Z")


class LogQLError(ValueError):
    """The text is not something this reader accepts as LogQL."""


@dataclasses.dataclass(frozen=True)
class Matcher:
    """One `label op "value"` of a stream selector, the value already unquoted."""

    label: str
    operator: str
    value: str

    def matches(self, value: str) -> bool:
        """Whether a stream whose label has `value` passes ("" when it lacks the label)."""
        if self.operator in ("=", "!="):
            equal = self.value == value
        else:  # Loki anchors regexes at both ends
            equal = re.fullmatch(re2_pattern(self.value), value) is not None
        return equal if self.operator in ("=", "=~") else not equal

    def matches_empty(self) -> bool:
        """Whether a stream lacking this label would pass."""
        return self.matches("")


def re2_pattern(pattern: str) -> str:
    """Return `pattern` if Python's `re` reads it as Go's RE2 does; else raise."""
    if NOT_RE2.search(_without_escaped_backslashes(pattern)):
        raise LogQLError(f"regex {pattern!r} uses syntax Go's RE2 does not have")
    try:
        re.compile(pattern)
    except re.error as exc:
        raise LogQLError(f"bad regex {pattern!r}: {exc}") from exc
    return pattern


def _without_escaped_backslashes(pattern: str) -> str:
    # `\\1` is a backslash then "1", not a back-reference: drop the `\\` pairs before looking.
    return pattern.replace("\\\\", "")


def accepted_by_loki(selector: list[Matcher]) -> bool:
    """Loki's rule: some matcher cannot match the empty string."""
    return any(not matcher.matches_empty() for matcher in selector)


def interpolate(query: str, values: Mapping[str, str]) -> str:
    """Paste each variable's value in, as Grafana does; an unknown variable raises."""

    def value(match: re.Match[str]) -> str:
        name = next(group for group in match.groups() if group is not None)
        if name not in values:
            raise LogQLError(f"no value given for variable {name!r} in {query!r}")
        return values[name]

    return VARIABLE.sub(value, query)


def stream_selectors(query: str) -> list[list[Matcher]]:
    """Every stream selector of `query`, in order (braces inside string literals are text)."""
    selectors: list[list[Matcher]] = []
    pos = 0
    while pos < len(query):
        char = query[pos]
        if char in '"`':
            _, pos = _string(query, pos)
        elif char == "#":  # a comment runs to the end of the line
            end = query.find("\n", pos)
            pos = len(query) if end < 0 else end
        elif char == "{":
            selector, pos = _selector(query, pos + 1)
            selectors.append(selector)
        elif char == "}":
            raise LogQLError(f"unbalanced '}}' at {pos} in {query!r}")
        else:
            pos += 1
    return selectors


def _selector(query: str, pos: int) -> tuple[list[Matcher], int]:
    """Read matchers from just after `{` up to and past the closing `}`."""
    matchers: list[Matcher] = []
    pos = _skip_space(query, pos)
    if query.startswith("}", pos):
        return matchers, pos + 1
    while True:
        name = LABEL_NAME.match(query, pos)
        if name is None:
            raise LogQLError(f"expected a label name at {pos} in {query!r}")
        pos = _skip_space(query, name.end())
        operator = next((op for op in OPERATORS if query.startswith(op, pos)), None)
        if operator is None:
            raise LogQLError(f"expected = != =~ !~ at {pos} in {query!r}")
        pos = _skip_space(query, pos + len(operator))
        value, pos = _string(query, pos)
        matchers.append(Matcher(name.group(), operator, value))
        pos = _skip_space(query, pos)
        if query.startswith("}", pos):
            return matchers, pos + 1
        if not query.startswith(",", pos):
            raise LogQLError(f"expected ',' or '}}' at {pos} in {query!r}")
        pos = _skip_space(query, pos + 1)


def _skip_space(query: str, pos: int) -> int:
    while pos < len(query) and query[pos] in " \t\r\n":
        pos += 1
    return pos


def _string(query: str, pos: int) -> tuple[str, int]:
    """Read a Go string literal at `pos` (`"…"` with escapes, or raw `` `…` ``)."""
    if query.startswith("`", pos):
        end = query.find("`", pos + 1)
        if end < 0:
            raise LogQLError(f"unterminated raw string at {pos} in {query!r}")
        return query[pos + 1 : end], end + 1
    if not query.startswith('"', pos):
        raise LogQLError(f"expected a quoted value at {pos} in {query!r}")
    out: list[str] = []
    pos += 1
    while True:
        if pos >= len(query) or query[pos] == "\n":
            raise LogQLError(f"unterminated string in {query!r}")
        char = query[pos]
        if char == '"':
            return "".join(out), pos + 1
        if char != "\\":
            out.append(char)
            pos += 1
            continue
        decoded, pos = _escape(query, pos + 1)
        out.append(decoded)


def _escape(query: str, pos: int) -> tuple[str, int]:
    """Decode the escape whose letter is at `pos` (just after the backslash)."""
    letter = query[pos : pos + 1]
    if letter in SIMPLE_ESCAPES:
        return SIMPLE_ESCAPES[letter], pos + 1
    if letter in HEX_ESCAPE_DIGITS:
        digits = query[pos + 1 : pos + 1 + HEX_ESCAPE_DIGITS[letter]]
        if len(digits) != HEX_ESCAPE_DIGITS[letter] or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
            raise LogQLError(f"bad \\{letter} escape at {pos} in {query!r}")
        return chr(int(digits, 16)), pos + 1 + len(digits)
    octal = query[pos : pos + 3]
    if re.fullmatch(r"[0-3][0-7]{2}", octal):
        return chr(int(octal, 8)), pos + 3
    raise LogQLError(f"unknown escape \\{letter} at {pos} in {query!r}")

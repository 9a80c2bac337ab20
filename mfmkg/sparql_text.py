"""What a SPARQL query text is, found without running it: its query form (from the prologue) and its SERVICE calls.

This is a lexer, not rdflib's parser, because what matters is agreeing with pyoxigraph, which runs the query:
rdflib's parser rejects syntax pyoxigraph accepts (SPARQL 1.2 forms), expands ``\\u`` escapes over the whole text
where pyoxigraph does not, and is slow on large queries. pyoxigraph reports syntax errors itself, with its message.

SERVICE detection must never miss a call pyoxigraph would make (that would be a server-side request forgery), so it
errs towards finding too many. Two traps, both verified against pyoxigraph 0.5:

* Its grammar matches keywords without a word boundary: ``SERVICE:{...}`` (endpoint ``:``),
  ``SERVICESILENT<x>{}`` and ``?s ?p trueSERVICE<x>{}`` are all SERVICE calls. So every occurrence of "service"
  inside a bare word or prefixed name is examined; it counts when an endpoint (IRI, prefixed name or variable)
  and then ``{`` follow, exactly what the grammar needs after the keyword.
* ``<`` opens an IRI or is the less-than operator: ``FILTER(?o<'x>') SERVICE <...> {}`` compares with a string
  that contains ``>``. A lexer without context cannot tell, so where the IRI reading would swallow a ``'`` or a
  ``#`` (the only characters that open a string or a comment under the other reading) both readings are followed.
  A lexer state is just a position, so following both stays linear in the query length.

The sandbox adds a backstop: a query with no allowed SERVICE call runs in a child that may not open sockets.
"""

from __future__ import annotations

import bisect
import re
from dataclasses import dataclass
from urllib.parse import urljoin

from mfmkg.errors import QueryRefused, QuerySyntaxError

_WS = re.compile(r"\s+")
_WS_OR_COMMENT = re.compile(r"(?:\s+|#[^\r\n]*)*")
# IRIREF, plus the \u/\U escapes pyoxigraph accepts inside IRIs.
_IRI = re.compile(r'<(?:[^<>"{}|^`\\\x00-\x20]|\\u[0-9A-Fa-f]{4}|\\U[0-9A-Fa-f]{8})*>')
_STRINGS = {
    "'": (re.compile(r"'''(?:[^'\\]|\\.|'(?!''))*'''", re.S), re.compile(r"'(?:[^'\\\r\n]|\\.)*'")),
    '"': (re.compile(r'"""(?:[^"\\]|\\.|"(?!""))*"""', re.S), re.compile(r'"(?:[^"\\\r\n]|\\.)*"')),
}
_NAMECHARS = r"\w\-.\u00B7\u0300-\u036F\u203F-\u2040"
_VAR = re.compile(rf"[?$][{_NAMECHARS}]*")
_LANGTAG = re.compile(r"@[A-Za-z]+(?:-[A-Za-z0-9]+)*")
# Bare words, prefixed names and blank node labels in one liberal run (local names may hold ':', '%' and '\' escapes).
_NAME = re.compile(rf"(?:[{_NAMECHARS}:%]|\\.)+", re.S)
_DIGITS = re.compile(r"[0-9]+")
_SERVICE = re.compile("service", re.I)
_PNAME = re.compile(rf"(?P<prefix>[^\W\d_][{_NAMECHARS}]*)?:(?P<local>(?:[{_NAMECHARS}:%]|\\.)*)", re.S)
_PNAME_NS = re.compile(rf"(?P<prefix>[^\W\d_][{_NAMECHARS}]*)?:")
_UCHAR = re.compile(r"\\u([0-9A-Fa-f]{4})|\\U([0-9A-Fa-f]{8})")
_LOCAL_ESC = re.compile(r"\\(.)", re.S)
_FORMS = re.compile(r"(select|construct|describe|ask)", re.I)
_UPDATES = re.compile(r"(insert|delete|load|clear|create|drop|copy|move|add|with)\b", re.I)
_KIND = {"select": "select", "ask": "ask", "construct": "graph", "describe": "graph"}


@dataclass(frozen=True)
class Prologue:
    base: str | None
    prefixes: dict[str, str]
    form: str | None  # select, construct, describe or ask; None when no query form follows the prologue
    end: int


@dataclass(frozen=True)
class ServiceCall:
    """One SERVICE call: ``endpoint`` is the resolved IRI, or None for a variable or an unresolvable name."""

    endpoint: str | None
    text: str  # the endpoint as written
    line: int


def _iri_value(token: str, base: str | None) -> str | None:
    """The absolute IRI an IRIREF token denotes, or None when it is relative and there is no base."""
    value = _UCHAR.sub(lambda m: chr(int(m.group(1) or m.group(2), 16)), token[1:-1])
    if re.match(r"[A-Za-z][A-Za-z0-9+.\-]*:", value):
        return value
    return urljoin(base, value) if base else None


def parse_prologue(text: str) -> Prologue:
    """BASE, PREFIX and VERSION declarations, then the query form keyword (if any)."""
    base, prefixes, pos = None, {}, 0
    while True:
        pos = _WS_OR_COMMENT.match(text, pos).end()
        word = text[pos:pos + 7].lower()
        if word.startswith("base"):
            p = _WS_OR_COMMENT.match(text, pos + 4).end()
            m = _IRI.match(text, p)
            if not m:
                break
            base, pos = _iri_value(m.group(), base) or base, m.end()
        elif word.startswith("prefix"):
            p = _WS_OR_COMMENT.match(text, pos + 6).end()
            ns = _PNAME_NS.match(text, p)
            m = ns and _IRI.match(text, _WS_OR_COMMENT.match(text, ns.end()).end())
            if not m:
                break
            prefixes[ns.group("prefix") or ""] = _iri_value(m.group(), base)
            pos = m.end()
        elif word.startswith("version"):  # SPARQL 1.2
            p = _WS_OR_COMMENT.match(text, pos + 7).end()
            m = p < len(text) and text[p] in _STRINGS and _STRINGS[text[p]][1].match(text, p)
            if not m:
                break
            pos = m.end()
        else:
            break
    m = _FORMS.match(text, pos)
    return Prologue(base, prefixes, m.group(1).lower() if m else None, pos)


def query_kind(text: str) -> str | None:
    """``select``, ``ask`` or ``graph`` (CONSTRUCT, DESCRIBE); None when the text starts with no query form.

    Raises QueryRefused for SPARQL updates: this is a read-only endpoint.
    """
    prologue = parse_prologue(text)
    if prologue.form is None:
        m = _UPDATES.match(text, prologue.end)
        if m:
            raise QueryRefused(f"{m.group(1).upper()} is a SPARQL update; this endpoint is read-only")
        return None
    return _KIND[prologue.form]


def _next_positions(text: str, pos: int, found: list[int], eols: list[int]) -> list[int]:
    """Positions where the token(s) starting at ``pos`` may end (none: this reading is not valid SPARQL).

    Records in ``found`` the offsets just past each "service" inside a name.
    """
    c = text[pos]
    if c.isspace():
        return [_end(_WS.match(text, pos), pos)]
    if c == "#":  # a comment ends at the line end; looked up, not scanned, as many readings may share one line
        i = bisect.bisect_left(eols, pos)
        return [eols[i] if i < len(eols) else len(text)]
    if c in _STRINGS:
        for pattern in _STRINGS[c]:
            m = pattern.match(text, pos)
            if m:
                return [m.end()]
        return []  # not a string under this reading
    if c == "<":
        m = _IRI.match(text, pos)
        if not m:
            return [pos + 1]
        ambiguous = "'" in m.group() or "#" in m.group()
        return [m.end(), pos + 1] if ambiguous else [m.end()]
    if c == "\\":
        return [pos + 2]
    if c in "?$":
        return [_end(_VAR.match(text, pos), pos)]
    if c == "@":
        return [_end(_LANGTAG.match(text, pos), pos)]
    if "0" <= c <= "9":  # not str.isdigit(): that is true for "\u00b3" too
        return [_end(_DIGITS.match(text, pos), pos)]
    m = _NAME.match(text, pos)
    if not m:
        return [pos + 1]
    found.extend(pos + s.end() for s in _SERVICE.finditer(m.group()))
    return [m.end()]


def _end(match: re.Match | None, pos: int) -> int:
    """Where a token ends; a character no token rule matches is a token of its own."""
    return match.end() if match and match.end() > pos else pos + 1


def _endpoint_after(text: str, pos: int, prologue: Prologue) -> list[ServiceCall]:
    """The endpoint(s) of a SERVICE keyword ending at ``pos``, if an endpoint and ``{`` follow it."""
    calls = []
    starts = [_WS_OR_COMMENT.match(text, pos).end()]
    if text[starts[0]:starts[0] + 6].lower() == "silent":  # SILENT or a name that starts with it: try both
        starts.append(_WS_OR_COMMENT.match(text, starts[0] + 6).end())
    for p in starts:
        endpoint = None
        if text.startswith("<", p) and (m := _IRI.match(text, p)):
            endpoint = _iri_value(m.group(), prologue.base)
        elif p < len(text) and text[p] in "?$" and (m := _VAR.match(text, p)):
            pass
        elif m := _PNAME.match(text, p):
            ns = prologue.prefixes.get(m.group("prefix") or "")
            endpoint = ns + _LOCAL_ESC.sub(r"\1", m.group("local")) if ns else None
        else:
            continue
        if text.startswith("{", _WS_OR_COMMENT.match(text, m.end()).end()):
            calls.append(ServiceCall(endpoint, m.group(), text.count("\n", 0, p) + 1))
    return calls


def service_calls(text: str) -> list[ServiceCall]:
    """Every SERVICE call the query could make, under every reading of an ambiguous ``<``."""
    prologue = parse_prologue(text)
    seen, todo, found, dead, complete = set(), [prologue.end], [], [], False
    eols = [m.start() for m in re.finditer(r"[\r\n]", text)]
    while todo:
        pos = todo.pop()
        while pos < len(text) and pos not in seen:
            seen.add(pos)
            nexts = _next_positions(text, pos, found, eols)
            if not nexts:
                dead.append(pos)
                break
            todo.extend(nexts[1:])
            pos = nexts[0]
        complete = complete or pos >= len(text)
    if not complete:  # every reading ends in a string that does not close
        line = text.count("\n", 0, min(dead, default=0)) + 1
        raise QuerySyntaxError(f"unterminated string literal starting at line {line}")
    calls: list[ServiceCall] = []
    for end in sorted(set(found)):
        calls.extend(c for c in _endpoint_after(text, end, prologue) if c not in calls)
    return calls


def check_services(text: str, allowlist: set[str] | frozenset[str]) -> list[ServiceCall]:
    """The query's SERVICE calls, all to allowlisted endpoints; raises QueryRefused (403) otherwise."""
    calls = service_calls(text)
    for call in calls:
        if call.endpoint is None or call.endpoint not in allowlist:
            shown = f"<{call.endpoint}>" if call.endpoint else call.text
            raise QueryRefused(f"SERVICE {shown} (line {call.line}) is not allowed: federated queries may only "
                               "call the endpoints in the SERVICE_ALLOWLIST setting")
    return calls

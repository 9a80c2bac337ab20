"""A deployment described as a flow network (YAML or JSON), validated with errors that name the field.

    name: my-agent                    # optional
    sink: actions                     # the sensitive sink: a component id
    sources:      [{id, kind, trusted, label?}]
                  kind: user-text | user-image | user-audio | web | memory | agent | system
    components:   [{id, kind, label?}]            kind: encoder | model | tool | memory | sink
    edges:        [{id, from, to, bandwidth, label?}]   bandwidth: bits per interaction, a positive number
    defenses:     [{id, label?, class?, constrains: [{edge, factor} | {edge, remove: true}]}]   factor in [0, 1]

See docs/analysis.md and the shipped example ``examples/multimodal-agent.yaml``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from fractions import Fraction

import yaml

from mfmkg.errors import BadRequest

SOURCE_KINDS = ("user-text", "user-image", "user-audio", "web", "memory", "agent", "system")
COMPONENT_KINDS = ("encoder", "model", "tool", "memory", "sink")
MAX_ITEMS = 10_000
MAX_NUMBER = 1e15
_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,200}$")


class DeploymentError(BadRequest):
    """A deployment or session log that does not validate; ``field`` is the path of the offending value."""

    title = "Invalid deployment"

    def __init__(self, field: str, reason: str, where: str | None = None):
        self.field, self.reason, self.where = field, reason, where
        super().__init__(f"{where}: {field}: {reason}" if where else f"{field}: {reason}")

    def problem(self) -> dict:
        return {**super().problem(), "field": self.field}


@dataclass(frozen=True)
class Node:
    id: str
    kind: str
    trusted: bool = True
    label: str | None = None
    source: bool = False


@dataclass(frozen=True)
class Edge:
    id: str
    src: str
    dst: str
    bandwidth: Fraction
    label: str | None = None


@dataclass(frozen=True)
class Defense:
    id: str
    label: str | None
    cls: str | None
    factors: dict[str, Fraction]  # edge id -> factor (0 = removed)


@dataclass
class Deployment:
    name: str | None
    sink: str
    nodes: dict[str, Node]
    edges: list[Edge]
    defenses: list[Defense] = field(default_factory=list)

    @property
    def untrusted(self) -> list[str]:
        return [n.id for n in self.nodes.values() if n.source and not n.trusted]

    def edge(self, edge_id: str) -> Edge:
        return next(e for e in self.edges if e.id == edge_id)


def parse_text(text: str | bytes, fmt: str | None = None, where: str = "deployment") -> object:
    """The document in ``text``: JSON when ``fmt`` is json, else YAML (which also reads JSON)."""
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8")
        except UnicodeDecodeError as exc:
            raise DeploymentError("(document)", f"not UTF-8 text (byte {exc.start})", where) from None
    if fmt == "json":
        try:
            return json.loads(text)
        except json.JSONDecodeError as exc:
            raise DeploymentError("(document)", f"not valid JSON: {exc.msg} at line {exc.lineno}, column "
                                                f"{exc.colno}", where) from None
        except RecursionError:
            raise DeploymentError("(document)", "nested too deeply", where) from None
    try:
        return yaml.safe_load(text)
    except RecursionError:
        raise DeploymentError("(document)", "nested too deeply", where) from None
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        at = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise DeploymentError("(document)", f"not valid YAML: {reason}{at}", where) from None


def load_deployment(text: str | bytes, fmt: str | None = None, where: str = "deployment") -> Deployment:
    return validate(parse_text(text, fmt, where), where)


def validate(doc: object, where: str | None = None) -> Deployment:
    """A Deployment from a parsed document; the first problem found raises DeploymentError naming its field."""
    def fail(path: str, reason: str):
        raise DeploymentError(path, reason, where)

    if not isinstance(doc, dict):
        fail("(document)", "must be a mapping with sources, components, edges and sink")
    _keys(doc, "", {"name", "description", "sink", "sources", "components", "edges", "defenses"}, fail)
    nodes: dict[str, Node] = {}
    for i, s in enumerate(_list(doc, "sources", fail, required=True)):
        p = f"sources[{i}]"
        _keys(s, p, {"id", "kind", "trusted", "label"}, fail, item=True)
        nid = _ident(s, p, fail, taken=nodes)
        kind = _choice(s, p, "kind", SOURCE_KINDS, fail)
        if not isinstance(s.get("trusted"), bool):
            fail(f"{p}.trusted", "must be true or false")
        nodes[nid] = Node(nid, kind, s["trusted"], _label(s, p, fail), source=True)
    for i, c in enumerate(_list(doc, "components", fail, required=True)):
        p = f"components[{i}]"
        _keys(c, p, {"id", "kind", "label"}, fail, item=True)
        nid = _ident(c, p, fail, taken=nodes)
        nodes[nid] = Node(nid, _choice(c, p, "kind", COMPONENT_KINDS, fail), True, _label(c, p, fail))
    sink = doc.get("sink")
    if not isinstance(sink, str) or not sink:
        fail("sink", "required: the id of the sensitive sink component")
    if sink not in nodes or nodes[sink].source:
        fail("sink", f"must name a component, got {sink!r}")
    edges, edge_ids = [], {}
    for i, e in enumerate(_list(doc, "edges", fail, required=True)):
        p = f"edges[{i}]"
        _keys(e, p, {"id", "from", "to", "bandwidth", "label"}, fail, item=True)
        eid = _ident(e, p, fail, taken=edge_ids)
        ends = []
        for end in ("from", "to"):
            ref = e.get(end)
            if not isinstance(ref, str) or ref not in nodes:
                fail(f"{p}.{end}", f"must name a source or component, got {ref!r}")
            ends.append(ref)
        if ends[0] == ends[1]:
            fail(f"{p}.to", "must differ from 'from'")
        edge_ids[eid] = None
        edges.append(Edge(eid, ends[0], ends[1], _number(e, p, "bandwidth", fail, positive=True), _label(e, p, fail)))
    defenses, defense_ids = [], {}
    for i, d in enumerate(_list(doc, "defenses", fail, required=False)):
        p = f"defenses[{i}]"
        _keys(d, p, {"id", "label", "class", "constrains"}, fail, item=True)
        did = _ident(d, p, fail, taken=defense_ids)
        defense_ids[did] = None
        cls = d.get("class")
        if cls is not None and (not isinstance(cls, str) or not cls):
            fail(f"{p}.class", "must be the name of a defense class, e.g. JpegCompression")
        factors: dict[str, Fraction] = {}
        for j, c in enumerate(_list(d, "constrains", fail, required=True, path=p)):
            q = f"{p}.constrains[{j}]"
            _keys(c, q, {"edge", "factor", "remove"}, fail, item=True)
            ref = c.get("edge")
            if not isinstance(ref, str) or ref not in edge_ids:
                fail(f"{q}.edge", f"must name an edge, got {ref!r}")
            if ("factor" in c) == ("remove" in c):
                fail(q, "needs exactly one of factor (a number in [0, 1]) or remove: true")
            if "remove" in c:
                if c["remove"] is not True:
                    fail(f"{q}.remove", "must be true (leave it out to keep the edge)")
                f = Fraction(0)
            else:
                f = _number(c, q, "factor", fail)
                if f > 1:
                    fail(f"{q}.factor", "must be a number in [0, 1]")
            factors[ref] = factors.get(ref, Fraction(1)) * f
        defenses.append(Defense(did, _label(d, p, fail), cls, factors))
    name = doc.get("name")
    if name is not None and not isinstance(name, str):
        fail("name", "must be a string")
    return Deployment(name, sink, nodes, edges, defenses)


def _keys(obj, path: str, allowed: set[str], fail, item: bool = False) -> None:
    if item and not isinstance(obj, dict):
        fail(path, "must be a mapping")
    for k in obj:
        if k not in allowed:
            where = f"{path}.{k}" if path else str(k)
            fail(where, f"unknown field (expected one of {', '.join(sorted(allowed))})")


def _list(doc: dict, key: str, fail, required: bool, path: str = "") -> list:
    where = f"{path}.{key}" if path else key
    value = doc.get(key)
    if value is None:
        if required:
            fail(where, "required: a non-empty list")
        return []
    if not isinstance(value, list) or (required and not value):
        fail(where, "must be a non-empty list" if required else "must be a list")
    if len(value) > MAX_ITEMS:
        fail(where, f"at most {MAX_ITEMS} items")
    return value


def _ident(obj: dict, path: str, fail, taken) -> str:
    value = obj.get("id")
    if not isinstance(value, str) or not _ID.match(value):
        fail(f"{path}.id", "required: letters, digits, '_', '-', '.', ':' (at most 200)")
    if value in taken:
        fail(f"{path}.id", f"duplicate id {value!r}")
    return value


def _choice(obj: dict, path: str, key: str, choices: tuple[str, ...], fail) -> str:
    value = obj.get(key)
    if value not in choices:
        fail(f"{path}.{key}", f"must be one of {', '.join(choices)}, got {value!r}")
    return value


def _label(obj: dict, path: str, fail) -> str | None:
    value = obj.get("label")
    if value is not None and not isinstance(value, str):
        fail(f"{path}.label", "must be a string")
    return value


def _number(obj: dict, path: str, key: str, fail, positive: bool = False) -> Fraction:
    value = obj.get(key)
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and -MAX_NUMBER <= value <= MAX_NUMBER
    if not ok or value != value or value < 0 or (positive and value == 0):  # value != value: NaN
        fail(f"{path}.{key}", f"must be a positive number (at most {MAX_NUMBER:g})" if positive
             else "must be a number in [0, 1]")
    return Fraction(str(value)) if isinstance(value, float) else Fraction(value)

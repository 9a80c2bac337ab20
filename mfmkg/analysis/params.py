"""Parameters of the analyses, parsed the same way for the CLI and HTTP; a bad value raises BadRequest naming it."""

from __future__ import annotations

from fractions import Fraction

from mfmkg.errors import BadRequest
from mfmkg.namespaces import MFM

from .model import ClassInfo, local

TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off", ""}
LARGEST = 10**15  # budgets, shares and limits above this are mistakes, not inputs


def flag(name: str, value: str | bool | None, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = value.strip().lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise BadRequest(f"{name}: must be true or false, got {value!r}")


def choice(name: str, value: str | None, choices: tuple[str, ...], default: str | None = None) -> str:
    if value is None or value == "":
        if default is None:
            raise BadRequest(f"{name}: required, one of {', '.join(choices)}")
        return default
    if value not in choices:
        raise BadRequest(f"{name}: must be one of {', '.join(choices)}, got {value!r}")
    return value


def number(name: str, value: str | float | None, *, minimum: float = 0.0, strict: bool = False,
           required: bool = True, default: Fraction | None = None) -> Fraction:
    """A finite number >= minimum (> minimum when ``strict``), as an exact fraction of its decimal text."""
    if value is None or (isinstance(value, str) and not value.strip()):
        if required:
            raise BadRequest(f"{name}: required, a number")
        return default
    what = f"a number {'>' if strict else '>='} {minimum:g}"
    try:
        num = Fraction(str(value).strip())
    except (ValueError, ZeroDivisionError):
        raise BadRequest(f"{name}: must be {what}, got {value!r}") from None
    if (strict and num <= minimum) or num < minimum or abs(num) > LARGEST:
        raise BadRequest(f"{name}: must be {what} (at most {LARGEST:g}), got {value!r}")
    return num


def find_class(classes: dict[str, ClassInfo], text: str, name: str, allowed: list[str] | None = None,
               noun: str = "class") -> str:
    """A class by IRI, ``mfm:`` CURIE, local name or label (case-insensitive)."""
    key = text.strip()
    if key.startswith("mfm:"):
        key = str(MFM) + key[4:]
    pool = allowed if allowed is not None else sorted(classes)
    for iri in pool:
        if key == iri:
            return iri
    low = key.lower()
    for iri in pool:
        info = classes.get(iri)
        if low == local(iri).lower() or (info and info.label and low == info.label.lower()):
            return iri
    known = ", ".join(local(i) for i in pool)
    raise BadRequest(f"{name}: unknown {noun} {text!r} (known: {known})")


def class_list(classes: dict[str, ClassInfo], text: str | None, name: str, allowed: list[str],
               noun: str = "defense") -> list[str]:
    """Comma-separated class names -> IRIs, duplicates dropped, order kept."""
    if text is None or not text.strip():
        return []
    out: list[str] = []
    for part in text.split(","):
        if not part.strip():
            raise BadRequest(f"{name}: empty name in {text!r}")
        iri = find_class(classes, part, name, allowed, noun)
        if iri not in out:
            out.append(iri)
    return out

"""``verify-attestation --policy FILE``: a small declarative check on a verified in-toto statement (pure).

Not a Rego/CUE engine: a JSON file ``{"require": [RULE, ...]}``, each rule ``{"path": P, "equals": VALUE}``
or ``{"path": P, "matches": REGEX}`` (searched, as cosign's regexps; anchor with ``^…$``). ``P`` is a path
into the statement: keys separated by dots, list items as ``[N]``, an optional leading ``$.``, e.g.
``predicate.runDetails.builder.id`` or ``subject[0].digest.sha256``. Every rule must hold.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Final

from pipeline import jsonbounded
from pipeline.errors import InvalidInputError

_STEP: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")
_MISSING: Final = object()


def _step(value: object, step: str | int) -> object:
    if isinstance(step, int):
        return value[step] if isinstance(value, list) and step < len(value) else _MISSING
    return value[step] if isinstance(value, dict) and step in value else _MISSING


@dataclass(frozen=True)
class Rule:
    path: str
    steps: tuple[str | int, ...]
    equals: object = _MISSING
    matches: re.Pattern[str] | None = None

    def check(self, document: object) -> str | None:
        """None if the rule holds, else why not."""
        value: object = document
        for step in self.steps:
            value = _step(value, step)
            if value is _MISSING:
                return f"policy: {self.path} is missing"
        if self.matches is not None:
            if not isinstance(value, str) or self.matches.search(value) is None:
                return f"policy: {self.path} is {json.dumps(value)}, which does not match {self.matches.pattern!r}"
            return None
        if value != self.equals:
            return f"policy: {self.path} is {json.dumps(value)}, not {json.dumps(self.equals)}"
        return None


def _steps(path: str, where: str) -> tuple[str | int, ...]:
    text = path[2:] if path.startswith("$.") else path
    steps: list[str | int] = []
    position = 0
    while position < len(text):
        if text[position] == "." and steps:
            position += 1
        match = _STEP.match(text, position)
        if match is None:
            raise InvalidInputError(f"the policy path {path!r} is not a dotted path", where=where)
        steps.append(match.group(1) if match.group(1) is not None else int(match.group(2)))
        position = match.end()
    if not steps:
        raise InvalidInputError("a policy rule has an empty path", where=where)
    return tuple(steps)


@dataclass(frozen=True)
class StatementPolicy:
    rules: tuple[Rule, ...]

    def problems(self, payload: bytes, where: str) -> list[str]:
        document = jsonbounded.loads(payload, source=where, what="the in-toto statement")
        return [problem for rule in self.rules if (problem := rule.check(document)) is not None]


def parse_statement_policy(data: bytes, where: str) -> StatementPolicy:
    try:
        document: object = jsonbounded.loads(data, source=where, what="the policy")
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InvalidInputError("the policy is not JSON", where=where) from None
    raw = document.get("require") if isinstance(document, dict) else None
    if not isinstance(raw, list) or not raw:
        raise InvalidInputError('the policy needs a non-empty "require" list of rules', where=where)
    rules: list[Rule] = []
    for index, item in enumerate(raw):
        if not isinstance(item, dict) or not isinstance(item.get("path"), str):
            raise InvalidInputError(f'policy rule {index} is not an object with a "path"', where=where)
        path = item["path"]
        if ("equals" in item) == ("matches" in item):
            raise InvalidInputError(f'policy rule {index} needs exactly one of "equals" or "matches"', where=where)
        if "matches" in item:
            pattern = item["matches"]
            try:
                compiled = re.compile(pattern) if isinstance(pattern, str) else None
            except re.error:
                compiled = None
            if compiled is None:
                raise InvalidInputError(f"policy rule {index}: {pattern!r} is not a regular expression", where=where)
            rules.append(Rule(path, _steps(path, where), matches=compiled))
        else:
            rules.append(Rule(path, _steps(path, where), equals=item["equals"]))
    return StatementPolicy(tuple(rules))

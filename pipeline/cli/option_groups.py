"""Option groups: options defined once, handed to a command as one frozen object.

A group is a frozen dataclass and the typer option of each of its fields. A command names the group
as one parameter, ``trust: TrustOptions = VERIFY_OPTIONS``, and is decorated with :func:`grouped`
(below ``@app.command``): the signature typer reads then has one parameter per field, in the group's
order at that place, and the command receives the dataclass built from them. So a shared option's
name, env var, default and help live in one place, and a command's body passes one object on instead
of a dozen keywords.
"""

from __future__ import annotations

import dataclasses
import functools
import inspect
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ParamSpec, TypeVar, cast

P = ParamSpec("P")
R = TypeVar("R")


@dataclass(frozen=True)
class OptionGroup:
    """The dataclass to build and, per field (in the order ``--help`` lists them), its type and typer option."""

    build: Callable[..., Any]
    options: tuple[tuple[str, Any, Any], ...]


def option_group(build: type[Any], panel: str | None = None, **options: tuple[Any, Any]) -> Any:
    """``option_group(TrustOptions, "Verification", ca_roots=(Path | None, CA_ROOTS_OPTION), …)``: every
    field, nothing else. ``panel``: the ``--help`` panel of each option that names none of its own.

    Typed ``Any`` as ``typer.Option`` is, so that ``group: TrustOptions = VERIFY_OPTIONS`` type-checks.
    """
    fields = {field.name for field in dataclasses.fields(build)}
    if set(options) != fields:
        raise TypeError(f"option group {build.__name__}: options {sorted(options)} are not its fields {sorted(fields)}")
    for _, option in options.values():
        if panel is not None and getattr(option, "rich_help_panel", None) is None:
            option.rich_help_panel = panel  # read by pipeline.cli.help (one panel per option, first group wins)
    return OptionGroup(build, tuple((name, annotation, option) for name, (annotation, option) in options.items()))


def grouped(command: Callable[P, R]) -> Callable[P, R]:
    """Expand each parameter whose default is an :class:`OptionGroup` into the group's options (see above)."""
    signature = inspect.signature(command, eval_str=True)
    parameters: list[inspect.Parameter] = []
    groups: dict[str, OptionGroup] = {}
    for parameter in signature.parameters.values():
        group = parameter.default
        if not isinstance(group, OptionGroup):
            parameters.append(parameter)
            continue
        groups[parameter.name] = group
        kind = parameter.kind
        parameters += [inspect.Parameter(name, kind, default=option, annotation=annotation)
                       for name, annotation, option in group.options]  # fmt: skip
    names = [parameter.name for parameter in parameters]
    if len(set(names)) != len(names):
        raise TypeError(f"{command.__name__}: an option group repeats a parameter name: {names}")

    @functools.wraps(command)
    def run(*args: Any, **values: Any) -> Any:
        for name, group in groups.items():
            values[name] = group.build(**{option: values.pop(option) for option, _, _ in group.options})
        return command(*args, **values)

    expanded = signature.replace(parameters=parameters)
    run.__signature__ = expanded  # type: ignore[attr-defined]  # what typer (inspect.signature) reads
    run.__annotations__ = {p.name: p.annotation for p in parameters} | {"return": signature.return_annotation}
    return cast(Callable[P, R], run)

"""Read a CloudFormation YAML template: short-form tags, parameters, and the intrinsic functions it uses.

Only what ``infra/cloudformation/bucket.yaml`` needs is resolved (``Ref``,
``Fn::Sub``, ``Fn::If``, ``Fn::Not``, ``Fn::Equals``, conditions); anything
else is an error, never a silent pass-through.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

__all__ = ["TEMPLATE", "BootstrapError", "Context", "load_template", "parameters", "resolve"]

TEMPLATE = Path(__file__).parent / "cloudformation" / "bucket.yaml"
"""The CloudFormation template of the bucket and its policies."""

_NO_VALUE = object()  # what ``!Ref AWS::NoValue`` resolves to: the key or item disappears


class BootstrapError(ValueError):
    """The template, a parameter or a setting cannot be used; the message names which."""


class _CfnLoader(yaml.SafeLoader):
    """PyYAML's safe loader plus CloudFormation's short forms (``!Ref``, ``!Sub``, ``!If`` ...)."""


def _short_form(loader: yaml.SafeLoader, suffix: str, node: yaml.Node) -> dict[str, Any]:
    name = "Ref" if suffix == "Ref" else f"Fn::{suffix}"
    if isinstance(node, yaml.ScalarNode):
        value: Any = loader.construct_scalar(node)
        if suffix == "GetAtt":
            value = str(value).split(".", 1)
    elif isinstance(node, yaml.SequenceNode):
        value = loader.construct_sequence(node, deep=True)
    elif isinstance(node, yaml.MappingNode):
        value = loader.construct_mapping(node, deep=True)
    else:
        raise BootstrapError(f"!{suffix}: unexpected YAML node {type(node).__name__}")
    return {name: value}


_CfnLoader.add_multi_constructor("!", _short_form)


def load_template(path: Path = TEMPLATE) -> dict[str, Any]:
    """Read a CloudFormation YAML template, short forms turned into their long ``Fn::`` forms.

    Raises:
        BootstrapError: the file cannot be read or is not a template.
    """
    try:
        loaded = yaml.load(path.read_text(encoding="utf-8"), Loader=_CfnLoader)  # noqa: S506 - a SafeLoader
    except (OSError, yaml.YAMLError) as exc:
        raise BootstrapError(f"{path}: cannot read the template: {exc}") from exc
    if not isinstance(loaded, dict) or not isinstance(loaded.get("Resources"), dict):
        raise BootstrapError(f"{path}: not a CloudFormation template (no Resources)")
    return loaded


def parameters(template: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, Any]:
    """Return every parameter's value: ``given``, else its default, checked against its constraints.

    Raises:
        BootstrapError: an unknown parameter, or a value its constraints refuse.
    """
    declared: Mapping[str, Any] = template.get("Parameters", {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise BootstrapError(f"unknown template parameter {unknown[0]!r} (known: {', '.join(declared)})")
    values: dict[str, Any] = {}
    for name, spec in declared.items():
        if name not in given and "Default" not in spec:
            continue  # required but unset: an error only if a setting refers to it
        raw = str(given.get(name, spec.get("Default")))
        pattern = spec.get("AllowedPattern")
        if pattern is not None and re.fullmatch(pattern, raw) is None:
            raise BootstrapError(f"parameter {name}={raw!r} does not match {pattern}")
        if spec.get("Type") == "Number":
            if not raw.isdigit():
                raise BootstrapError(f"parameter {name}={raw!r} is not a whole number")
            number = int(raw)
            if "MinValue" in spec and number < int(spec["MinValue"]):
                raise BootstrapError(f"parameter {name}={number} is below {spec['MinValue']}")
            values[name] = number
        else:
            values[name] = raw
    return values


@dataclass(frozen=True)
class Context:
    """What intrinsic functions resolve against: parameter values, conditions, the region."""

    parameters: Mapping[str, Any]
    conditions: Mapping[str, Any]
    region: str

    def ref(self, name: str) -> Any:
        if name == "AWS::NoValue":
            return _NO_VALUE
        if name == "AWS::Region":
            return self.region
        if name not in self.parameters:
            raise BootstrapError(f"parameter {name} has no value (give it with -p {name}=...)")
        return self.parameters[name]

    def condition(self, name: str) -> bool:
        if name not in self.conditions:
            raise BootstrapError(f"unknown condition {name!r}")
        return bool(resolve(self.conditions[name], self))


def resolve(node: Any, context: Context) -> Any:
    """Resolve the intrinsic functions this template uses: Ref, Sub, If, Not, Equals.

    Raises:
        BootstrapError: an unknown function, parameter or condition.
    """
    if isinstance(node, list):
        items = [resolve(item, context) for item in node]
        return [item for item in items if item is not _NO_VALUE]
    if not isinstance(node, dict):
        return node
    if len(node) == 1:
        ((name, argument),) = node.items()
        if name == "Ref":
            return context.ref(argument)
        if name == "Fn::Sub":
            names = set(re.findall(r"\$\{([^}!]+)\}", argument))
            values = {n: str(context.ref(n)) for n in names}
            return re.sub(r"\$\{([^}!]+)\}", lambda match: values[match.group(1)], argument)
        if name == "Fn::If":
            chosen = argument[1] if context.condition(argument[0]) else argument[2]
            return resolve(chosen, context)
        if name == "Fn::Not":
            return not resolve(argument[0], context)
        if name == "Fn::Equals":
            left, right = (resolve(item, context) for item in argument)
            return str(left) == str(right)
        if name == "Condition":
            return context.condition(argument)
        if name.startswith("Fn::"):
            raise BootstrapError(f"{name} is not supported by infra/bootstrap.py")
    resolved = {key: resolve(value, context) for key, value in node.items()}
    return {key: value for key, value in resolved.items() if value is not _NO_VALUE}

"""Read a Pulumi stack file (stacks/Pulumi.<stack>.yaml) into a validated Stand.

Stand settings live under the project's namespace, one key per section (``llm-stands:model``);
keys of other namespaces (``yandex:cloudId``, ``openstack:authUrl``) are provider settings and pass.
"""

from __future__ import annotations

import difflib
from pathlib import Path

import yaml
from pydantic import ValidationError

from infra import PROJECT
from infra.config.errors import Problem, StandConfigError
from infra.config.model import Stand

REPO_ROOT = Path(__file__).resolve().parents[2]
STACKS_DIR = REPO_ROOT / "stacks"
SECTIONS = tuple(name for name in Stand.model_fields if name != "stack")


def stack_path(name_or_path: str | Path) -> Path:
    candidate = Path(name_or_path)
    if candidate.suffix in (".yaml", ".yml") or candidate.exists():
        return candidate
    return STACKS_DIR / f"Pulumi.{name_or_path}.yaml"


def stack_name(path: Path) -> str:
    parts = path.name.split(".")
    return parts[1] if len(parts) == 3 and parts[0] == "Pulumi" else path.stem


def load_stand(name_or_path: str | Path, *, check: bool = True) -> Stand:
    """The stand of a stack, or StandConfigError listing every problem (field, message, fix)."""
    path = stack_path(name_or_path)
    source = str(path)
    if not path.exists():
        known = ", ".join(sorted(stack_name(p) for p in STACKS_DIR.glob("Pulumi.*.yaml")))
        raise StandConfigError(source, [Problem("stack", f"no stack file {path}", f"use one of: {known}")])
    stand = parse_stand(_read_config(path), stack_name(path), source)
    stand._source = path.resolve()
    if check:
        from infra.config.checks import check_stand

        problems = check_stand(stand)
        if problems:
            raise StandConfigError(source, problems)
    return stand


def parse_stand(config: dict, stack: str, source: str = "<config>") -> Stand:
    """Build a Stand from a Pulumi config mapping ({"llm-stands:model": {...}, ...})."""
    data, problems = _sections(config)
    if problems:
        raise StandConfigError(source, problems)
    try:
        return Stand.model_validate({"stack": stack, **data})
    except ValidationError as exc:
        raise StandConfigError(source, [_problem(e) for e in exc.errors()]) from None


def _read_config(path: Path) -> dict:
    try:
        doc = yaml.safe_load(path.read_text())
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        reason = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise StandConfigError(str(path), [Problem("yaml", f"not valid YAML{where}: {reason}",
                                                   "fix the indentation or quoting there")]) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("config"), dict):
        raise StandConfigError(str(path), [Problem("config", "a stack file has a top-level 'config:' mapping",
                                                   f"put the stand's settings under config: as {PROJECT}:<section>")])
    return doc["config"]


def _sections(config: dict) -> tuple[dict, list[Problem]]:
    data, problems = {}, []
    for key, value in config.items():
        namespace, _, name = str(key).partition(":")
        if namespace != PROJECT:
            continue  # a provider's setting (yandex:, openstack:, kubernetes:)
        if name not in SECTIONS:
            problems.append(Problem(key, "unknown setting", _did_you_mean(name, SECTIONS, f"{PROJECT}:")))
            continue
        data[name] = value
    return data, problems


def _problem(error: dict) -> Problem:
    loc = [str(p) for p in error["loc"]]
    # Tagged-union and validator noise ("function-after[...]") is not part of the user's path.
    loc = [p for p in loc if not p.startswith(("function-", "constrained-"))]
    field = f"{PROJECT}:" + ".".join(loc) if loc else PROJECT
    kind = error["type"]
    if kind == "extra_forbidden":
        return Problem(field, "unknown key", _did_you_mean(loc[-1], _siblings(loc[:-1])))
    if kind == "missing":
        return Problem(field, "required and missing", "add it to the stack file")
    message = error["msg"].removeprefix("Value error, ")
    return Problem(field, message, _fix_for(kind, error))


def _fix_for(kind: str, error: dict) -> str:
    if kind == "literal_error":
        return f"use one of {error.get('ctx', {}).get('expected', '')}"
    if kind.startswith(("int_", "float_", "greater", "less")):
        return "give a number in the allowed range"
    if kind == "value_error" and "plain text" in error["msg"]:
        from infra.config.secrets import PLAINTEXT_FIX

        return PLAINTEXT_FIX
    return ""


def _siblings(loc: list[str]) -> tuple[str, ...]:
    """Field names valid at a location of the Stand model, to suggest the intended key."""
    model = Stand
    for part in loc:
        if part.isdigit():
            continue
        field = model.model_fields.get(part)
        if field is None:
            return ()
        annotation = field.annotation
        inner = getattr(annotation, "__args__", None)
        candidates = [annotation, *(inner or ())]
        model = next((c for c in candidates if isinstance(c, type) and hasattr(c, "model_fields")), None)
        if model is None:
            return ()
    return tuple(model.model_fields)


def _did_you_mean(name: str, choices: tuple[str, ...], prefix: str = "") -> str:
    close = difflib.get_close_matches(name, choices, n=1)
    if close:
        return f"did you mean '{prefix}{close[0]}'?"
    return f"remove it; valid keys here: {', '.join(choices)}" if choices else "remove it"

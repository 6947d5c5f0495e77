"""The document-type catalog: `seeds/doc_types.toml` loaded into typed specs and pydantic models.

Decisions:
- A type is data, not code: its fields, title and body templates, suitable fact categories
  and named deterministic checks live in the TOML file, so users add a type by editing it.
- The output model of a type is built with `pydantic.create_model` from the field list, so
  the JSON schema sent to the model (`response_format`) and the validation of the reply are
  one object. Strings carry `maxLength` and lists `maxItems` because the llama.cpp grammar
  enforces them and the 0.5B default model otherwise rambles.
- Dates and datetimes are plain strings in the model (a `format`/`pattern` hint goes into
  the schema only): a bad date must reach the format expert, which records it in `reviews`
  with feedback the generator can act on, rather than vanish in a gateway re-ask.
- The body is the rendered document text (`render` template); empty `Label: ` lines from
  optional fields are dropped so a calendar entry without attendees reads naturally.
"""

from __future__ import annotations

import json
import re
import tomllib
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, create_model

from personafoundry.errors import ConfigError, SeedFileError
from personafoundry.paths import SEEDS_DIR

CATALOG_PATH = SEEDS_DIR / "doc_types.toml"
PROMPTS_DIR = SEEDS_DIR / "prompts" / "documents"
FIELD_TYPES = ("string", "date", "datetime", "number", "integer", "list")
SCALAR_PY: dict[str, type] = {
    "string": str,
    "date": str,
    "datetime": str,
    "number": float,
    "integer": int,
}
SCHEMA_HINTS: dict[str, dict[str, str]] = {
    "date": {"pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$"},
    "datetime": {"pattern": r"^[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2}$"},
}
KNOWN_CHECKS = ("items_sum_to_total", "greets_recipient")
EMPTY_LABEL_LINE = re.compile(r"^[A-Z][\w ]{0,20}:\s*$")


@dataclass(frozen=True)
class DocField:
    """One output field of a document type (a list field has `item_fields` or `item_type`)."""

    name: str
    type: str
    description: str = ""
    max_length: int | None = None
    optional: bool = False
    max_items: int | None = None
    item_format: str = "{value}"
    item_type: str | None = None
    item_fields: tuple[DocField, ...] = ()


@dataclass(frozen=True)
class DocType:
    """One catalog entry: what the document is, its output schema and how it renders."""

    name: str
    label: str
    spec: str
    fields: tuple[DocField, ...]
    render: str
    title: str
    categories: tuple[str, ...] = ()
    counterpart: Literal["required", "optional", "none"] = "none"
    checks: tuple[str, ...] = ()
    example: dict[str, Any] | None = None
    extra: dict[str, Any] = field(default_factory=dict, compare=False)

    @cached_property
    def model(self) -> type[BaseModel]:
        """The pydantic model of this type's structured output."""
        return _build_model(_camel(self.name) + "Doc", self.fields)

    def render_text(self, values: dict[str, Any]) -> tuple[str, str]:
        """(title, body) of a validated reply, rendered with the catalog templates."""
        flat = {f.name: _render_value(f, values.get(f.name)) for f in self.fields}
        title = self.title.format(**flat).strip()
        body = self.render.format(**flat)
        lines = [ln.rstrip() for ln in body.splitlines() if not EMPTY_LABEL_LINE.match(ln)]
        return title, "\n".join(lines).strip()

    def date_fields(self) -> list[tuple[str, str]]:
        """(path, kind) of every date/datetime field; list items read as `lines[].date`."""
        out = []
        for f in self.fields:
            if f.type in ("date", "datetime"):
                out.append((f.name, f.type))
            for sub in f.item_fields:
                if sub.type in ("date", "datetime"):
                    out.append((f"{f.name}[].{sub.name}", sub.type))
        return out


def _camel(name: str) -> str:
    return "".join(part.capitalize() for part in re.split(r"[^A-Za-z0-9]+", name) if part)


def _scalar_field(f: DocField) -> tuple[Any, Any]:
    kwargs: dict[str, Any] = {"description": f.description or f.name}
    if f.type in ("string", "date", "datetime"):
        if f.max_length:
            kwargs["max_length"] = f.max_length
        if not f.optional:
            kwargs["min_length"] = 1
        if f.type in SCHEMA_HINTS:
            kwargs["json_schema_extra"] = SCHEMA_HINTS[f.type]
    return SCALAR_PY[f.type], Field(**kwargs)


def _build_model(name: str, fields: tuple[DocField, ...]) -> type[BaseModel]:
    spec: dict[str, Any] = {}
    for f in fields:
        if f.type != "list":
            spec[f.name] = _scalar_field(f)
            continue
        if f.item_fields:
            item: Any = _build_model(
                name.removesuffix("Doc") + _camel(f.name) + "Item", f.item_fields
            )
        else:
            item = SCALAR_PY[f.item_type or "string"]
        kwargs: dict[str, Any] = {"description": f.description or f.name}
        if f.max_items:
            kwargs["max_length"] = f.max_items
        if not f.optional:
            kwargs["min_length"] = 1
        spec[f.name] = (list[item], Field(**kwargs))
    return create_model(name, __config__=ConfigDict(extra="ignore"), **spec)


def _render_value(f: DocField, value: Any) -> Any:
    if f.type != "list":
        return "" if value is None else value
    items = value or []
    out = []
    for item in items:
        data = item if isinstance(item, dict) else {"value": item}
        try:
            out.append(f.item_format.format(**data).rstrip())
        except (KeyError, ValueError, TypeError):  # a number given as text: show it as is
            out.append("  ".join(str(v) for v in data.values()))
    return "\n".join(out)


def _parse_field(raw: dict[str, Any], where: str) -> DocField:
    name = raw.get("name")
    kind = raw.get("type", "string")
    if not isinstance(name, str) or not name.isidentifier():
        raise SeedFileError(f"{where}: field name {name!r} is not an identifier; rename it.")
    if kind not in FIELD_TYPES:
        raise SeedFileError(f"{where}.{name}: type {kind!r} is unknown; use one of {FIELD_TYPES}.")
    subs = tuple(_parse_field(s, f"{where}.{name}") for s in raw.get("item_fields", []))
    if kind == "list" and not subs and raw.get("item_type", "string") not in SCALAR_PY:
        raise SeedFileError(f"{where}.{name}: item_type must be a scalar type.")
    return DocField(
        name=name,
        type=kind,
        description=str(raw.get("description", "")),
        max_length=raw.get("max_length"),
        optional=bool(raw.get("optional", False)),
        max_items=raw.get("max_items"),
        item_format=str(raw.get("item_format", "{value}")),
        item_type=raw.get("item_type"),
        item_fields=subs,
    )


def _parse_type(name: str, raw: dict[str, Any], source: str) -> DocType:
    where = f"{source} [types.{name}]"
    for key in ("label", "spec", "render", "fields"):
        if key not in raw:
            raise SeedFileError(f"{where}: missing key {key!r}; every type needs {key}.")
    fields = tuple(_parse_field(f, where) for f in raw["fields"])
    names = {f.name for f in fields}
    counterpart = raw.get("counterpart", "none")
    if counterpart not in ("required", "optional", "none"):
        raise SeedFileError(f"{where}: counterpart {counterpart!r}; use required|optional|none.")
    checks = tuple(raw.get("checks", []))
    for check in checks:
        if check not in KNOWN_CHECKS:
            raise SeedFileError(f"{where}: unknown check {check!r}; known: {KNOWN_CHECKS}.")
    doc = DocType(
        name=name,
        label=str(raw["label"]),
        spec=str(raw["spec"]),
        fields=fields,
        render=str(raw["render"]),
        title=str(raw.get("title", raw["label"])),
        categories=tuple(raw.get("categories", [])),
        counterpart=counterpart,
        checks=checks,
        example=_parse_example(raw.get("example"), where),
        extra={k: v for k, v in raw.items() if k not in DocType.__dataclass_fields__},
    )
    if doc.example is not None:
        try:
            doc.model.model_validate(doc.example)
        except ValueError as err:
            raise SeedFileError(f"{where}: example does not fit the fields ({err}).") from None
    for template in (doc.render, doc.title):
        used = {m.split(":")[0].split(".")[0] for m in re.findall(r"\{([^{}]+)\}", template)}
        if used - names:
            raise SeedFileError(f"{where}: template uses unknown fields {sorted(used - names)}.")
    return doc


def _parse_example(raw: Any, where: str) -> dict[str, Any] | None:
    if raw is None:
        return None
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except json.JSONDecodeError as err:
        raise SeedFileError(f"{where}: example is not valid JSON ({err.msg}).") from None
    if not isinstance(value, dict):
        raise SeedFileError(f"{where}: example must be one JSON object.")
    return value


def load_catalog(path: str | Path | None = None) -> dict[str, DocType]:
    """Read the catalog TOML (default `seeds/doc_types.toml`) into `{name: DocType}`."""
    source = Path(path) if path is not None else CATALOG_PATH
    try:
        data = tomllib.loads(source.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SeedFileError(f"document catalog {source} does not exist; restore it.") from None
    except tomllib.TOMLDecodeError as err:
        raise SeedFileError(f"{source}: not valid TOML ({err}); fix the syntax.") from None
    types = data.get("types")
    if not isinstance(types, dict) or not types:
        raise SeedFileError(f"{source}: no [types.<name>] tables; add at least one type.")
    return {name: _parse_type(name, raw, str(source)) for name, raw in types.items()}


def select_types(catalog: dict[str, DocType], names: list[str]) -> dict[str, DocType]:
    """The configured subset of the catalog (all of it when `names` is empty)."""
    unknown = [n for n in names if n not in catalog]
    if unknown:
        raise ConfigError(
            f"documents.doc_types names {unknown} not in the catalog; known: {sorted(catalog)}."
        )
    return {n: catalog[n] for n in names} if names else dict(catalog)


@dataclass(frozen=True)
class Prompt:
    """A prompt template: system text and a user template (`str.format` fields)."""

    system: str
    user: str

    def messages(self, **values: Any) -> list[dict[str, str]]:
        return [
            {"role": "system", "content": self.system},
            {"role": "user", "content": self.user.format(**values)},
        ]


def load_prompts(folder: str | Path | None = None) -> tuple[str, dict[str, Prompt]]:
    """(prompt_version, {name: Prompt}) from `seeds/prompts/documents/*.txt` + `VERSION`.

    A template file holds the system text, a line `---`, then the user template.
    """
    root = Path(folder) if folder is not None else PROMPTS_DIR
    try:
        version = (root / "VERSION").read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        raise SeedFileError(f"{root}/VERSION is missing; add a prompt version string.") from None
    prompts = {}
    for path in sorted(root.glob("*.txt")):
        system, sep, user = path.read_text(encoding="utf-8").partition("\n---\n")
        if not sep:
            raise SeedFileError(f"{path}: no '---' line between system text and user template.")
        prompts[path.stem] = Prompt(system.strip(), user.strip())
    return version, prompts

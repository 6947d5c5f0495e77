"""Document-type catalog: shipped types, user-added types, and errors that name the problem."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from personafoundry.config import DocumentsConfig
from personafoundry.doc_catalog import load_catalog, load_prompts, select_types
from personafoundry.doc_plan import plan_documents
from personafoundry.errors import ConfigError, SeedFileError

ISSUE_TYPES = {
    "email", "text_thread", "calendar_entry", "receipt", "bank_statement", "social_post",
    "journal_note", "search_history", "assistant_chat", "health_log",
}  # fmt: skip
PARKING = """
[types.parking_ticket]
label = "parking ticket"
spec = "A city parking citation."
categories = ["location", "habits"]
render = "Citation {number}\\n{street}\\nFine: ${fine:.2f}"
title = "Parking ticket {number}"
[[types.parking_ticket.fields]]
name = "number"
type = "string"
max_length = 12
[[types.parking_ticket.fields]]
name = "street"
type = "string"
[[types.parking_ticket.fields]]
name = "fine"
type = "number"
"""


def test_shipped_catalog_has_the_issue_types_with_small_schemas() -> None:
    catalog = load_catalog()
    assert set(catalog) == ISSUE_TYPES
    for doc_type in catalog.values():
        schema = doc_type.model.model_json_schema()
        assert len(schema["properties"]) <= 6, doc_type.name
        strings = [p for p in schema["properties"].values() if p.get("type") == "string"]
        assert all("maxLength" in p or "pattern" in p for p in strings), doc_type.name


def test_a_user_adds_a_type_by_editing_toml(tmp_path: Path) -> None:
    path = tmp_path / "types.toml"
    path.write_text(PARKING, encoding="utf-8")
    catalog = load_catalog(path)
    ticket = catalog["parking_ticket"]
    draft = ticket.model(number="PK-2291", street="400 Main St", fine=45)
    assert ticket.render_text(draft.model_dump()) == (
        "Parking ticket PK-2291",
        "Citation PK-2291\n400 Main St\nFine: $45.00",
    )
    with pytest.raises(ValidationError):
        ticket.model(number="x" * 13, street="Main", fine=1)


def test_the_planner_uses_a_custom_catalog(tmp_path: Path) -> None:
    from test_doc_plan import make_personas

    path = tmp_path / "types.toml"
    path.write_text(PARKING, encoding="utf-8")
    cfg = DocumentsConfig(catalog_path=str(path), per_persona=2)
    plan = plan_documents(make_personas(), cfg, rng_seed=0)
    assert set(plan.table.column("doc_type").to_pylist()) == {"parking_ticket"}


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[types.x]\nlabel='x'\nspec='x'\nrender='{a}'\nfields=[]", "template uses unknown fields"),
        ("[types.x]\nlabel='x'\nspec='x'\nfields=[]", "missing key 'render'"),
        (
            "[types.x]\nlabel='x'\nspec='x'\nrender='{a}'\n[[types.x.fields]]\nname='a'\ntype='blob'",
            "type 'blob' is unknown",
        ),
        ("[types.x]\nlabel='x'\nspec='x'\nrender=''\nfields=[]\nchecks=['magic']", "unknown check"),
        ("[types.x]\nlabel='x'\nspec='x'\nrender=''\nfields=[]\nexample='{'", "not valid JSON"),
        ("[other]\n", "no [types.<name>] tables"),
        ("[types.x\n", "not valid TOML"),
    ],
)
def test_bad_catalogs_name_the_file_and_the_problem(
    tmp_path: Path, text: str, message: str
) -> None:
    path = tmp_path / "bad.toml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SeedFileError, match="bad.toml") as err:
        load_catalog(path)
    assert message in str(err.value)


def test_unknown_configured_types_are_a_config_error() -> None:
    with pytest.raises(ConfigError, match="'memo'"):
        select_types(load_catalog(), ["email", "memo"])
    assert list(select_types(load_catalog(), ["receipt"])) == ["receipt"]


def test_prompts_have_a_version_and_every_template_the_stage_uses() -> None:
    version, prompts = load_prompts()
    assert version.startswith("documents-v")
    assert {"generate", "coverage", "faithfulness", "realism"} <= set(prompts)
    assert all(p.system and p.user for p in prompts.values())

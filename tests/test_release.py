"""Releases: written once, verifiable, self-describing, queryable with DuckDB."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import threading
from pathlib import Path
from typing import Any

import pyarrow as pa
import pytest
import yaml

from personafoundry.config import ValidateConfig
from personafoundry.errors import PersonaFoundryError, ReleaseExistsError, ValidationFailed
from personafoundry.release import (
    _publish,
    connect_release,
    cut_release,
    diff_releases,
    list_releases,
    query_release,
    resolve_release,
    verify_release,
)
from personafoundry.synthetic import synthetic_tables
from personafoundry.validate import ValidationReport, validate_tables
from schemas import SCHEMA_VERSION

CONFIG = {
    "seed": 0,
    "llm": {"generator": {"base_url": "https://user:hunter2@llm.example:8443/v1?key=abc",
                          "api_key": "sk-secret", "api_key_env": "OPENAI_API_KEY"}},
    "validate": {"census_min_rows": 200},
}  # fmt: skip
RUN_INFO = {"models": {"generator": "tiny", "critic": "tiny"}, "tokens": {"total_tokens": 1234}}


def cut(root: Path, version: str = "1.0.0", tables: dict[str, pa.Table] | None = None, **kw: Any):
    return cut_release(
        tables or synthetic_tables(),
        root=root,
        name="demo",
        version=version,
        config=CONFIG,
        run_info=RUN_INFO,
        **kw,
    )


@pytest.fixture(scope="module")
def release(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One published release shared by the read-only tests (tamper tests copy it first)."""
    return cut(tmp_path_factory.mktemp("releases")).path


def test_release_layout_and_manifest(release: Path) -> None:
    manifest = json.loads((release / "manifest.json").read_text())
    tables = synthetic_tables()
    assert {t: m["rows"] for t, m in manifest["tables"].items()} == {
        t: v.num_rows for t, v in tables.items()
    }
    for rel, meta in manifest["files"].items():
        assert hashlib.sha256((release / rel).read_bytes()).hexdigest() == meta["sha256"]
    assert {"README.md", "views.sql", "validation/results.json", "validation/summary.md"} <= set(
        manifest["files"]
    )
    assert manifest["schema_version"] == SCHEMA_VERSION and manifest["parent_version"] is None
    assert manifest["run"]["tokens"]["total_tokens"] == 1234
    assert manifest["validation"]["passed"] is True
    assert manifest["tool"]["name"] == "personafoundry" and manifest["created_at"].endswith("Z")
    assert not any(p.name.startswith(".tmp-") for p in release.parent.iterdir())


def test_manifest_holds_no_secrets(release: Path) -> None:
    text = (release / "manifest.json").read_text()
    assert "sk-secret" not in text and "hunter2" not in text and "key=abc" not in text
    generator = json.loads(text)["config"]["llm"]["generator"]
    assert generator["base_url"] == "https://llm.example:8443/v1"
    assert generator["api_key"] == "<redacted>"
    assert generator["api_key_env"] == "OPENAI_API_KEY"  # a variable name, not a secret


def test_duckdb_views_read_the_release_back(release: Path) -> None:
    con = connect_release(release)
    tables = synthetic_tables()
    for name, table in tables.items():
        assert con.execute(f"SELECT count(*) FROM {name}").fetchone()[0] == table.num_rows
    pairs = query_release(
        release,
        "SELECT a.state AS state_a, b.state AS state_b, count(*) AS n FROM conversations c "
        "JOIN personas a ON a.persona_id = c.persona_ids[1] "
        "JOIN personas b ON b.persona_id = c.persona_ids[2] GROUP BY ALL",
    )
    assert sum(pairs["n"].to_pylist()) == tables["conversations"].num_rows
    assert query_release(release, "SELECT * FROM documents").num_rows == 10


def test_views_sql_works_from_the_release_folder(release: Path) -> None:
    import duckdb

    cwd = os.getcwd()
    os.chdir(release)
    try:
        con = duckdb.connect()
        con.execute((release / "views.sql").read_text())
        assert con.execute("SELECT count(*) FROM reviews").fetchone()[0] == 48
    finally:
        os.chdir(cwd)


def test_bad_query_is_a_clear_error(release: Path) -> None:
    with pytest.raises(PersonaFoundryError, match="query on .* failed"):
        query_release(release, "SELECT nope FROM personas")


def test_card_front_matter_parses_and_points_at_every_table(release: Path) -> None:
    text = (release / "README.md").read_text()
    assert text.startswith("---\n")
    meta = yaml.safe_load(text.split("---\n")[1])
    configs = {c["config_name"]: c["data_files"][0]["path"] for c in meta["configs"]}
    assert set(configs) == set(synthetic_tables())
    assert all((release / path).is_file() for path in configs.values())
    assert meta["pretty_name"] == "demo 1.0.0"
    assert "| `persona_ids` | `list<string>` | no |" in text  # column tables from schemas/
    assert "consistency" in text  # critic summary by expert


def test_card_loads_with_hf_datasets(
    release: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    datasets = pytest.importorskip("datasets")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    cache = str(tmp_path / "hf")
    convs = datasets.load_dataset(str(release), "conversations", split="train", cache_dir=cache)
    assert convs.num_rows == 6 and "turns" in convs.features
    docs = datasets.load_dataset(
        "parquet",
        data_files=str(release / "data/documents.parquet"),
        split="train",
        cache_dir=cache,
    )
    assert docs.num_rows == 10


def test_verify_passes_on_an_untouched_release(release: Path) -> None:
    result = verify_release(release)
    files = [p for p in release.rglob("*") if p.is_file()]
    assert result.ok and result.checked == len(files) - 1  # every file but SHA256SUMS


def test_verify_catches_a_flipped_byte_a_missing_and_an_extra_file(
    release: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    data = bytearray((copy / "data/personas.parquet").read_bytes())
    data[len(data) // 2] ^= 0x01
    (copy / "data/personas.parquet").write_bytes(bytes(data))
    (copy / "views.sql").unlink()
    (copy / "notes.txt").write_text("added later")
    result = verify_release(copy)
    assert not result.ok
    assert result.changed == ["data/personas.parquet"]
    assert result.missing == ["views.sql"]
    assert result.extra == ["notes.txt"]


def test_verify_catches_an_edited_manifest(release: Path, tmp_path: Path) -> None:
    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    manifest["tables"]["personas"]["rows"] = 9
    (copy / "manifest.json").write_text(json.dumps(manifest))
    assert verify_release(copy).changed == ["manifest.json"]


def test_existing_version_is_never_overwritten(tmp_path: Path) -> None:
    first = cut(tmp_path)
    before = (first.path / "manifest.json").read_bytes()
    smaller = synthetic_tables(n_personas=4, n_conversations=2, n_documents=4, n_probes=2)
    with pytest.raises(ReleaseExistsError, match=r"release demo 1.0.0 already exists .*bump"):
        cut(tmp_path, tables=smaller)
    assert (first.path / "manifest.json").read_bytes() == before
    assert verify_release(first.path).ok


def test_concurrent_cuts_of_one_version_have_exactly_one_winner(tmp_path: Path) -> None:
    barrier = threading.Barrier(2)
    outcomes: list[Any] = []

    def attempt(seed: int) -> None:
        tables = synthetic_tables(seed=seed)
        barrier.wait()
        try:
            outcomes.append(cut(tmp_path, tables=tables))
        except ReleaseExistsError as err:
            outcomes.append(err)

    threads = [threading.Thread(target=attempt, args=(s,)) for s in (1, 2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    winners = [o for o in outcomes if not isinstance(o, Exception)]
    assert len(winners) == 1 and len(outcomes) == 2
    assert verify_release(winners[0].path).ok
    assert sorted(p.name for p in (tmp_path / "demo").iterdir()) == ["1.0.0"]  # no temp left


def test_publish_race_lets_the_first_rename_win(tmp_path: Path) -> None:
    """Both cuts passed the existence check: the atomic rename still picks one winner."""
    final = tmp_path / "demo" / "1.0.0"
    tmps = [tmp_path / "demo" / f".tmp-{i}" for i in range(2)]
    for i, tmp in enumerate(tmps):
        tmp.mkdir(parents=True)
        (tmp / "manifest.json").write_text(str(i))
    _publish(tmps[0], final, "demo", "1.0.0")
    with pytest.raises(ReleaseExistsError, match="published concurrently"):
        _publish(tmps[1], final, "demo", "1.0.0")
    assert (final / "manifest.json").read_text() == "0"


def test_invalid_tables_write_nothing(tmp_path: Path) -> None:
    tables = synthetic_tables()
    tables["probes"] = tables["probes"].set_column(
        6, "kind", pa.array(["direct", "trick", "direct", "direct", "direct", "direct"])
    )
    with pytest.raises(ValidationFailed, match="table probes: expect_column_values_to_be_in_set"):
        cut(tmp_path, tables=tables)
    assert not (tmp_path / "demo").exists()  # validation runs before any write


def saved_validation(tables: dict[str, pa.Table]) -> ValidationReport:
    """The validate stage's report of `tables` under CONFIG, as read back from its JSON file."""
    cfg = ValidateConfig.model_validate(CONFIG["validate"])
    report = validate_tables(tables, cfg)
    return ValidationReport.from_json(json.loads(json.dumps(report.to_json(), default=str)))


def test_a_report_of_the_same_tables_is_reused_and_the_release_is_the_same(
    release: Path, tmp_path: Path
) -> None:
    reused = cut(tmp_path, validation=saved_validation(synthetic_tables()))
    fresh = json.loads((release / "manifest.json").read_text())
    assert reused.manifest["validation"] == {**fresh["validation"], "reused": True}
    assert fresh["validation"]["reused"] is False and reused.stats["validation_reused"] == 1
    for rel in ("data/personas.parquet", "data/conversations.parquet", "views.sql"):
        assert reused.manifest["files"][rel] == fresh["files"][rel]  # the same bytes
    results = json.loads((reused.path / "validation/results.json").read_text())
    assert results["passed"] and results["fingerprint"] == fresh["validation"]["fingerprint"]


def test_a_report_of_other_tables_or_settings_is_not_reused(tmp_path: Path) -> None:
    validation = saved_validation(synthetic_tables())
    tables = synthetic_tables()
    tables["probes"] = tables["probes"].set_column(
        6, "kind", pa.array(["direct", "trick", "direct", "direct", "direct", "direct"])
    )
    with pytest.raises(ValidationFailed, match="table probes: expect_column_values_to_be_in_set"):
        cut(tmp_path, tables=tables, validation=validation)  # changed after its validation
    assert not (tmp_path / "demo").exists()
    stricter = ValidateConfig.model_validate({**CONFIG["validate"], "max_examples": 3})
    result = cut(tmp_path, validation=validation, validate_cfg=stricter)
    assert result.manifest["validation"]["reused"] is False
    assert result.stats["validation_reused"] == 0


@pytest.mark.parametrize(
    ("name", "version"),
    [("../escape", "1.0.0"), ("Demo", "1.0.0"), ("demo/x", "1.0.0"), ("demo", "1.0"),
     ("demo", "../1.0.0"), ("demo", "01.0.0"), ("", "1.0.0")],
)  # fmt: skip
def test_names_and_versions_are_validated(tmp_path: Path, name: str, version: str) -> None:
    with pytest.raises(PersonaFoundryError, match="release (name|version)"):
        cut_release({}, root=tmp_path, name=name, version=version, config={}, run_info={})
    assert list(tmp_path.iterdir()) == []


def test_extra_files_are_written_hashed_and_confined(tmp_path: Path) -> None:
    result = cut(tmp_path, extra_files={"dedup/index.json": "{}", "notes.md": b"hello"})
    assert (result.path / "dedup/index.json").read_text() == "{}"
    assert "notes.md" in result.manifest["files"]
    with pytest.raises(PersonaFoundryError, match="extra release file"):
        cut(tmp_path, version="1.0.1", extra_files={"../outside.txt": "x"})
    assert not (tmp_path / "demo" / "outside.txt").exists()


def test_parent_version_list_resolve_and_diff(tmp_path: Path) -> None:
    cut(tmp_path, "1.0.0")
    bigger = synthetic_tables(n_personas=10, n_conversations=8, n_documents=10, n_probes=6)
    second = cut(tmp_path, "1.1.0", tables=bigger)
    assert second.manifest["parent_version"] == "1.0.0"
    listed = list_releases(tmp_path)
    assert [(r["name"], r["version"]) for r in listed] == [("demo", "1.0.0"), ("demo", "1.1.0")]
    assert resolve_release(tmp_path, "demo") == second.path
    assert resolve_release(tmp_path, "demo@1.0.0") == tmp_path / "demo" / "1.0.0"
    with pytest.raises(PersonaFoundryError, match="known: \\['1.0.0', '1.1.0'\\]"):
        resolve_release(tmp_path, "demo@2.0.0")
    diff = diff_releases(tmp_path / "demo" / "1.0.0", second.path)
    assert diff["tables"]["personas"] == {"rows_a": 8, "rows_b": 10, "added": 2, "removed": 0}
    assert diff["tables"]["conversations"]["added"] == 2
    assert diff["tables"]["documents"] == {"rows_a": 10, "rows_b": 10, "added": 0, "removed": 0}
    assert diff["metrics"]["rows.personas"] == [8, 10]
    assert diff["schema"] == {}


def test_diff_reports_removed_tables_and_schema_changes(release: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    copy = tmp_path / "copy"
    shutil.copytree(release, copy)
    manifest = json.loads((copy / "manifest.json").read_text())
    del manifest["tables"]["duplicates"]
    (copy / "manifest.json").write_text(json.dumps(manifest))
    probes = pq.read_table(copy / "data/probes.parquet").drop_columns(["answer"])
    pq.write_table(
        probes.append_column("difficulty", pa.array([1] * 6)), copy / "data/probes.parquet"
    )
    diff = diff_releases(release, copy)
    assert diff["tables"]["duplicates"]["status"] == "removed"
    assert diff["schema"]["probes"] == {
        "added_columns": ["difficulty"], "removed_columns": ["answer"], "retyped": {}
    }  # fmt: skip


def _cli(*args: str) -> Any:
    from typer.testing import CliRunner

    from personafoundry.cli_release import release_app

    return CliRunner().invoke(release_app, list(args), catch_exceptions=True)


def test_cli_cut_from_a_run_folder_then_list_verify_query_diff(tmp_path: Path) -> None:
    from personafoundry.checkpoint import RunStore
    from personafoundry.config import RunConfig

    t = synthetic_tables()
    store = RunStore.open(tmp_path / "outputs", "run-test")
    store.write_shard("personas", 0, "fp", {"table": t["personas"], "reviews": t["reviews"]}, {})
    store.write_shard("conversations", 0, "fp", {"table": t["conversations"]}, {})
    store.write_shard("documents", 0, "fp", {"table": t["documents"]}, {})
    store.write_shard("documents_dedup", 0, "fp", {"dropped": t["duplicates"]}, {})
    store.write_shard("probes", 0, "fp", {"table": t["probes"]}, {})
    config = RunConfig(output_dir=str(tmp_path / "outputs")).model_dump(mode="json", by_alias=True)
    store.write_json("config.json", {"config": config})
    root = str(tmp_path / "outputs" / "releases")

    cut_1 = _cli("cut", "--name", "demo", "--version", "0.1.0", "--from", str(store.root))
    assert cut_1.exit_code == 0, cut_1.output
    assert "released demo 0.1.0" in cut_1.output
    assert "validation_reused=0" in cut_1.output  # no report offered: validated from scratch
    again = _cli("cut", "--name", "demo", "--version", "0.1.0", "--from", str(store.root))
    assert isinstance(again.exception, ReleaseExistsError)
    cut_2 = _cli("cut", "--name", "demo", "--version", "0.2.0", "--from", str(store.root),
                 "--set", "release.row_group_bytes=4096")  # fmt: skip
    assert cut_2.exit_code == 0, cut_2.output

    listed = _cli("list", "--root", root)
    assert "0.1.0" in listed.output and "0.2.0" in listed.output
    assert "ok" in _cli("verify", "demo", "--root", root).output
    query = _cli("query", "demo@0.1.0", "SELECT count(*) AS n FROM personas", "--root", root,
                 "--format", "csv")  # fmt: skip
    assert query.exit_code == 0 and query.output.splitlines()[-2:] == ['"n"', "8"]
    as_json = _cli("query", "demo", "SELECT kind FROM probes LIMIT 1", "--root", root, "-f", "json")
    assert json.loads(as_json.output) == [{"kind": "direct"}]
    diff = _cli("diff", "demo@0.2.0", "--root", root, "--json")  # vs its parent
    assert json.loads(diff.output)["a"] == "demo@0.1.0"

    tampered = tmp_path / "outputs" / "releases" / "demo" / "0.2.0" / "views.sql"
    tampered.write_text("-- changed\n")
    failed = _cli("verify", "demo@0.2.0", "--root", root)
    assert isinstance(failed.exception, PersonaFoundryError)
    assert "changed: views.sql" in str(failed.exception)


def test_fallback_shell_runs_statements_and_survives_errors(release: Path, capsys: Any) -> None:
    from personafoundry.cli_release import run_statements

    con = connect_release(release)
    run_statements(con, ["SELECT count(*) AS n", "FROM personas;", "SELECT nope;", "CREATE TABLE x AS SELECT 1;", ".quit", "SELECT 2;"])  # fmt: skip
    printed = capsys.readouterr().out
    assert "8" in printed and "nope" in printed


def test_example_research_queries_run_on_a_release(release: Path) -> None:
    from personafoundry.catalog import EXAMPLE_QUERIES

    results = {name: query_release(release, sql) for name, sql in EXAMPLE_QUERIES.items()}
    assert len(results) == 5 and all(r.num_rows > 0 for r in results.values())
    pass_rate = results["critic pass rate by expert and round"]
    assert sum(pass_rate["reviews"].to_pylist()) == 48
    by_category = results["documents per fact category"]
    assert sum(by_category["documents"].to_pylist()) == 10  # each document reveals one fact

"""Config loading: TOML + overrides, clear errors that name the key and the file."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from personafoundry.config import RunConfig, load_config, parse_override
from personafoundry.errors import ConfigError
from personafoundry.paths import CONFIGS_DIR


def test_demo_config_loads_and_is_frozen():
    cfg = load_config(CONFIGS_DIR / "demo.toml")
    assert isinstance(cfg, RunConfig)
    assert cfg.llm.generator.base_url is None  # the embedded model by default
    with pytest.raises(ValidationError, match="frozen"):
        cfg.seed = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "path", "value"),
    [
        ("dedup.threshold=0.8", ["dedup", "threshold"], 0.8),
        ("seed=3", ["seed"], 3),
        ("release.version=1.2.0", ["release", "version"], "1.2.0"),
        ('personas.seed_files=["a.txt"]', ["personas", "seed_files"], ["a.txt"]),
        ("personas.enrich=false", ["personas", "enrich"], False),
    ],
)
def test_override_values_are_parsed_as_toml_literals(text, path, value):
    assert parse_override(text) == (path, value)


def test_overrides_apply_on_top_of_file(tmp_path: Path):
    path = tmp_path / "run.toml"
    path.write_text("seed = 1\n[dedup]\nthreshold = 0.5\n")
    cfg = load_config(path, ["dedup.threshold=0.9", "llm.generator.max_concurrency=3"])
    assert cfg.seed == 1 and cfg.dedup.threshold == 0.9
    assert cfg.llm.generator.max_concurrency == 3


@pytest.mark.parametrize(
    ("toml", "overrides", "needle"),
    [
        ("[dedup]\nthreshhold = 0.5\n", [], "dedup.threshhold: unknown key"),
        ("seed = 'abc'\n", [], "seed:"),
        ("", ["llm.generator.max_concurrency=0"], "llm.generator.max_concurrency"),
        ("", ["nosuchsection.x=1"], "nosuchsection: unknown key"),
        ("seed = [\n", [], "not valid TOML"),
        ("", ["converse.target=-1"], "converse.target"),
        ("", ["converse.reserve_share=-0.5"], "converse.reserve_share"),
    ],
)
def test_bad_config_names_key_and_file(tmp_path: Path, toml, overrides, needle):
    path = tmp_path / "bad.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as err:
        load_config(path, overrides)
    assert needle in str(err.value)
    assert str(path) in str(err.value)


def test_missing_file_is_a_clear_error(tmp_path: Path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.toml")


def test_openai_env_fills_unset_endpoints(monkeypatch, tmp_path: Path):
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:9/v1")
    monkeypatch.setenv("OPENAI_MODEL", "gpt-x")
    path = tmp_path / "run.toml"
    path.write_text('[llm.critic]\nbase_url = "http://other/v1"\n')
    cfg = load_config(path)
    assert cfg.llm.generator.base_url == "http://127.0.0.1:9/v1"
    assert cfg.llm.generator.model == "gpt-x"
    assert cfg.llm.critic.base_url == "http://other/v1"


def test_config_hash_changes_with_content():
    a, b = load_config(None), load_config(None, ["seed=5"])
    assert a.config_hash() != b.config_hash()
    assert a.resolved_run_id() == load_config(None).resolved_run_id()


def test_embedded_endpoint_serialises_requests_and_waits_longer():
    from personafoundry.endpoints import EMBEDDED_TIMEOUT_S, resolve_embedded

    cfg = load_config(None, ["llm.generator.max_concurrency=16"])
    ep = resolve_embedded("generator", cfg.llm.generator, "http://127.0.0.1:1/v1", "m")
    assert ep.settings.max_concurrency == 1 and ep.settings.timeout_s == EMBEDDED_TIMEOUT_S
    assert ep.dialect == "llamacpp" and ep.identity.startswith("embedded:")
    explicit = load_config(None, ["llm.critic.timeout_s=30"])
    assert resolve_embedded("critic", explicit.llm.critic, "u", "m").settings.timeout_s == 30


def test_a_conversation_target_is_optional_and_set_like_any_key(tmp_path: Path):
    path = tmp_path / "run.toml"
    path.write_text("[converse]\nper_persona = 2\n")
    assert load_config(path).converse.target is None  # one conversation per planned pair
    cfg = load_config(path, ["converse.target=40", "converse.reserve_share=0.25"])
    assert (cfg.converse.target, cfg.converse.reserve_share) == (40, 0.25)

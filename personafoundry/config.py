"""One typed run configuration, loaded from TOML with `--set a.b=value` overrides.

Decisions:
- pydantic v2 models, frozen and `extra="forbid"`: an unknown key or a wrong type is
  a `ConfigError` naming the dotted key and the file.
- Override values are parsed as TOML literals (`3`, `0.8`, `true`, `["a"]`), and fall
  back to a plain string, so `--set release.version=1.2.0` needs no quotes.
- An endpoint with no `base_url` means "the embedded model". `OPENAI_BASE_URL`,
  `OPENAI_API_KEY` and `OPENAI_MODEL` fill an endpoint left unset, at load time only
  (stages never read the environment); keys are read from the variable named by
  `api_key_env` when the client is built and are never stored.
"""

from __future__ import annotations

import hashlib
import json
import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from personafoundry.errors import ConfigError


class _Section(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class LlmEndpoint(_Section):
    """One OpenAI-compatible endpoint and how to talk to it."""

    base_url: str | None = Field(None, description="OpenAI-compatible URL; unset = embedded model")
    model: str | None = Field(None, description="model name sent to the endpoint")
    api_key_env: str = Field("OPENAI_API_KEY", description="env var holding the API key")
    dialect: Literal["auto", "openai", "llamacpp"] = Field(
        "auto", description="structured-output dialect; auto = llamacpp for the embedded model"
    )
    max_concurrency: int = Field(8, ge=1, le=4096, description="max requests in flight")
    timeout_s: float = Field(120.0, gt=0, description="per-request timeout")
    max_retries: int = Field(4, ge=0, le=20, description="transport retries (429/5xx/timeout)")
    reply_retries: int = Field(2, ge=0, le=10, description="re-asks after an invalid reply")
    backoff_base_s: float = Field(0.5, ge=0, description="first backoff delay; doubles, jittered")
    backoff_max_s: float = Field(30.0, ge=0, description="longest backoff delay")
    breaker_failures: int = Field(
        8, ge=1, description="consecutive requests failing all retries before the run stops"
    )
    temperature: float = Field(0.7, ge=0, le=2)
    max_tokens: int = Field(600, ge=1)


class Price(_Section):
    """USD per 1,000 tokens for one model."""

    prompt_per_1k: float = Field(0.0, ge=0)
    completion_per_1k: float = Field(0.0, ge=0)


class Budget(_Section):
    """Hard caps per run; reaching one stops the run cleanly and resumably."""

    max_tokens: int | None = Field(None, ge=1, description="prompt + completion tokens")
    max_cost_usd: float | None = Field(None, ge=0)


class LlmConfig(_Section):
    generator: LlmEndpoint = LlmEndpoint()
    critic: LlmEndpoint = LlmEndpoint(temperature=0.0, max_tokens=300)
    cache_path: str | None = Field(
        None, description="SQLite response cache; default <output_dir>/cache/responses.sqlite"
    )
    prices: dict[str, Price] = Field(default_factory=dict, description="model name -> price")
    budget: Budget = Budget()


class EmbeddedConfig(_Section):
    """The local llama.cpp server started when an endpoint has no base_url."""

    n_threads: int | None = Field(None, ge=1, description="default: all cores")
    n_ctx: int = Field(4096, ge=512)
    startup_timeout_s: float = Field(180.0, gt=0)
    model_alias: str = "qwen2.5-coder-0.5b-instruct"


class PersonasConfig(_Section):
    census_count: int = Field(6, ge=0, description="census-sampled personas")
    seed_files: list[str] = Field(default_factory=list, description="seed persona files")
    seed_strict: bool = Field(True, description="bad seed rows stop the run; false = skip+count")
    seed_columns: dict[str, str] = Field(
        default_factory=dict, description="persona field -> column name in seed files"
    )
    census_states: list[str] = Field(default_factory=list, description="condition: only these")
    census_age_min: int = Field(0, ge=0, le=120, description="condition: youngest age")
    census_age_max: int = Field(120, ge=0, le=120, description="condition: oldest age")
    census_reweight: dict[str, dict[str, float]] = Field(
        default_factory=dict,
        description="oversample: attribute -> category -> weight (e.g. race_ethnicity)",
    )
    enrich: bool = True
    max_rounds: int = Field(2, ge=1, description="generator attempts per persona")
    facts_min: int = Field(10, ge=1, le=30, description="generated facts per persona, at least")
    facts_max: int = Field(14, ge=1, le=30, description="generated facts per persona, at most")
    llm_judges: bool = Field(
        True, description="run the coherence/realism LLM judges after the deterministic gates"
    )

    @model_validator(mode="after")
    def _facts_range(self) -> PersonasConfig:
        if self.facts_min > self.facts_max:
            raise ValueError(f"facts_min {self.facts_min} > facts_max {self.facts_max}; swap them")
        return self


class ConverseConfig(_Section):
    """Pairing, generation and the critic mixture of the conversations stage."""

    per_persona: int = Field(
        1, ge=0, description="conversations each persona appears in (without a target)"
    )
    target: int | None = Field(
        None,
        ge=0,
        description="accepted conversations wanted; unset = one requested per planned pair "
        "(per_persona x personas / 2)",
    )
    reserve_share: float = Field(
        0.5,
        ge=0,
        le=10,
        description="with a target: reserve pairs planned, as a share of the target "
        "(ceil(target x (1 + reserve_share)) pairs); reserves never needed cost no calls",
    )
    pairing: Literal["random", "similar", "contrasting", "same_state"] = Field(
        "random", description="who talks to whom: similar = shared fact categories"
    )
    allow_repeat_pairs: bool = Field(False, description="may the same two personas meet twice")
    scenarios: list[str] = Field(default_factory=list, description="scenario ids; empty = all")
    turns_min: int = Field(4, ge=2)
    turns_max: int = Field(8, ge=2)
    max_turn_words: int = Field(60, ge=5, description="longer turns are run-on")
    facts_per_speaker: int = Field(2, ge=0, description="facts each speaker is asked to reveal")
    min_facts_used: int = Field(1, ge=0, description="facts each speaker must reveal")
    language: str = Field("en", description="expected language (ISO 639-1; en checked)")
    max_rounds: int = Field(3, ge=1, description="generate + revise rounds per attempt")
    max_attempts: int = Field(
        1, ge=1, description="fresh drafts per pair once max_rounds fail (the attempt cap)"
    )
    mode: Literal["one_call", "turn_by_turn"] = Field(
        "one_call",
        description="generator: every turn in one call, or one call per speaker turn; "
        "one_call is the measured default (benchmarks/converse.py on the embedded model, "
        "6 pairs x 3 rounds per mode: both 0/6 accepted; one_call 660 tokens and 1.9 failed "
        "experts per draft vs 1,488 and 3.5 for turn_by_turn)",
    )
    judges: Literal["combined", "separate", "none"] = Field(
        "combined", description="LLM judges: one call for all, one call each, or off"
    )
    acceptance: Literal["all_pass", "weighted"] = Field(
        "all_pass", description="all experts pass, or gates pass + weighted judge mean"
    )
    accept_threshold: float = Field(3.0, ge=1, le=5, description="weighted mean to accept")
    weights: dict[str, float] = Field(default_factory=dict, description="judge -> weight (1)")
    exemplars_shown: int = Field(1, ge=0, description="few-shot exemplars per prompt")
    exemplar_pool: int = Field(6, ge=1, description="best accepted conversations kept")
    wave_size: int = Field(8, ge=1, description="conversations per exemplar-rotation wave")


class DocumentsConfig(_Section):
    """Private documents per persona (planner, generator-critic loop) and their probes."""

    per_persona: int = Field(2, ge=0, description="fact-revealing documents per persona")
    max_rounds: int = Field(3, ge=1, description="generate + revise rounds per attempt")
    max_attempts: int = Field(
        1, ge=1, description="fresh drafts per document once max_rounds fail (the attempt cap)"
    )
    accept_threshold: float = Field(3.0, ge=1, le=5, description="min score of each LLM judge")
    doc_types: list[str] = Field(default_factory=list, description="empty = whole catalog")
    catalog_path: str | None = Field(None, description="default: seeds/doc_types.toml")
    facts_per_doc: int = Field(2, ge=1, le=6, description="max facts one document reveals")
    cover_all: bool = Field(
        False, description="add documents until every non-held-out fact is planned once"
    )
    holdout_facts: int = Field(1, ge=0, description="facts per persona never revealed (negatives)")
    repeat_share: float = Field(0.3, ge=0, le=1, description="facts planned in a 2nd document")
    implied_share: float = Field(0.15, ge=0, le=1, description="facts only implied, not stated")
    distractors_per_persona: int = Field(0, ge=0, description="noise documents per persona")
    counterpart_share: float = Field(
        0.8, ge=0, le=1, description="optional-counterpart documents that name another persona"
    )
    timeline_end: str = Field("2024-12-31", pattern=r"^\d{4}-\d{2}-\d{2}$")
    timeline_days: int = Field(365, ge=7, description="per-persona timeline span")
    llm_judges: bool = Field(True, description="run the realism/faithfulness LLM judges")
    repair_totals: bool = Field(
        True, description="compute receipt totals from the items instead of trusting the model"
    )
    show_examples: bool = Field(
        False, description="show the catalog example in the prompt (small models copy it)"
    )
    negative_probes: int = Field(2, ge=0, description="negative probes per persona")


class DedupConfig(_Section):
    """Near-duplicate removal; defaults come from `benchmarks/dedup.py` (see docs/dedup.md)."""

    threshold: float = Field(
        0.5, gt=0, lt=1, description="Jaccard similarity at or above which items are duplicates"
    )
    shingle_size: int = Field(3, ge=1, le=16, description="word n-gram size")
    num_perm: int = Field(128, ge=16, le=1024, description="MinHash permutations")
    seed: int = Field(
        1,
        ge=0,
        description="MinHash permutation seed; fixed (not the run seed) so that "
        "indexes of different runs and releases stay comparable",
    )
    min_recall: float = Field(
        0.99, gt=0, lt=1, description="LSH bands: P(candidate) of a pair exactly at the threshold"
    )
    verify: Literal["exact", "estimated"] = Field(
        "exact", description="candidate check: exact shingle-set Jaccard or the MinHash estimate"
    )
    chunk_rows: int = Field(
        4096, ge=1, description="rows per signature chunk: bounds memory, stays in CPU cache"
    )
    workers: int = Field(2, ge=1, le=64, description="threads computing signature chunks")
    text_fields: dict[str, list[str]] = Field(
        default_factory=lambda: {
            "personas": ["narrative", "facts.statement"],
            "conversations": ["turns.text"],
            "documents": ["title", "body"],
        },
        description="columns compared per table; `a.b` = field b of list/struct column a",
    )


class ValidateConfig(_Section):
    census_tvd_max: float = Field(0.15, gt=0, le=1, description="max TVD vs census tables")
    census_min_rows: int = Field(
        200, ge=1, description="fewer census personas: TVD is noise, the gate is skipped"
    )
    conditioned: bool = Field(False, description="sample declared conditioned/reweighted")
    max_examples: int = Field(5, ge=1, le=100, description="offending rows shown per failure")


class ReleaseConfig(_Section):
    name: str = Field("personas-demo", pattern=r"^[a-z0-9][a-z0-9._-]*$")
    version: str = Field("0.1.0", pattern=r"^\d+\.\d+\.\d+$")
    parent_version: str | None = Field(
        None, pattern=r"^\d+\.\d+\.\d+$", description="default: latest earlier version"
    )
    row_group_bytes: int = Field(
        64 * 1024 * 1024, ge=1024, description="target uncompressed bytes per Parquet row group"
    )


class OrchestrationConfig(_Section):
    """Where shard tasks run; execution only, so it is left out of the config hash."""

    task_runner: Literal["threads", "dask"] = Field(
        "threads", description="threads = Prefect's thread pool here; dask = prefect-dask"
    )
    parallel_shards: int | None = Field(
        None,
        ge=1,
        le=1024,
        description="shards of a stage in flight at once; default: enough to keep the "
        "busiest endpoint's max_concurrency full",
    )
    dask_address: str = Field(
        "", description="Dask scheduler (tcp://host:8786); empty = a LocalCluster here"
    )
    dask_workers: int = Field(2, ge=1, le=256, description="LocalCluster worker processes")


class RunConfig(_Section):
    """The whole run: one object, passed to flows as their single parameter."""

    seed: int = 0
    run_id: str | None = Field(None, description="default: derived from the config hash")
    output_dir: str = "outputs"
    shard_size: int = Field(8, ge=1, description="items per Prefect task")
    llm: LlmConfig = LlmConfig()
    embedded: EmbeddedConfig = EmbeddedConfig()
    personas: PersonasConfig = PersonasConfig()
    converse: ConverseConfig = ConverseConfig()
    documents: DocumentsConfig = DocumentsConfig()
    dedup: DedupConfig = DedupConfig()
    validate_: ValidateConfig = Field(ValidateConfig(), alias="validate")
    release: ReleaseConfig = ReleaseConfig()
    orchestration: OrchestrationConfig = OrchestrationConfig()

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    def config_hash(self) -> str:
        """SHA-256 of the canonical config; recorded in run folders and manifests.

        `orchestration` is left out: where shards run does not change a row, so a run moved
        from threads to a Dask cluster keeps its run id and resumes its own checkpoints.
        """
        data = self.model_dump(mode="json", by_alias=True, exclude={"orchestration"})
        text = json.dumps(data, sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()

    def resolved_run_id(self) -> str:
        return self.run_id or f"run-{self.config_hash()[:12]}"


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `a.b=value` into its key path and a TOML-typed value."""
    key, sep, raw = text.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {text!r} is not KEY=VALUE; write e.g. dedup.threshold=0.8.")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    return key.strip().split("."), value


def apply_override(data: dict[str, Any], path: list[str], value: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"override {'.'.join(path)}: {part!r} is not a section.")
    node[path[-1]] = value


def _fill_from_env(data: dict[str, Any]) -> None:
    """OPENAI_BASE_URL / OPENAI_MODEL fill endpoints the file leaves unset."""
    base_url, model = os.environ.get("OPENAI_BASE_URL"), os.environ.get("OPENAI_MODEL")
    if not base_url:
        return
    llm = data.setdefault("llm", {})
    for role in ("generator", "critic"):
        endpoint = llm.setdefault(role, {})
        if not endpoint.get("base_url"):
            endpoint["base_url"] = base_url
            if model and not endpoint.get("model"):
                endpoint["model"] = model


def format_validation_error(err: ValidationError, source: str) -> str:
    """One line per problem: `file: key.path: message (got value)`."""
    lines = []
    for item in err.errors():
        loc = ".".join(str(p) for p in item["loc"]) or "(top level)"
        msg = item["msg"]
        if item["type"] == "extra_forbidden":
            msg = "unknown key; check the spelling against configs/demo.toml"
        got = item.get("input")
        suffix = "" if isinstance(got, dict) or got is None else f" (got {got!r})"
        lines.append(f"{source}: {loc}: {msg}{suffix}")
    return "\n".join(lines)


def build_config(data: dict[str, Any], source: str = "<config>") -> RunConfig:
    try:
        return RunConfig.model_validate(data)
    except ValidationError as err:
        raise ConfigError(format_validation_error(err, source)) from None


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> RunConfig:
    """Read a TOML config (or defaults), apply overrides and env fill-ins, validate."""
    data: dict[str, Any] = {}
    source = "<defaults>"
    if path is not None:
        source = str(path)
        try:
            data = tomllib.loads(Path(path).read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigError(f"config file {path} does not exist; pass an existing TOML file.")
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML ({err}); fix the syntax.") from None
    for text in overrides or []:
        apply_override(data, *parse_override(text))
    if overrides:
        source += " + --set"
    _fill_from_env(data)
    return build_config(data, source)

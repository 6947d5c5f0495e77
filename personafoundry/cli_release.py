"""`personafoundry release ...`: cut, list, verify, diff, query and open releases.

A release is named `NAME` (latest version) or `NAME@X.Y.Z`, looked up under
`--root` (default `outputs/releases`); a path to a release folder works everywhere too.
Errors are `PersonaFoundryError`s, which the main CLI turns into one red line and exit
code 2; a failed `verify` is such an error, so scripts can rely on the exit code.

`query_command` and `shell_command` are plain functions so the main CLI can also
register them at top level (`personafoundry query NAME "SQL"`).
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Annotated, Any

import duckdb
import typer
from rich.console import Console
from rich.table import Table

from personafoundry.errors import PersonaFoundryError

release_app = typer.Typer(help="Cut, list, verify, diff and query versioned releases.")
out = Console()

RootOpt = Annotated[Path, typer.Option("--root", help="Folder holding <name>/<version>/ releases.")]
DEFAULT_ROOT = Path("outputs/releases")


def locate(spec: str, root: Path) -> Path:
    """A release folder from `NAME[@VERSION]` under `root`, or a path to one."""
    from personafoundry.catalog import MANIFEST, resolve_release

    path = Path(spec)
    if (path / MANIFEST).is_file():
        return path
    return resolve_release(root, spec)


def _run_dir(run: str, output_dir: str) -> Path:
    path = Path(run)
    if path.is_dir():
        return path
    candidate = Path(output_dir) / "runs" / run
    if not candidate.is_dir():
        raise PersonaFoundryError(
            f"run {run!r} not found (looked for {candidate}); pass a run id or a run folder."
        )
    return candidate


@release_app.command("cut")
def cut_command(
    name: Annotated[str, typer.Option("--name", help="Release name, e.g. personas-us.")],
    version: Annotated[str, typer.Option("--version", help="Semantic version, e.g. 1.2.0.")],
    run: Annotated[
        str, typer.Option("--from", help="Run id under outputs/runs/, or a run folder.")
    ],
    root: Annotated[
        Path | None, typer.Option("--root", help="Default: <output_dir>/releases.")
    ] = None,
    set_: Annotated[
        list[str] | None, typer.Option("--set", "-s", help="Override the run's config key.")
    ] = None,
) -> None:
    """Validate a finished run's tables and publish them as NAME/VERSION (never overwrites)."""
    from flows.release import index_files, run_tables
    from personafoundry.checkpoint import RunStore
    from personafoundry.config import apply_override, build_config, parse_override
    from personafoundry.release import cut_release

    run_dir = _run_dir(run, "outputs")
    store = RunStore(run_dir)
    recorded = store.read_json("config.json") or {}
    data: dict[str, Any] = json.loads(json.dumps(recorded.get("config", {})))
    for text in set_ or []:
        apply_override(data, *parse_override(text))
    cfg = build_config(data, f"{run_dir}/config.json")
    if store.read_latest("personas_dedup", "personas") is None:
        raise PersonaFoundryError(f"run folder {run_dir} has no finished tables; run it first.")
    tables = run_tables(store)
    run_info = {"run_id": store.run_id, "config_sha256": cfg.config_hash()}
    run_info.update(store.read_json("run_info.json") or {})
    result = cut_release(
        tables,
        root=root or Path(cfg.output_dir) / "releases",
        name=name,
        version=version,
        config=cfg.model_dump(mode="json", by_alias=True),
        run_info=run_info,
        extra_files=index_files(store),
    )
    out.print(f"[green]released[/] {name} {version} at {result.path}")
    out.print(", ".join(f"{k}={v}" for k, v in result.stats.items()))


@release_app.command("list")
def list_command(root: RootOpt = DEFAULT_ROOT) -> None:
    """List published releases: name, version, parent, creation time and rows per table."""
    from personafoundry.catalog import list_releases

    releases = list_releases(root)
    if not releases:
        out.print(f"no releases under {root}")
        return
    table = Table("name", "version", "parent", "created", "rows")
    for r in releases:
        rows = " ".join(f"{t}={n}" for t, n in r["rows"].items())
        table.add_row(r["name"], r["version"], r["parent_version"] or "-", r["created_at"], rows)
    out.print(table)


@release_app.command("verify")
def verify_command(
    release: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or a release folder.")],
    root: RootOpt = DEFAULT_ROOT,
) -> None:
    """Re-hash every file against manifest.json; exit 2 and list differences if any."""
    from personafoundry.catalog import verify_release

    result = verify_release(locate(release, root))
    if not result.ok:
        problems = [f"changed: {p}" for p in result.changed]
        problems += [f"missing: {p}" for p in result.missing]
        problems += [f"not in manifest: {p}" for p in result.extra]
        raise PersonaFoundryError(
            f"release {result.path} does not match its manifest ({'; '.join(problems)}); "
            "restore it from a trusted copy."
        )
    out.print(f"[green]ok[/] {result.path}: {result.checked} files match manifest.json")


@release_app.command("diff")
def diff_command(
    a: Annotated[str, typer.Argument(help="Older release (NAME@VERSION or folder).")],
    b: Annotated[
        str | None, typer.Argument(help="Newer release; default: A vs its parent.")
    ] = None,
    root: RootOpt = DEFAULT_ROOT,
    as_json: Annotated[bool, typer.Option("--json", help="Print the diff as JSON.")] = False,
) -> None:
    """Rows added/removed per table (by id), schema, metric and report-figure changes.

    Report figures are the headline numbers of both versions' `report.json` (computed on
    the fly for a release cut before reports existed).
    """
    from personafoundry.catalog import diff_releases, read_manifest
    from personafoundry.report import diff_headlines, load_figures

    new = locate(b or a, root)
    if b is None:
        parent = read_manifest(new).get("parent_version")
        if not parent:
            raise PersonaFoundryError(f"release {new} has no parent version; name two releases.")
        old = new.parent / parent
    else:
        old = locate(a, root)
    diff = diff_releases(old, new)
    diff["report"] = diff_headlines(load_figures(old), load_figures(new))
    if as_json:
        typer.echo(json.dumps(diff, indent=2, default=str))
        return
    out.print(
        f"[bold]{diff['a']} -> {diff['b']}[/] (schema {' -> '.join(map(str, diff['schema_version']))})"
    )
    table = Table("table", "rows before", "rows after", "added", "removed")
    for name, t in diff["tables"].items():
        added = t.get("added", t.get("status", ""))
        table.add_row(
            name, str(t["rows_a"]), str(t["rows_b"]), str(added), str(t.get("removed", ""))
        )
    out.print(table)
    for name, changes in diff["schema"].items():
        out.print(f"schema {name}: {json.dumps(changes)}")
    for key, (before, after) in diff["metrics"].items():
        out.print(f"metric {key}: {before} -> {after}")
    _print_report_moves(diff["report"])


def _print_report_moves(moves: dict[str, list[Any]]) -> None:
    """The report's headline figures side by side, with the change where both are numbers."""
    table = Table("report figure", "before", "after", "change", title="dataset report")
    for key, (before, after) in moves.items():
        if before is None and after is None:
            continue
        numbers = all(isinstance(v, (int, float)) for v in (before, after))
        change = "" if before == after else "changed"
        if numbers and before != after:
            change = f"{after - before:+.4g}"
        table.add_row(key, _cell(before), _cell(after), change)
    out.print(table)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return f"{value:.4g}" if isinstance(value, float) else str(value)


def _print_table(result: Any, fmt: str) -> None:
    if fmt == "csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(result, sys.stdout.buffer)
    elif fmt == "json":
        typer.echo(json.dumps(result.to_pylist(), indent=1, default=str))
    else:
        table = Table(*result.column_names)
        for row in result.to_pylist():
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        out.print(table)


def query_command(
    release: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or a release folder.")],
    sql: Annotated[str, typer.Argument(help="SQL over the views personas, conversations, ...")],
    root: RootOpt = DEFAULT_ROOT,
    fmt: Annotated[str, typer.Option("--format", "-f", help="table, csv or json.")] = "table",
) -> None:
    """Run SQL over a release (one DuckDB view per table; latest version by default)."""
    from personafoundry.catalog import query_release

    if fmt not in ("table", "csv", "json"):
        raise PersonaFoundryError(f"--format {fmt!r} is not one of table, csv, json.")
    _print_table(query_release(locate(release, root), sql), fmt)


def shell_command(
    release: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or a release folder.")],
    root: RootOpt = DEFAULT_ROOT,
) -> None:
    """Open an interactive DuckDB session with the release's views ready.

    Uses the `duckdb` CLI when it is installed (run in the release folder with
    `views.sql`), otherwise a small SQL prompt: end statements with `;`, quit with `.quit`.
    """
    from personafoundry.catalog import connect_release

    path = locate(release, root)
    if shutil.which("duckdb"):
        raise typer.Exit(subprocess.call(["duckdb", "-init", "views.sql"], cwd=path))
    con = connect_release(path)
    views = ", ".join(r[0] for r in con.execute("SHOW TABLES").fetchall())
    out.print(f"{path}: views {views}; end statements with ';', quit with .quit")
    run_statements(con, _stdin_lines())


def _stdin_lines() -> Iterator[str]:
    while True:
        try:
            yield input("D ") if sys.stdin.isatty() else next(sys.stdin)
        except (EOFError, StopIteration):
            return


def run_statements(con: Any, lines: Iterable[str]) -> None:
    """The fallback shell: gather lines up to `;`, run them, print results and errors."""
    buffer = ""
    for line in lines:
        if line.strip() in (".quit", ".exit"):
            break
        buffer += line.rstrip("\n") + "\n"
        if not buffer.strip().endswith(";"):
            continue
        try:
            rel = con.sql(buffer)
            if rel is not None:
                _print_table(rel.to_arrow_table(), "table")
        except duckdb.Error as err:  # a bad statement must not end the session
            out.print(f"[red]{err}[/]", highlight=False)
        buffer = ""


release_app.command("query")(query_command)
release_app.command("shell")(shell_command)
release_app.command("open", hidden=True)(shell_command)

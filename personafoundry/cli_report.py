"""`personafoundry report NAME[@VERSION]`: regenerate a release's dataset report.

`NAME@VERSION` (or `NAME`, the latest version) is looked up under `--root` (default
`outputs/releases`, as for every `release` command); a path to a release folder works too.

A release is immutable (its files are checksummed in `manifest.json`), so the report is
rebuilt into `--out/<name>/<version>/` (default `outputs/reports/...`), never into the
release folder; the copy shipped in the release stays as it was cut. `--open` opens the
regenerated `report.html` with the `webbrowser` module.
"""

from __future__ import annotations

import webbrowser
from pathlib import Path
from typing import Annotated

import typer

from personafoundry.cli_release import DEFAULT_ROOT, RootOpt, locate


def report_command(
    release: Annotated[str, typer.Argument(help="NAME, NAME@VERSION or a release folder.")],
    root: RootOpt = DEFAULT_ROOT,
    out: Annotated[
        Path, typer.Option("--out", help="Folder for <name>/<version>/report.html etc.")
    ] = Path("outputs/reports"),
    open_: Annotated[bool, typer.Option("--open", help="Open report.html in a browser.")] = False,
) -> None:
    """Regenerate a release's dataset report (plots, report.html, report.json) outside it."""
    from personafoundry.report import REPORT_HTML, regenerate_report

    folder = regenerate_report(locate(release, root), out)
    html = (folder / REPORT_HTML).resolve()
    typer.echo(f"report {html}")
    if open_ and not webbrowser.open(html.as_uri()):
        typer.echo("no browser found; open the file above by hand", err=True)

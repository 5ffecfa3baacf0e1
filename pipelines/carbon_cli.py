"""`greenfm carbon ...`: carbon accounting across runs."""

from __future__ import annotations

from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

carbon_app = typer.Typer(add_completion=False, no_args_is_help=True, help="Carbon accounting across runs.")
console = Console(stderr=True)


@carbon_app.command()
def history(run_root: Path = typer.Argument(..., help="Folder of run directories (`greenfm run --out`).")) -> None:
    """Energy and CO2e per stage over the runs under RUN_ROOT: a table here, and carbon_history.svg (plot) and
    carbon_history.json written into RUN_ROOT."""
    from components.carbon.history import collect, write_history

    def fail(message: str) -> None:
        console.print(f"[red]error:[/] {message}", soft_wrap=True, highlight=False)
        raise typer.Exit(2)

    def show() -> None:
        if not run_root.is_dir():
            fail(f"{run_root}: no such folder")
        found = collect(run_root)
        for problem in found.skipped:
            console.print(f"[yellow]skipped[/] {problem}", soft_wrap=True, highlight=False)
        if not found.runs:
            fail(f"{run_root}: no readable carbon_statement.json in it or its run directories")
        table = Table(title=f"Carbon per stage over {len(found.runs)} run(s): Wh / g CO2e")
        table.add_column("run")
        for stage in found.stages:
            table.add_column(stage, justify="right")
        table.add_column("total", justify="right")
        table.add_column("embodied g", justify="right")
        for run in found.runs:
            cells = [
                f"{run.energy_kwh[s] * 1000:.3f} / {run.emissions_kg[s] * 1000:.3f}" if s in run.emissions_kg else "-"
                for s in found.stages
            ]
            total = f"{run.total_kwh * 1000:.3f} / {run.total_kg * 1000:.3f}"
            table.add_row(run.run, *cells, total, f"{run.embodied_kg * 1000:.4f}")
        Console(width=max(Console().width, 160)).print(table)  # a row per run: keep it readable when piped
        svg, data = write_history(found, run_root)
        console.print(f"plot: {svg}\ndata: {data} ({len(found.skipped)} statement(s) skipped)", highlight=False)

    show()

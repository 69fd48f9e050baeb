"""The ``greenroom`` command."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from greenroom import __version__

app = typer.Typer(help="Greenroom: an internal developer portal.", no_args_is_help=True,
                  add_completion=False)
catalog_app = typer.Typer(help="Catalog tools.", no_args_is_help=True)
db_app = typer.Typer(help="Database tools.", no_args_is_help=True)
app.add_typer(catalog_app, name="catalog")
app.add_typer(db_app, name="db")
search_app = typer.Typer(help="Search index tools.", no_args_is_help=True)
template_app = typer.Typer(help="Software template tools.", no_args_is_help=True)
app.add_typer(search_app, name="search")
app.add_typer(template_app, name="template")

ConfigOpt = Annotated[Optional[list[Path]], typer.Option(
    "--config", "-c", help="app-config.yaml; repeat to merge (later files win).")]

DEMO_DIR = Path(__file__).parent / "demo"


def _settings(config: list[Path] | None, overrides: dict | None = None):  # type: ignore[no-untyped-def]
    from greenroom.core.config import load_settings
    from greenroom.core.errors import ConfigError

    try:
        return load_settings(list(config or []), overrides=overrides)
    except ConfigError as e:
        typer.secho(f"configuration error: {e.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None


@app.command()
def serve(config: ConfigOpt = None,
          host: Annotated[Optional[str], typer.Option(help="Interface to bind (backend.listen.host).")] = None,
          port: Annotated[Optional[int], typer.Option(help="Port (backend.listen.port).")] = None,
          demo: Annotated[bool, typer.Option(help="Load the demo organisation; enables guest sign-in.")] = False,
          ) -> None:
    """Run the portal (default http://127.0.0.1:7007)."""
    import uvicorn

    overrides: dict = {}
    if demo:
        overrides = {"greenroom": {"demo": True}}
    settings = _settings(config, overrides)
    if host or port:
        listen = settings.backend.listen
        listen.host = host or listen.host
        listen.port = port or listen.port
    if demo:
        from greenroom.core.config import LocationSpec

        settings.catalog.locations.insert(
            0, LocationSpec(type="file", target=str(DEMO_DIR / "catalog-info.yaml")))
    from greenroom.app import create_app
    from greenroom.core.errors import GreenroomError

    try:
        application = create_app(settings)
    except GreenroomError as e:
        typer.secho(f"cannot start: {e.message}", fg=typer.colors.RED, err=True)
        raise typer.Exit(2) from None
    url = f"http://{settings.backend.listen.host}:{settings.backend.listen.port}"
    portal = application.state.portal
    typer.secho(f"Greenroom {__version__} on {url}", fg=typer.colors.GREEN, err=True)
    typer.echo(f"  data directory: {settings.home}", err=True)
    if settings.greenroom.demo:
        typer.echo(f"  demo mode: open {url} and choose 'Continue as guest'", err=True)
    typer.echo(f"  admin token (API and sign-in): {portal.auth.admin_token}", err=True)
    typer.echo(f"  e.g. curl -H 'Authorization: Bearer <token>' {url}/api/catalog/entities?limit=5",
               err=True)
    uvicorn.run(application, host=settings.backend.listen.host, port=settings.backend.listen.port,
                log_level="warning", access_log=False)


@catalog_app.command("validate")
def catalog_validate(paths: Annotated[list[Path], typer.Argument(help="catalog-info.yaml files or folders")]) -> None:
    """Check entity files; print FILE:LINE: kind:namespace/name: field: message for each problem."""
    from greenroom.catalog.service import validate_file

    files: list[Path] = []
    for p in paths:
        if p.is_dir():
            files.extend(sorted(x for x in p.rglob("*") if x.suffix in (".yaml", ".yml")))
        else:
            files.append(p)
    problems = 0
    checked = 0
    with typer.progressbar(files, label="validating", file=sys.stderr,
                           hidden=len(files) < 20) as bar:
        for f in bar:
            for p in validate_file(str(f)):
                problems += 1
                typer.echo(p.message)
            checked += 1
    typer.echo(f"{checked} file(s) checked, {problems} problem(s)", err=True)
    raise typer.Exit(1 if problems else 0)


@db_app.command("upgrade")
def db_upgrade(config: ConfigOpt = None) -> None:
    """Apply database migrations."""
    from greenroom.core import db

    settings = _settings(config)
    engine = db.make_engine(settings.database_url)
    db.upgrade(engine)
    typer.echo(f"database at {settings.backend.database.client} is up to date")


@search_app.command("reindex")
def search_reindex(config: ConfigOpt = None) -> None:
    """Rebuild the search index from the catalog (and docs, templates), with progress."""
    from rich.progress import Progress

    from greenroom.app import collators, create_app

    settings = _settings(config)
    application = create_app(settings, run_workers=False)
    portal = application.state.portal
    search = portal.services["search"]
    with Progress(transient=False) as progress:
        for collator in collators(portal):
            total = portal.services["catalog"].stats()["entities"] if collator.type == "software-catalog" else None
            task = progress.add_task(f"indexing {collator.type}", total=total)
            stats = search.reindex(collator, lambda n, t=task: progress.update(t, completed=n))
            progress.update(task, completed=stats.documents, total=stats.documents)
            typer.echo(f"{collator.type}: {stats}")


@template_app.command("lint")
def template_lint(paths: Annotated[list[Path], typer.Argument(help="template.yaml files or folders")]) -> None:
    """Check software templates: schema, actions, expressions, step and parameter references."""
    from greenroom.scaffolder.engine.lint import lint_template

    files: list[Path] = []
    for p in paths:
        files.extend(sorted(p.rglob("template.yaml")) if p.is_dir() else [p])
    problems = 0
    for f in files:
        for problem in lint_template(f):
            problems += 1
            typer.echo(str(problem))
    typer.echo(f"{len(files)} template(s) checked, {problems} problem(s)", err=True)
    raise typer.Exit(1 if problems else 0)


@app.command()
def version() -> None:
    """Print the version."""
    typer.echo(__version__)


def main() -> None:
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    app()

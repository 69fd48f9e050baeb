"""Typed configuration in the shape of Backstage's ``app-config.yaml``.

Files are merged in order (later files win, maps merge, lists are replaced), ``${VAR}`` is
substituted from the environment (``$${VAR}`` is a literal), and every field has a default, so no
file is needed at all. Errors name the file, the key and what was expected. Loaded once and passed
to ``create_app`` and constructors; never a global.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from greenroom.core.errors import ConfigError

DEFAULT_PORT = 7007


class _Section(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)


class AppSection(_Section):
    title: str = Field("Greenroom", description="Name shown in the page header and titles.")
    baseUrl: str = Field(
        "http://127.0.0.1:7007", description="Public URL of the web app; links in pages use it."
    )


class ListenSection(_Section):
    host: str = Field("127.0.0.1", description="Interface to bind. Default loopback only.")
    port: int = Field(DEFAULT_PORT, ge=0, le=65535, description="TCP port. Default 7007.")


class DatabaseSection(_Section):
    client: Literal["sqlite", "better-sqlite3", "pg"] = Field(
        "sqlite", description="`sqlite` (embedded, default) or `pg` (PostgreSQL, production)."
    )
    connection: str | None = Field(
        None,
        description="SQLite file path (default `$GREENROOM_HOME/greenroom.db`) or a PostgreSQL URL "
        "such as `postgresql://user@host:5432/db`.",
    )


class StaticTokenOptions(_Section):
    token: str = Field(min_length=8, description="Bearer token value; at least 8 characters.")
    subject: str = Field("external", description="Who the token acts as, shown in the audit trail.")


class ExternalAccess(_Section):
    type: Literal["static"] = "static"
    options: StaticTokenOptions


class AuthSection(_Section):
    externalAccess: list[ExternalAccess] = Field(
        default_factory=list, description="Static bearer tokens accepted on `/api/`."
    )


class ReadingAllow(_Section):
    host: str = Field(description="Host name (optionally `host:port`, or `*.example.com`).")
    paths: list[str] | None = Field(None, description="Path prefixes allowed on that host.")


class ReadingSection(_Section):
    allow: list[ReadingAllow] = Field(
        default_factory=list,
        description="Hosts that `url` locations and placeholders may be read from. "
        "The portal's own host is always allowed.",
    )
    allowFiles: list[str] = Field(
        default_factory=list,
        description="Folders under which `file` locations may be registered at run time (API and "
        "Register page); default none. Locations listed in `catalog.locations` are always read.",
    )


class BackendSection(_Section):
    baseUrl: str = Field("http://127.0.0.1:7007", description="Public URL of the backend.")
    listen: ListenSection = Field(default_factory=ListenSection)
    database: DatabaseSection = Field(default_factory=DatabaseSection)
    auth: AuthSection = Field(default_factory=AuthSection)
    reading: ReadingSection = Field(default_factory=ReadingSection)


class LocationSpec(_Section):
    type: Literal["file", "url"] = Field(description="`file` (a path) or `url`.")
    target: str = Field(min_length=1, description="Path (relative to the config file) or URL.")


class CatalogRule(_Section):
    allow: list[str] = Field(description="Entity kinds a location may emit.")


class CatalogSection(_Section):
    locations: list[LocationSpec] = Field(default_factory=list)
    rules: list[CatalogRule] = Field(
        default_factory=lambda: [
            CatalogRule(
                allow=[
                    "Component", "API", "Resource", "System", "Domain", "Group", "User",
                    "Location", "Template", "AiResource",
                ]
            )
        ],
        description="Kinds allowed from locations; default every built-in kind.",
    )
    refreshIntervalSeconds: float = Field(
        300, gt=0, description="How often every location is read again, in seconds."
    )
    processingLeaseSeconds: float = Field(
        120, gt=0, description="How long a claim on a location lasts before another worker may take it."
    )


class IntegrationHost(_Section):
    host: str
    token: str | None = None
    apiBaseUrl: str | None = None
    baseUrl: str | None = None


class IntegrationsSection(_Section):
    github: list[IntegrationHost] = Field(default_factory=list)
    gitlab: list[IntegrationHost] = Field(default_factory=list)


class GreenroomSection(_Section):
    home: str | None = Field(
        None, description="Data directory; default `$GREENROOM_HOME` or `~/.greenroom`."
    )
    demo: bool = Field(False, description="Load the demo organisation and enable guest sign-in.")
    logLevel: str = Field("info", description="Log level: debug, info, warning, error.")


class Settings(_Section):
    app: AppSection = Field(default_factory=AppSection)
    backend: BackendSection = Field(default_factory=BackendSection)
    catalog: CatalogSection = Field(default_factory=CatalogSection)
    integrations: IntegrationsSection = Field(default_factory=IntegrationsSection)
    greenroom: GreenroomSection = Field(default_factory=GreenroomSection)
    config_dir: Path = Field(default_factory=Path.cwd, exclude=True)

    @property
    def home(self) -> Path:
        raw = self.greenroom.home or os.environ.get("GREENROOM_HOME") or "~/.greenroom"
        return Path(raw).expanduser().resolve()

    @property
    def database_url(self) -> str:
        db = self.backend.database
        if db.client == "pg":
            if not db.connection:
                raise ConfigError("backend.database.connection: required when client is pg; "
                                  "set a URL such as postgresql://user@host:5432/db")
            url = db.connection
            for prefix in ("postgresql://", "postgres://"):
                if url.startswith(prefix):
                    return "postgresql+psycopg://" + url[len(prefix):]
            return url
        path = Path(db.connection).expanduser() if db.connection else self.home / "greenroom.db"
        if not path.is_absolute():
            path = (self.config_dir / path).resolve()
        return f"sqlite:///{path}"

    def resolve_path(self, target: str) -> Path:
        """A path from configuration, relative to the directory of the first config file."""
        p = Path(target).expanduser()
        return p if p.is_absolute() else (self.config_dir / p).resolve()


_VAR = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")


def _substitute(value: Any, file: str, key: str, env: dict[str, str]) -> Any:
    if isinstance(value, dict):
        return {k: _substitute(v, file, f"{key}.{k}" if key else str(k), env) for k, v in value.items()}
    if isinstance(value, list):
        return [_substitute(v, file, f"{key}[{i}]", env) for i, v in enumerate(value)]
    if not isinstance(value, str):
        return value

    def repl(m: re.Match[str]) -> str:
        if m.group(1):
            return "${" + m.group(2) + "}"
        name = m.group(2)
        if name not in env:
            raise ConfigError(
                f"{file}: {key}: environment variable {name} is not set; export it or change the value"
            )
        return env[name]

    return _VAR.sub(repl, value)


def _merge(base: dict[str, Any], top: dict[str, Any], origin: dict[str, str], file: str,
           prefix: str = "") -> dict[str, Any]:
    out = dict(base)
    for k, v in top.items():
        path = f"{prefix}.{k}" if prefix else str(k)
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = _merge(out[k], v, origin, file, path)
        else:
            out[k] = v
            origin[path] = file
    return out


def _origin_of(key: str, origin: dict[str, str]) -> str:
    while key:
        if key in origin:
            return origin[key]
        key = key.rpartition(".")[0]
    return next(iter(origin.values()), "<defaults>")


def load_settings(files: list[Path] | None = None, env: dict[str, str] | None = None,
                  overrides: dict[str, Any] | None = None) -> Settings:
    """Read, merge and validate configuration; raise ConfigError naming file, key and expectation."""
    env = dict(os.environ) if env is None else env
    merged: dict[str, Any] = {}
    origin: dict[str, str] = {}
    files = files or []
    for f in files:
        try:
            text = Path(f).read_text(encoding="utf-8")
        except OSError as e:
            raise ConfigError(f"{f}: cannot read configuration file: {e.strerror}") from None
        try:
            data = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f":{mark.line + 1}" if mark else ""
            raise ConfigError(f"{f}{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
        if data is None:
            continue
        if not isinstance(data, dict):
            raise ConfigError(f"{f}: the top level must be a map of sections (app, backend, catalog…)")
        merged = _merge(merged, _substitute(data, str(f), "", env), origin, str(f))
    if overrides:
        merged = _merge(merged, overrides, origin, "<command line>")
    config_dir = Path(files[0]).resolve().parent if files else Path.cwd()
    try:
        return Settings.model_validate({**merged, "config_dir": config_dir})
    except ValidationError as e:
        first = e.errors()[0]
        key = ".".join(
            f"[{p}]" if isinstance(p, int) else str(p) for p in first["loc"]
        ).replace(".[", "[")
        raise ConfigError(
            f"{_origin_of(key, origin)}: {key}: {first['msg']}"
            + (f" (got {first['input']!r})" if not isinstance(first.get("input"), dict) else "")
        ) from None

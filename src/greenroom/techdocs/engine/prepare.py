"""Prepare a docs project for an untrusted build: copy it, check it stays inside its folder, and
rewrite its MkDocs configuration to a safe subset.

Model: the *docs root* is the folder the ``backstage.io/techdocs-ref`` points at (it holds
``mkdocs.yml`` or ``mkdocs.yaml``). :func:`prepare_source` copies that folder into a private work
directory and returns the path of the rewritten config there; MkDocs only ever sees the copy, so a
build never writes into a checkout.

Invariants (each violation raises :class:`BuildRefused` naming the file and the fix):

* No symbolic link under the root resolves outside it, and the copy is bounded in files and bytes.
* ``docs_dir`` of the root config and of every monorepo ``!include``/``*include`` config resolves
  inside the root; every included file exists inside the root.
* The YAML is read with a *safe* loader. MkDocs itself loads with PyYAML's unsafe loader, where a
  ``!!python/object/apply`` tag runs code, so only the Python tags Backstage allows are kept,
  ``!ENV`` becomes its default (never the portal's environment), and the file is written back as
  plain data. Keys outside Backstage's allow list (``hooks``, ``extra_javascript``, …) are dropped
  with a warning, as are extension settings that run commands or fetch (``plantuml_cmd``, PlantUML
  servers, snippet base paths).
* ``techdocs-core`` is in ``plugins`` (added like techdocs-cli does); the theme's web fonts are off.
"""

from __future__ import annotations

import glob
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

CONFIG_NAMES = ("mkdocs.yml", "mkdocs.yaml")
INCLUDE = "!include "
WILDCARD_INCLUDE = "*include "
SKIP_DIRS = {".git", "node_modules", "site", "__pycache__", ".venv"}
MAX_FILES = 20_000
MAX_BYTES = 200 * 1024 * 1024

# From Backstage techdocs-node's allow lists (generate/helpers.ts).
ALLOWED_KEYS = (
    "site_name", "site_url", "site_description", "site_author", "repo_url", "repo_name", "edit_uri",
    "edit_uri_template", "docs_dir", "nav", "exclude_docs", "not_in_nav", "theme", "plugins",
    "markdown_extensions", "extra", "extra_css", "use_directory_urls", "strict", "copyright",
    "validation",
)
ALLOWED_THEME_KEYS = ("name", "font", "icon", "logo", "favicon", "language", "direction", "palette",
                      "features")
ALLOWED_PYTHON_TAGS = {
    "tag:yaml.org,2002:python/name:" + n for n in (
        "pymdownx.emoji.emojione", "pymdownx.emoji.gemoji", "pymdownx.emoji.twemoji",
        "materialx.emoji.twemoji", "material.extensions.emoji.twemoji", "pymdownx.emoji.to_alt",
        "pymdownx.emoji.to_png", "pymdownx.emoji.to_png_sprite", "pymdownx.emoji.to_svg",
        "pymdownx.emoji.to_svg_sprite", "materialx.emoji.to_svg", "material.extensions.emoji.to_svg",
        "pymdownx.superfences.fence_code_format", "pymdownx.superfences.fence_div_format",
    )
} | {"tag:yaml.org,2002:python/object/apply:pymdownx.slugs.slugify"}
# Extension settings that make the build run a program, read outside the tree or fetch a URL.
DANGEROUS_EXTENSION_KEYS = {
    "plantuml_markdown": {"plantuml_cmd", "server", "kroki_server", "base_dir", "config",
                          "puml_notheme_cmdlist", "http_method", "insecure"},
    "pymdownx.snippets": {"base_path", "url_download", "url_request_headers", "check_paths",
                          "restrict_base_path", "auto_append"},
}


class BuildRefused(Exception):
    """The docs project cannot be built as given; ``message`` names the file and the fix."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


@dataclass(frozen=True)
class PythonTag:
    """An allowed Python YAML tag, kept verbatim so MkDocs resolves it."""

    tag: str
    value: Any


@dataclass
class Prepared:
    config_file: Path
    work_root: Path
    site_name: str
    warnings: list[str] = field(default_factory=list)


class _SafeLoader(yaml.SafeLoader):
    pass


def _python_tag(loader: _SafeLoader, suffix: str, node: yaml.Node) -> PythonTag:
    tag = "tag:yaml.org,2002:python/" + suffix
    if tag not in ALLOWED_PYTHON_TAGS:
        raise BuildRefused(f"unsupported Python YAML tag '!!python/{suffix}' at line "
                           f"{node.start_mark.line + 1}; remove it (only emoji, superfences and "
                           "slugify tags are allowed)")
    if isinstance(node, yaml.SequenceNode):
        return PythonTag(tag, loader.construct_sequence(node, deep=True))
    if isinstance(node, yaml.MappingNode):
        return PythonTag(tag, loader.construct_mapping(node, deep=True))
    return PythonTag(tag, loader.construct_scalar(node))


def _env_tag(loader: _SafeLoader, node: yaml.Node) -> Any:
    # Never read the portal's environment: an !ENV value takes its declared default.
    if isinstance(node, yaml.SequenceNode) and len(node.value) > 1:
        return loader.construct_object(node.value[-1], deep=True)
    return None


def _unknown_tag(loader: _SafeLoader, suffix: str, node: yaml.Node) -> Any:
    raise BuildRefused(f"unsupported YAML tag '{node.tag}' at line {node.start_mark.line + 1}; "
                       "remove it or quote the value (monorepo includes are written '!include path')")


_SafeLoader.add_multi_constructor("tag:yaml.org,2002:python/", _python_tag)
_SafeLoader.add_constructor("!ENV", _env_tag)
_SafeLoader.add_multi_constructor("!", _unknown_tag)


class _Dumper(yaml.SafeDumper):
    pass


def _represent_tag(dumper: _Dumper, data: PythonTag) -> yaml.Node:
    if isinstance(data.value, list):
        return dumper.represent_sequence(data.tag, data.value)
    if isinstance(data.value, dict):
        return dumper.represent_mapping(data.tag, data.value)
    return dumper.represent_scalar(data.tag, str(data.value))


_Dumper.add_representer(PythonTag, _represent_tag)


def find_config(root: Path) -> Path:
    """The root's ``mkdocs.yml`` or ``mkdocs.yaml``; :class:`BuildRefused` if neither exists."""
    for name in CONFIG_NAMES:
        if (root / name).is_file():
            return root / name
    raise BuildRefused(f"{root}: no mkdocs.yml or mkdocs.yaml found; add one next to the docs/ "
                       "folder with at least `site_name:` and `plugins: [techdocs-core]`")


def _load(path: Path, root: Path) -> dict[str, Any]:
    rel = path.relative_to(root)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=_SafeLoader)
    except BuildRefused as e:
        raise BuildRefused(f"{rel}: {e.message}") from None
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f":{mark.line + 1}" if mark else ""
        raise BuildRefused(f"{rel}{where}: not valid YAML: {getattr(e, 'problem', e)}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise BuildRefused(f"{rel}: must be a map of MkDocs settings (site_name, nav, plugins…)")
    return data


def _inside(root: Path, candidate: Path) -> bool:
    try:
        candidate.resolve().relative_to(root.resolve())
        return True
    except ValueError:
        return False


def _check_tree(root: Path) -> None:
    files = 0
    size = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
        for name in dirnames + filenames:
            p = Path(dirpath) / name
            if p.is_symlink() and not _inside(root, p):
                raise BuildRefused(f"{p.relative_to(root)}: symbolic link points outside the docs "
                                   f"folder ({os.readlink(p)}); replace it with a copy of the file")
        for name in filenames:
            files += 1
            try:
                size += (Path(dirpath) / name).lstat().st_size
            except OSError:
                continue
        if files > MAX_FILES or size > MAX_BYTES:
            raise BuildRefused(f"{root}: docs folder too large (over {MAX_FILES} files or "
                               f"{MAX_BYTES >> 20} MB); point techdocs-ref at the docs folder only")


def _sanitize(cfg: dict[str, Any], rel: Path, warnings: list[str], *, top: bool) -> dict[str, Any]:
    dropped = [k for k in cfg if k not in ALLOWED_KEYS]
    if dropped:
        warnings.append(f"{rel}: removed unsupported settings: {', '.join(map(str, dropped))}")
    out = {k: cfg[k] for k in ALLOWED_KEYS if k in cfg}
    theme = out.get("theme")
    if isinstance(theme, str):
        theme = {"name": theme}
    if isinstance(theme, dict):
        out["theme"] = {k: v for k, v in theme.items() if k in ALLOWED_THEME_KEYS}
    elif top:
        out["theme"] = {"name": "material"}
    if top:
        # No web fonts from a font CDN: a portal page fetches from the portal only.
        out["theme"]["font"] = False
        plugins = out.get("plugins") or []
        if not isinstance(plugins, list):
            raise BuildRefused(f"{rel}: plugins: must be a list such as [techdocs-core]")
        names = [p if isinstance(p, str) else next(iter(p), None) for p in plugins
                 if isinstance(p, (str, dict))]
        if "techdocs-core" not in names:
            plugins = [*plugins, "techdocs-core"]
        out["plugins"] = plugins
    exts = out.get("markdown_extensions")
    if isinstance(exts, list):
        cleaned: list[Any] = []
        for ext in exts:
            if isinstance(ext, dict):
                ext = {name: _strip_ext(str(name), opts, rel, warnings) for name, opts in ext.items()}
            cleaned.append(ext)
        out["markdown_extensions"] = cleaned
    return out


def _strip_ext(name: str, opts: Any, rel: Path, warnings: list[str]) -> Any:
    bad = DANGEROUS_EXTENSION_KEYS.get(name)
    if not bad or not isinstance(opts, dict):
        return opts
    removed = sorted(k for k in opts if k in bad)
    if removed:
        warnings.append(f"{rel}: markdown_extensions.{name}: removed {', '.join(removed)}")
    return {k: v for k, v in opts.items() if k not in bad}


def _check_docs_dir(cfg: dict[str, Any], cfg_path: Path, root: Path) -> None:
    docs_dir = cfg.get("docs_dir", "docs")
    if not isinstance(docs_dir, str) or os.path.isabs(docs_dir) or not _inside(
        root, cfg_path.parent / docs_dir
    ):
        raise BuildRefused(f"{cfg_path.relative_to(root)}: docs_dir {docs_dir!r} is outside the docs "
                           "folder; use a relative path below the mkdocs.yml, such as docs")


def _includes(nav: Any) -> list[str]:
    found: list[str] = []
    if isinstance(nav, str) and nav.startswith((INCLUDE, WILDCARD_INCLUDE)):
        found.append(nav)
    elif isinstance(nav, list):
        for item in nav:
            found.extend(_includes(item))
    elif isinstance(nav, dict):
        for value in nav.values():
            found.extend(_includes(value))
    return found


def _rewrite(cfg_path: Path, root: Path, warnings: list[str], seen: set[Path], *, top: bool) -> dict[str, Any]:
    """Sanitize one config in the work copy, then every config its nav includes."""
    if cfg_path in seen:
        return {}
    seen.add(cfg_path)
    rel = cfg_path.relative_to(root)
    cfg = _sanitize(_load(cfg_path, root), rel, warnings, top=top)
    _check_docs_dir(cfg, cfg_path, root)
    for stmt in _includes(cfg.get("nav")):
        target = stmt.split(" ", 1)[1].strip()
        if os.path.isabs(target) or not _inside(root, Path(os.path.normpath(cfg_path.parent / target))):
            raise BuildRefused(f"{rel}: nav includes {target!r}, which is outside the docs "
                               "folder; include only files below the mkdocs.yml")
        if stmt.startswith(INCLUDE):
            matches = [cfg_path.parent / target]
        else:
            matches = [Path(m) for m in glob.glob(str(cfg_path.parent / target))]
        for m in matches:
            if not _inside(root, m):
                raise BuildRefused(f"{rel}: nav includes {target!r}, which is outside the docs "
                                   "folder; include only files below the mkdocs.yml")
            if not m.is_file():
                raise BuildRefused(f"{rel}: nav includes {target!r}, which does not exist; fix the "
                                   "path or remove the entry")
            _rewrite(m.resolve(), root, warnings, seen, top=False)
    cfg_path.write_text(yaml.dump(cfg, Dumper=_Dumper, sort_keys=False, allow_unicode=True),
                        encoding="utf-8")
    return cfg


def _ensure_index(cfg: dict[str, Any], cfg_path: Path, warnings: list[str]) -> None:
    """Like techdocs-cli: without docs/index.md, use docs/README.md or the root README.md."""
    docs = cfg_path.parent / str(cfg.get("docs_dir", "docs"))
    if (docs / "index.md").exists():
        return
    for candidate in (docs / "README.md", docs / "readme.md", cfg_path.parent / "README.md",
                      cfg_path.parent / "readme.md"):
        if candidate.is_file() and not candidate.is_symlink():
            docs.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(candidate, docs / "index.md")
            warnings.append(f"{docs.name}/index.md not found; used {candidate.name}")
            return
    warnings.append(f"{docs.name}/index.md not found and no README.md to use; the site has no home page")


def prepare_source(source_root: Path, work_dir: Path) -> Prepared:
    """Check ``source_root`` and copy it to ``work_dir/src`` with a safe config; see module doc."""
    root = source_root.resolve()
    if not root.is_dir():
        raise BuildRefused(f"{source_root}: docs folder does not exist")
    original = find_config(root)
    _check_tree(root)
    work_root = work_dir / "src"
    shutil.copytree(root, work_root, symlinks=True,
                    ignore=shutil.ignore_patterns(*SKIP_DIRS))
    config_file = work_root / original.name
    warnings: list[str] = []
    cfg = _rewrite(config_file, work_root, warnings, set(), top=True)
    _ensure_index(cfg, config_file, warnings)
    return Prepared(config_file=config_file, work_root=work_root,
                    site_name=str(cfg.get("site_name") or ""), warnings=warnings)

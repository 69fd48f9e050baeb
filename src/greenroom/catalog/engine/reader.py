"""Reading catalog locations: which targets may be read, reading them, and splitting into documents.

Model: a :class:`LocationSpec` is ``file:<absolute path>`` or ``url:<http(s) URL>``. A
:class:`ReadPolicy` is asked *before* any I/O: files must resolve (symlinks followed) inside a root
tree, URLs must be on an allowed host. Redirects are followed by hand so each hop is checked too.

Failure behaviour: :func:`read_text` and :func:`read_documents` raise ``NotAllowedError`` (policy),
``NotFoundError`` (missing file / HTTP 404) or ``InputError`` (too large, not UTF-8, bad YAML,
network failure); every message names the target and says what to do.
"""

from __future__ import annotations

import os
import posixpath
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import httpx

from greenroom.catalog.model import LocationSpec, RawDocument, ReadPolicy
from greenroom.core.errors import InputError, NotAllowedError, NotFoundError

from .yamlsafe import MAX_FILE_BYTES, parse_yaml_documents

HTTP_TIMEOUT_S = 10.0
MAX_REDIRECTS = 5


def _host_port(url: str) -> tuple[str, int | None, str]:
    try:
        parts = urlsplit(url)
    except ValueError as e:  # e.g. "Invalid IPv6 URL"
        raise InputError(f"{url}: not a valid URL ({e}); fix the URL") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise NotAllowedError(f"{url}: only absolute http(s) URLs can be read; give a full https:// URL")
    try:
        port = parts.port
    except ValueError:
        raise InputError(f"{url}: the port is not a number; fix the URL") from None
    return parts.hostname.lower(), port, parts.scheme


class DefaultReadPolicy:
    """Backstage's ``backend.reading.allow`` rules, plus a root tree for files.

    ``allowed_hosts`` entries are ``{"host": "example.com"}``, ``{"host": "example.com:8080"}`` or
    ``{"host": "*.example.com"}`` (any subdomain, not the bare domain), optionally with ``paths``
    (URL path prefixes). The portal's own host (``own_base_url``) is always allowed.
    """

    def __init__(self, allowed_hosts: Iterable[Mapping[str, Any]] = (), own_base_url: str | None = None) -> None:
        self._rules: list[tuple[str, int | None, list[str]]] = []
        for rule in allowed_hosts:
            host = str(rule.get("host", "")).strip().lower()
            if not host:
                continue
            port: int | None = None
            if ":" in host and not host.startswith("["):
                host, _, port_text = host.rpartition(":")
                port = int(port_text)
            self._rules.append((host, port, [str(p) for p in rule.get("paths", []) or []]))
        if own_base_url:
            own = urlsplit(own_base_url)
            if own.hostname:
                self._rules.append((own.hostname.lower(), own.port, []))

    def check_url(self, url: str) -> None:
        host, port, scheme = _host_port(url)
        effective_port = port or (443 if scheme == "https" else 80)
        path = urlsplit(url).path or "/"
        for rule_host, rule_port, paths in self._rules:
            if rule_host.startswith("*."):
                host_ok = host.endswith(rule_host[1:])
            else:
                host_ok = host == rule_host
            if not host_ok:
                continue
            if rule_port is not None and rule_port != effective_port:
                continue
            if paths and not any(posixpath.normpath(path).startswith(p) for p in paths):
                continue
            return
        raise NotAllowedError(
            f"Reading from {url} is not allowed: host {host}"
            + (f":{port}" if port else "")
            + " is not listed in backend.reading.allow; add it there to read from it"
        )

    def check_file(self, path: str, root: str) -> None:
        real = os.path.realpath(path)
        real_root = os.path.realpath(root)
        try:
            inside = os.path.commonpath([real, real_root]) == real_root
        except ValueError:
            inside = False
        if not inside:
            raise NotAllowedError(
                f"{path}: outside the allowed tree {root}; catalog files may only refer to files inside it"
            )


def resolve_target(base: LocationSpec, target: str) -> LocationSpec:
    """Resolve a (possibly relative) ``target`` against the location it was found in.

    Like Backstage's ``toAbsoluteUrl``: for files, a target starting with ``.`` is relative to the
    directory of ``base``; absolute URLs stay URLs; for URLs, relative targets are joined.
    """
    if target.startswith(("http://", "https://")):
        return LocationSpec("url", target)
    if base.type == "file":
        joined = os.path.join(os.path.dirname(base.target), target)
        return LocationSpec("file", os.path.normpath(joined))
    return LocationSpec("url", join_url(base.target, target))


def join_url(base: str, target: str) -> str:
    """Join a relative ``target`` to ``base``; a ``/path`` on GitHub/GitLab stays in the same repo+ref."""
    if target.startswith("/") and not target.startswith("//"):
        parts = urlsplit(base)
        segments = parts.path.split("/")
        host = (parts.hostname or "").lower()
        if host == "github.com" and len(segments) >= 5 and segments[3] in ("blob", "tree", "raw"):
            prefix = "/".join(segments[:5])
            return f"{parts.scheme}://{parts.netloc}{prefix}{target}"
        if "/-/blob/" in parts.path or "/-/tree/" in parts.path:
            marker = "/-/blob/" if "/-/blob/" in parts.path else "/-/tree/"
            head, _, rest = parts.path.partition(marker)
            ref = rest.split("/", 1)[0]
            return f"{parts.scheme}://{parts.netloc}{head}{marker}{ref}{target}"
    return urljoin(base, target)


def check_location(location: LocationSpec, policy: ReadPolicy, root: str | None) -> None:
    """Apply the policy to a location before reading it (raises NotAllowedError)."""
    if location.type == "url":
        policy.check_url(location.target)
    elif location.type == "file":
        if not os.path.isabs(location.target):
            raise InputError(f"{location.target}: file locations need an absolute path")
        if root is not None:
            policy.check_file(location.target, root)
    else:
        raise InputError(f"{location}: unknown location type {location.type!r}; use file or url")


def read_bytes(
    location: LocationSpec,
    policy: ReadPolicy,
    *,
    root: str | None = None,
    http: httpx.Client | None = None,
    max_bytes: int = MAX_FILE_BYTES,
) -> bytes:
    """Read the raw bytes of a location after checking the policy."""
    check_location(location, policy, root)
    if location.type == "file":
        return _read_file(location.target, max_bytes)
    return _read_url(location.target, policy, http, max_bytes)


def read_text(
    location: LocationSpec,
    policy: ReadPolicy,
    *,
    root: str | None = None,
    http: httpx.Client | None = None,
) -> str:
    data = read_bytes(location, policy, root=root, http=http)
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        raise InputError(f"{location.target}: not UTF-8 text (byte {e.start}); save the file as UTF-8") from None


def read_documents(
    location: LocationSpec,
    policy: ReadPolicy,
    *,
    root: str | None = None,
    http: httpx.Client | None = None,
) -> list[RawDocument]:
    """Read a location and split it into YAML documents (empty documents dropped)."""
    text = read_text(location, policy, root=root, http=http)
    return [RawDocument(data=d, location=location, line=line) for d, line in parse_yaml_documents(text, location.target)]


def _read_file(path: str, max_bytes: int) -> bytes:
    try:
        with open(path, "rb") as f:
            data = f.read(max_bytes + 1)
    except FileNotFoundError:
        raise NotFoundError(f"{path}: file not found; check the path or remove the location") from None
    except IsADirectoryError:
        raise InputError(f"{path}: is a directory; point the location at a YAML file inside it") from None
    except OSError as e:
        raise InputError(f"{path}: cannot be read ({e.strerror}); check its permissions") from None
    if len(data) > max_bytes:
        raise InputError(f"{path}: larger than {max_bytes // (1024 * 1024)} MiB; split it into smaller files")
    return data


def _read_url(url: str, policy: ReadPolicy, http: httpx.Client | None, max_bytes: int) -> bytes:
    client = http or httpx.Client(timeout=HTTP_TIMEOUT_S, follow_redirects=False)
    try:
        current = url
        for _ in range(MAX_REDIRECTS + 1):
            policy.check_url(current)
            try:
                with client.stream("GET", current, follow_redirects=False, timeout=HTTP_TIMEOUT_S) as response:
                    if response.is_redirect:
                        location = response.headers.get("location")
                        if not location:
                            raise InputError(f"{current}: redirect without a Location header")
                        current = urljoin(current, location)
                        continue
                    if response.status_code == 404:
                        raise NotFoundError(f"{url}: not found (HTTP 404); check the URL or remove the location")
                    if response.status_code >= 400:
                        raise InputError(
                            f"{url}: the server answered HTTP {response.status_code}; check the URL and its access"
                        )
                    chunks: list[bytes] = []
                    size = 0
                    for chunk in response.iter_bytes():
                        size += len(chunk)
                        if size > max_bytes:
                            raise InputError(
                                f"{url}: larger than {max_bytes // (1024 * 1024)} MiB; split it into smaller files"
                            )
                        chunks.append(chunk)
                    return b"".join(chunks)
            except httpx.TimeoutException:
                raise InputError(f"{url}: timed out after {HTTP_TIMEOUT_S:g} s; check that the host answers") from None
            except httpx.HTTPError as e:
                raise InputError(f"{url}: could not be fetched ({type(e).__name__}: {e})") from None
        raise InputError(f"{url}: more than {MAX_REDIRECTS} redirects; give the final URL")
    finally:
        if http is None:
            client.close()

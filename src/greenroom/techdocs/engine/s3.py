"""``S3Storage``: docs sites in an S3-compatible bucket over plain HTTPS with our own SigV4.

Why not boto3: it is a 20 MB dependency tree for four calls (PUT, GET, HEAD, list+delete), and
its pin on python-dateutil < 3 conflicts with the kubernetes client we already depend on. SigV4 for
S3 is ~60 lines (AWS "Signature Version 4 signing process", header-based, path-style URLs), and it
works unchanged against AWS, MinIO, Ceph RGW and moto.

A site is written object by object and then ``techdocs_metadata.json`` last, so ``has_site``
(which looks at ``index.html``) may see a new site a moment before its metadata; objects left over
from an older build are deleted after the upload. Errors from the bucket raise ``StorageError``
with the HTTP status and S3 error code, never the credentials.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import hmac
import re
from pathlib import Path
from urllib.parse import quote

import httpx

from greenroom.core.errors import NotFoundError
from greenroom.techdocs.engine.storage import content_type, safe_relpath, site_files
from greenroom.techdocs.model import EntityTriple

_EMPTY_SHA = hashlib.sha256(b"").hexdigest()


class StorageError(Exception):
    pass


def _hmac(key: bytes, msg: str) -> bytes:
    return hmac.new(key, msg.encode(), hashlib.sha256).digest()


def sign_v4(method: str, url: httpx.URL, headers: dict[str, str], payload_sha: str, *,
            access_key: str, secret_key: str, region: str, now: dt.datetime,
            service: str = "s3") -> dict[str, str]:
    """Headers to add for an AWS Signature Version 4 request (``Authorization`` and dates)."""
    amz_date = now.strftime("%Y%m%dT%H%M%SZ")
    day = amz_date[:8]
    signed = {k.lower(): v.strip() for k, v in headers.items()}
    signed["host"] = url.netloc.decode()
    signed["x-amz-date"] = amz_date
    signed["x-amz-content-sha256"] = payload_sha
    names = sorted(signed)
    query = sorted(
        (quote(k, safe="-_.~"), quote(v, safe="-_.~")) for k, v in url.params.multi_items()
    )
    canonical = "\n".join([
        method, quote(url.path, safe="/-_.~"), "&".join(f"{k}={v}" for k, v in query),
        "".join(f"{n}:{signed[n]}\n" for n in names), ";".join(names), payload_sha,
    ])
    scope = f"{day}/{region}/{service}/aws4_request"
    to_sign = "\n".join(["AWS4-HMAC-SHA256", amz_date, scope,
                         hashlib.sha256(canonical.encode()).hexdigest()])
    key = _hmac(_hmac(_hmac(_hmac(f"AWS4{secret_key}".encode(), day), region), service), "aws4_request")
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    return {
        "x-amz-date": amz_date, "x-amz-content-sha256": payload_sha,
        "Authorization": f"AWS4-HMAC-SHA256 Credential={access_key}/{scope}, "
                         f"SignedHeaders={';'.join(names)}, Signature={signature}",
    }


class S3Storage:
    """Sites as objects ``<prefix><namespace>/<kind>/<name>/<path>`` in one bucket (path-style)."""

    def __init__(self, endpoint: str, bucket: str, *, access_key: str, secret_key: str,
                 region: str = "us-east-1", prefix: str = "", timeout_s: float = 30.0) -> None:
        self.endpoint = endpoint.rstrip("/")
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self._creds = (access_key, secret_key, region)
        self._client = httpx.Client(timeout=timeout_s)

    def close(self) -> None:
        self._client.close()

    def _request(self, method: str, key: str = "", *, body: bytes = b"", params: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> httpx.Response:
        url = httpx.URL(f"{self.endpoint}/{self.bucket}/{quote(key, safe='/-_.~')}" if key
                        else f"{self.endpoint}/{self.bucket}", params=params or {})
        hdrs = dict(headers or {})
        access, secret, region = self._creds
        hdrs.update(sign_v4(method, url, hdrs, hashlib.sha256(body).hexdigest() if body else _EMPTY_SHA,
                            access_key=access, secret_key=secret, region=region,
                            now=dt.datetime.now(dt.UTC)))
        return self._client.request(method, url, content=body or None, headers=hdrs)

    def _check(self, resp: httpx.Response, what: str) -> None:
        if resp.status_code >= 300:
            code = re.search(r"<Code>([^<]+)</Code>", resp.text)
            raise StorageError(f"S3 {what}: HTTP {resp.status_code} {code.group(1) if code else ''}".strip())

    def create_bucket(self) -> None:
        resp = self._request("PUT")
        if resp.status_code not in (200, 409):
            self._check(resp, f"create bucket {self.bucket}")

    def _key(self, triple: EntityTriple, rel: str = "") -> str:
        return f"{self.prefix}{triple.path}/{rel}"

    def _list(self, prefix: str) -> list[str]:
        keys: list[str] = []
        token: str | None = None
        while True:
            params = {"list-type": "2", "prefix": prefix}
            if token:
                params["continuation-token"] = token
            resp = self._request("GET", params=params)
            self._check(resp, "list objects")
            keys += re.findall(r"<Key>([^<]+)</Key>", resp.text)
            more = re.search(r"<NextContinuationToken>([^<]+)</NextContinuationToken>", resp.text)
            if not more:
                return [k.replace("&amp;", "&") for k in keys]
            token = more.group(1)

    def put_site(self, triple: EntityTriple, site_dir: Path) -> list[str]:
        files = site_files(site_dir)
        ordered = [f for f in files if f != "techdocs_metadata.json"] + (
            ["techdocs_metadata.json"] if "techdocs_metadata.json" in files else [])
        for rel in ordered:
            resp = self._request("PUT", self._key(triple, rel), body=(site_dir / rel).read_bytes(),
                                 headers={"content-type": content_type(rel)})
            self._check(resp, f"upload {rel}")
        keep = {self._key(triple, rel) for rel in files}
        for key in self._list(self._key(triple)):
            if key not in keep:
                self._check(self._request("DELETE", key), f"delete {key}")
        return files

    def get_file(self, triple: EntityTriple, path: str) -> tuple[bytes, str]:
        rel = safe_relpath(path)
        for candidate in ([rel] if rel and not rel.endswith("/") else []) + [f"{rel}/index.html".lstrip("/")]:
            resp = self._request("GET", self._key(triple, candidate))
            if resp.status_code == 200:
                return resp.content, content_type(candidate)
            if resp.status_code not in (403, 404):
                self._check(resp, f"read {candidate}")
        raise NotFoundError(f"No file {rel or 'index.html'} in the docs of {triple.ref}")

    def has_site(self, triple: EntityTriple) -> bool:
        return self._request("HEAD", self._key(triple, "index.html")).status_code == 200

    def delete(self, triple: EntityTriple) -> None:
        for key in self._list(self._key(triple)):
            self._check(self._request("DELETE", key), f"delete {key}")

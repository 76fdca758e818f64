"""S3-compatible object storage (AWS, MinIO, Ceph, moto) through boto3.

Exposure: an unsigned ListObjects tells whether anyone may list the bucket; the bucket ACL
whether it grants AllUsers / AuthenticatedUsers; the policy status (where the server supports
it) whether a bucket policy makes it public; an `http://` endpoint is cleartext. Listing is
paginated with an entry cap; objects are read with a Range request up to the byte cap.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

from scanner.stores.base import Connector, Entry, Exposure, StoreError, TooLarge, TooManyEntries

_PUBLIC_GROUPS = {
    "http://acs.amazonaws.com/groups/global/AllUsers": "AllUsers",
    "http://acs.amazonaws.com/groups/global/AuthenticatedUsers": "AuthenticatedUsers",
}


def _client(endpoint: str, creds: tuple[str, str] | None, timeout: float, unsigned: bool) -> Any:
    import boto3
    from botocore import UNSIGNED
    from botocore.config import Config

    cfg = Config(
        connect_timeout=timeout,
        read_timeout=timeout,
        retries={"max_attempts": 1},
        signature_version=UNSIGNED if unsigned else "s3v4",
        s3={"addressing_style": "path"},
    )
    session = boto3.session.Session()
    kwargs: dict[str, Any] = {"endpoint_url": endpoint, "config": cfg, "region_name": "us-east-1"}
    if creds and not unsigned:
        kwargs |= {"aws_access_key_id": creds[0], "aws_secret_access_key": creds[1]}
    return session.client("s3", **kwargs)


def _code(exc: Exception) -> str:
    resp = getattr(exc, "response", None)
    if isinstance(resp, dict):
        return str(resp.get("Error", {}).get("Code", "")) or type(exc).__name__
    return type(exc).__name__


class S3Store(Connector):
    kind = "s3"

    def __init__(
        self, url: str, address: str, creds: tuple[str, str] | None, timeout: float = 5.0
    ) -> None:
        parts = urlsplit(url)
        segs = [s for s in parts.path.split("/") if s]
        if not segs:
            raise StoreError(
                f"S3 location {url!r} names no bucket (use http(s)://host:port/bucket)"
            )
        self.bucket, self.prefix = segs[0], "/".join(segs[1:])
        if self.prefix:
            self.prefix += "/"
        host = f"[{address}]" if ":" in address else address
        port = f":{parts.port}" if parts.port else ""
        self.scheme = parts.scheme
        self.endpoint = urlunsplit((parts.scheme, f"{host}{port}", "", "", ""))
        self.timeout = timeout
        self.creds = creds
        self.s3 = _client(self.endpoint, creds, timeout, unsigned=creds is None)

    def exposure(self) -> Exposure:
        from botocore.exceptions import BotoCoreError, ClientError

        exp = Exposure(transport=f"s3-{self.scheme}", cleartext=self.scheme == "http")
        anon = _client(self.endpoint, None, self.timeout, unsigned=True)
        try:
            anon.list_objects_v2(Bucket=self.bucket, MaxKeys=1)
            exp.anonymous_read = exp.public_listing = True
            exp.anonymous_detail = "an unsigned ListObjects request succeeded"
        except ClientError as exc:
            exp.anonymous_read = exp.public_listing = False
            exp.anonymous_detail = f"an unsigned ListObjects request was refused ({_code(exc)})"
        except BotoCoreError as exc:
            exp.anonymous_detail = f"unsigned ListObjects failed: {type(exc).__name__}"
        if self.creds:
            try:
                acl = self.s3.get_bucket_acl(Bucket=self.bucket)
                for g in acl.get("Grants", []):
                    uri = g.get("Grantee", {}).get("URI", "")
                    if uri in _PUBLIC_GROUPS:
                        exp.public_acl.append(f"{_PUBLIC_GROUPS[uri]}:{g.get('Permission')}")
            except (ClientError, BotoCoreError) as exc:
                exp.notes.append(f"bucket ACL not readable ({_code(exc)})")
            try:
                st = self.s3.get_bucket_policy_status(Bucket=self.bucket)
                if st.get("PolicyStatus", {}).get("IsPublic"):
                    exp.public_acl.append("bucket policy: public")
            except (ClientError, BotoCoreError):
                pass  # no policy, or the server does not implement the call
        return exp

    def walk(self, max_entries: int, max_depth: int) -> Iterator[Entry]:
        from botocore.exceptions import BotoCoreError, ClientError

        count, token = 0, None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": self.prefix, "MaxKeys": 1000}
            if token:
                kwargs["ContinuationToken"] = token
            try:
                page = self.s3.list_objects_v2(**kwargs)
            except ClientError as exc:
                raise StoreError(f"bucket {self.bucket}: listing denied ({_code(exc)})") from None
            except BotoCoreError as exc:
                raise StoreError(f"bucket {self.bucket}: listing failed ({exc})") from None
            for obj in page.get("Contents", []):
                key = str(obj["Key"])
                rel = key[len(self.prefix) :]
                if not rel or rel.endswith("/") or rel.count("/") > max_depth:
                    continue
                count += 1
                if count > max_entries:
                    raise TooManyEntries(max_entries)
                lm = obj.get("LastModified")
                yield Entry(
                    path=rel,
                    size=int(obj.get("Size", 0)),
                    mtime=lm.timestamp() if lm else None,
                    etag=str(obj.get("ETag", "")).strip('"'),
                )
            if not page.get("IsTruncated"):
                return
            token = page.get("NextContinuationToken")
            if not token:
                return

    def read(self, entry: Entry, max_bytes: int) -> bytes:
        from botocore.exceptions import BotoCoreError, ClientError

        if entry.size is not None and entry.size > max_bytes:
            raise TooLarge(f"{entry.path}: {entry.size} bytes (limit {max_bytes})")
        try:
            obj = self.s3.get_object(
                Bucket=self.bucket, Key=self.prefix + entry.path, Range=f"bytes=0-{max_bytes}"
            )
            data = obj["Body"].read(max_bytes + 1)
        except ClientError as exc:
            raise StoreError(f"{entry.path}: read refused ({_code(exc)})") from None
        except BotoCoreError as exc:
            raise StoreError(f"{entry.path}: read failed ({type(exc).__name__})") from None
        if len(data) > max_bytes:
            raise TooLarge(f"{entry.path}: more than {max_bytes} bytes")
        return bytes(data)

"""The `s3` endpoint (interface `s3`, as s3-integrator provides it): a bucket named after the app.

Wire format (the data-platform `s3` library, v0 and v1):
- our app databag (leader): `bucket` = the app's name (a provider may ignore it and publish
  another); `requested-secrets` = `["access-key", "secret-key"]`, which asks a v1 provider to
  put the keys in a Juju secret.
- the provider's app databag: `bucket`; optional `endpoint`, `region`, `path`,
  `storage-class`, `s3-api-version`, `s3-uri-style` (`path` or `host`), and `attributes` and
  `tls-ca-chain` as JSON lists of strings. Credentials: `secret-extra` = the id of a secret
  (granted to us) holding `access-key` and `secret-key` (v1), or plain `access-key` and
  `secret-key` fields (v0 providers such as s3-integrator 1/stable).

The variables are paas-charm's: `S3_ACCESS_KEY`, `S3_SECRET_KEY`, `S3_BUCKET`, and, for what the
provider published, `S3_REGION`, `S3_STORAGE_CLASS`, `S3_ENDPOINT`, `S3_PATH`, `S3_API_VERSION`,
`S3_URI_STYLE`, `S3_ADDRESSING_STYLE` (boto3's name for the URI style: `path`, or `virtual` for
`host`), and `S3_ATTRIBUTES` and `S3_TLS_CA_CHAIN` as JSON lists.
"""

from __future__ import annotations

import json
import urllib.parse
from dataclasses import dataclass

import ops

from charms.flask_k8s.v0 import databags
from charms.flask_k8s.v0.database_requires import (
    BadDataError,
    NotReadyError,
    provider_app_data,
    secret_content,
)

ENDPOINT = "s3"
ENV_PREFIX = "S3_"
SECRET_FIELDS = ("access-key", "secret-key")
SECRET_ID_KEY = "secret-extra"
# Provider field -> variable, for the optional plain fields (passed as published).
OPTIONAL = {
    "region": "S3_REGION",
    "storage-class": "S3_STORAGE_CLASS",
    "endpoint": "S3_ENDPOINT",
    "path": "S3_PATH",
    "s3-api-version": "S3_API_VERSION",
    "s3-uri-style": "S3_URI_STYLE",
}
LISTS = {"attributes": "S3_ATTRIBUTES", "tls-ca-chain": "S3_TLS_CA_CHAIN"}
ADDRESSING_STYLE = {"path": "path", "host": "virtual"}  # s3-uri-style -> boto3's name
MAX_CHARS = databags.MAX_URL_CHARS


@dataclass(frozen=True)
class S3Data:
    """What the provider gave us: the bucket, the keys, and its optional settings."""

    bucket: str
    access_key: str
    secret_key: str
    options: tuple[tuple[str, str], ...] = ()  # (provider field, value), only those published
    lists: tuple[tuple[str, tuple[str, ...]], ...] = ()


def request(charm: ops.CharmBase, relation: ops.Relation) -> None:
    """Ask for the bucket named after the app, with the keys in a secret (leader only)."""
    wanted = {"bucket": charm.app.name, "requested-secrets": json.dumps(list(SECRET_FIELDS))}
    databags.update(relation.data[charm.app], wanted)


def read(charm: ops.CharmBase, relation: ops.Relation) -> S3Data:
    """The bucket and keys the provider published (NotReadyError/BadDataError until usable)."""
    name = relation.name
    remote = provider_app_data(relation)
    has_keys = remote.get(SECRET_ID_KEY) or any(remote.get(key) for key in SECRET_FIELDS)
    missing = [
        what for what, ok in (("bucket", remote.get("bucket")), ("keys", has_keys)) if not ok
    ]
    if missing:
        raise NotReadyError(
            f"waiting for the {name} relation to publish its {' and '.join(missing)}"
        )
    access_key, secret_key = _keys(charm.model, remote, name)
    options = tuple(
        (field, _text(remote[field], field, name)) for field in OPTIONAL if remote.get(field)
    )
    _check_options(dict(options), name)
    lists = tuple(
        (field, _list(remote[field], field, name)) for field in LISTS if remote.get(field)
    )
    return S3Data(_text(remote["bucket"], "bucket", name), access_key, secret_key, options, lists)


def env(value: S3Data) -> dict[str, str]:
    """The `S3_*` variables (those the provider did not publish are left out)."""
    variables = {
        "S3_ACCESS_KEY": value.access_key,
        "S3_SECRET_KEY": value.secret_key,
        "S3_BUCKET": value.bucket,
    }
    options = dict(value.options)
    variables.update((OPTIONAL[field], text) for field, text in options.items())
    if "s3-uri-style" in options:
        variables["S3_ADDRESSING_STYLE"] = ADDRESSING_STYLE[options["s3-uri-style"]]
    variables.update(
        (LISTS[field], json.dumps(list(items))) for field, items in value.lists if items
    )
    return variables


def _keys(model: ops.Model, remote: ops.RelationDataContent, name: str) -> tuple[str, str]:
    secret_id = remote.get(SECRET_ID_KEY)
    source = secret_content(model, secret_id, name) if secret_id else remote
    access_key, secret_key = (source.get(key) for key in SECRET_FIELDS)
    if not access_key or not secret_key:
        lacking = SECRET_FIELDS[0] if not access_key else SECRET_FIELDS[1]
        raise BadDataError(
            f"the {name} relation published credentials without its {lacking}: fix the "
            f"provider's credentials, or remove the relation"
        )
    return _text(access_key, "access-key", name), _text(secret_key, "secret-key", name)


def _invalid(field: str, name: str, want: str = "") -> BadDataError:
    # Never the value itself: it may be a key, and status messages are public.
    want = f" ({want})" if want else ""
    return BadDataError(
        f"the {name} relation published an invalid {field}{want}: fix the provider's "
        f"settings, or remove the relation"
    )


def _text(value: str, field: str, name: str) -> str:
    if not value.isprintable() or len(value) > MAX_CHARS:
        raise _invalid(field, name)
    return value


def _check_options(options: dict[str, str], name: str) -> None:
    style = options.get("s3-uri-style")
    if style is not None and style not in ADDRESSING_STYLE:
        raise _invalid("s3-uri-style", name, "want path or host")
    endpoint = options.get("endpoint")
    if endpoint is not None:
        try:
            parts = urllib.parse.urlsplit(endpoint)
            valid = parts.scheme in ("http", "https") and bool(parts.hostname)
        except ValueError:  # e.g. a malformed IPv6 host or port
            valid = False
        if not valid or " " in endpoint:
            raise _invalid("endpoint", name, "want an http(s) URL")


def _list(raw: str, field: str, name: str) -> tuple[str, ...]:
    try:
        value = databags.parse_json(raw)
    except databags.MalformedDataError:
        raise _invalid(field, name, "want a JSON list of strings") from None
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _invalid(field, name, "want a JSON list of strings")
    return tuple(value)

"""The charm author's own dashboards and alert rules, from `cos_custom/` in the charm.

Layout (paas-charm's): `cos_custom/grafana_dashboards/*.json`,
`cos_custom/prometheus_alert_rules/*.rules|*.yaml|*.yml` and `cos_custom/loki_alert_rules/…`.
They are sent alongside the charm's own (`src/cos/`), read only when a leader has a relation
to write. Each file is checked first: a dashboard is a JSON object with a `panels` list; a rule
file is YAML whose `groups` each have a unique `name` and `rules`, each rule an `alert` (or
`record`) and an `expr` string. A file that fails is not shipped and one bounded log line says
why; the others still ship. (PromQL and LogQL themselves are checked by Prometheus and Loki.)
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

logger = logging.getLogger(__name__)

DIR_NAME = "cos_custom"
DASHBOARDS = "grafana_dashboards"
PROMETHEUS_RULES = "prometheus_alert_rules"
LOKI_RULES = "loki_alert_rules"
RULE_SUFFIXES = (".rules", ".yaml", ".yml")
MAX_FILE_BYTES = 4 * 1024 * 1024
MAX_FILES = 100
DASHBOARD_PREFIX = "custom-"  # keeps a custom dashboard from replacing one of ours


class InvalidFileError(ValueError):
    """A custom file that must not be shipped; the message says why."""


def _files(directory: Path, suffixes: Iterable[str]) -> list[Path]:
    if not directory.is_dir():
        return []
    found = sorted(p for p in directory.iterdir() if p.suffix in tuple(suffixes))
    if len(found) > MAX_FILES:
        logger.warning("%s: only the first %d files are read", _short(directory), MAX_FILES)
    return found[:MAX_FILES]


def _read(path: Path) -> str:
    if path.is_symlink() or not path.is_file():
        raise InvalidFileError("not a regular file")
    if path.stat().st_size > MAX_FILE_BYTES:
        raise InvalidFileError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise InvalidFileError("not UTF-8 text") from None


def _short(path: Path) -> str:
    """The path from `cos_custom/` on, bounded, for a log line."""
    parts = path.parts
    shown = "/".join(parts[parts.index(DIR_NAME) :]) if DIR_NAME in parts else path.name
    return shown[:200]


def _skip(path: Path, why: object) -> None:
    logger.warning("not shipping %s: %s", _short(path), str(why)[:300])


def check_dashboard(text: str) -> None:
    """Raise InvalidFileError unless `text` is a Grafana dashboard: a JSON object with panels."""
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise InvalidFileError(f"not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise InvalidFileError("not a JSON object")
    if not isinstance(document.get("panels"), list):
        raise InvalidFileError("has no `panels` list")


def dashboards(charm_dir: Path) -> dict[str, str]:
    """The valid custom dashboards: {prefixed file stem: JSON text}."""
    found = {}
    for path in _files(charm_dir / DIR_NAME / DASHBOARDS, (".json",)):
        try:
            text = _read(path)
            check_dashboard(text)
        except (InvalidFileError, OSError) as exc:
            _skip(path, exc)
            continue
        found[DASHBOARD_PREFIX + path.stem] = text
    return found


def check_rules(text: str) -> list[dict[str, Any]]:
    """The rule groups of a rule file; InvalidFileError unless every group and rule is whole."""
    import yaml  # only a leader with a relation to write reads rule files

    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise InvalidFileError(f"not YAML ({str(exc).splitlines()[0]})") from None
    if not isinstance(document, dict) or not isinstance(document.get("groups"), list):
        raise InvalidFileError("has no `groups` list")
    names = set()
    for index, group in enumerate(document["groups"]):
        if not isinstance(group, dict) or not isinstance(group.get("name"), str):
            raise InvalidFileError(f"group {index} has no `name`")
        name = group["name"][:80]
        if group["name"] in names:
            raise InvalidFileError(f"group {name!r} appears twice")
        names.add(group["name"])
        rules = group.get("rules")
        if not isinstance(rules, list):
            raise InvalidFileError(f"group {name!r} has no `rules` list")
        for number, rule in enumerate(rules):
            if not isinstance(rule, dict):
                raise InvalidFileError(f"group {name!r}: rule {number} is not a mapping")
            kind = rule.get("alert", rule.get("record"))
            if not isinstance(kind, str) or not kind or not isinstance(rule.get("expr"), str):
                raise InvalidFileError(
                    f"group {name!r}: rule {number} needs an `alert` name and an `expr` string"
                )
    return document["groups"]


def rule_groups(charm_dir: Path, kind: str, taken: Iterable[str] = ()) -> list[dict[str, Any]]:
    """The valid custom rule groups of `kind` (PROMETHEUS_RULES or LOKI_RULES).

    A file with a group named as one in `taken` (ours) or in an earlier file is skipped: the
    receiving Prometheus or Loki would refuse every rule of ours along with it.
    """
    seen = set(taken)
    groups: list[dict[str, Any]] = []
    for path in _files(charm_dir / DIR_NAME / kind, RULE_SUFFIXES):
        try:
            own = check_rules(_read(path))
        except (InvalidFileError, OSError) as exc:
            _skip(path, exc)
            continue
        clash = sorted(seen & {group["name"] for group in own})
        if clash:
            _skip(path, f"group name {clash[0][:80]!r} is taken")
            continue
        seen.update(group["name"] for group in own)
        groups += own
    return groups

"""Every LogQL query we ship is one Loki accepts, and selects the streams our charm sends.

The dashboard's log panels must work with every dropdown at "All", and the LogQL alert rules as
the charm publishes them. The selectors are read by `tests/unit/cos/logql.py`, whose own
behaviour is pinned first (Loki's accept/refuse examples, escapes, malformed text).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from ops import testing

import observability
from charm import FlaskCharm
from tests.unit.charm.test_charm import run
from tests.unit.charm.test_observability import (
    MODEL,
    MODEL_UUID,
    URL_0,
    cos_state,
    logging_relation,
    plan_targets,
)
from tests.unit.cos.logql import (
    LogQLError,
    Matcher,
    accepted_by_loki,
    interpolate,
    stream_selectors,
)

DASHBOARDS = sorted(observability.DASHBOARDS_DIR.glob("*.json"))
# Grafana's charm adds these dropdowns to every dashboard (we send `inject_dropdowns: true`),
# each with "All" as the default and `allValue: ".*"`; it also injects
# `juju_model=~"$juju_model"`-style matchers into each query, which match "" at "All" too.
TOPOLOGY_VARIABLES = ("juju_model", "juju_model_uuid", "juju_application", "juju_unit")
# Grafana's own variables only fit a range (`[$__interval]`): any duration reads the same.
GRAFANA_GLOBALS = {"__interval": "1m", "__rate_interval": "1m", "__range": "1h", "__auto": "1m"}
# Pebble adds this label to every line it forwards (the app's own lines: `flask`), besides the
# target's own labels.
PEBBLE_LABELS = {"pebble_service": "flask"}


# -- the reader itself -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "accepted"),
    [  # the examples Loki's parser tests use for this rule
        ('{foo="bar"}', True),
        ('{foo!="bar"}', False),
        ('{app="baz", foo!="bar"}', True),
        ('{app=~".+"}', True),
        ('{app=~".*"}', False),
        ('{foo=~"bar|baz"}', True),
        ('{foo!~"bar|baz"}', False),
        ("{}", False),
        ('{app=""}', False),
        ('{app!=""}', True),  # the label must be there, with some value
        ('{app!~""}', True),
        ('{app=~"a?"}', False),  # anchored: "" is a full match of a?
        ('{app=~"x|"}', False),
    ],
)
def test_loki_rule_on_one_selector(query, accepted):
    (selector,) = stream_selectors(query)

    assert accepted_by_loki(selector) is accepted


def test_every_selector_of_a_metric_query_is_read_and_strings_are_skipped():
    query = (
        'sum(count_over_time({a="1"} |= "{not=\\"a selector\\"}" [5m]))'
        ' / sum(count_over_time({b=~`\\d+`, c!~"x"} | line_format "{{.b}}" [5m]))'
    )

    assert stream_selectors(query) == [
        [Matcher("a", "=", "1")],
        [Matcher("b", "=~", "\\d+"), Matcher("c", "!~", "x")],
    ]


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ('"a\\"b"', 'a"b'),
        ('"a\\\\b"', "a\\b"),
        ('"\\x41\\u00e9\\U0001F600\\101"', "A\u00e9\U0001f600A"),
        ('"tab\\there"', "tab\there"),
        ("`raw\\n`", "raw\\n"),
    ],
)
def test_values_are_unquoted_as_go_does(literal, value):
    (selector,) = stream_selectors(f"{{label={literal}}}")

    assert selector == [Matcher("label", "=", value)]


@pytest.mark.parametrize(
    "query",
    [
        '{a="1"',  # unclosed selector
        '{a="1}',  # unterminated string
        '{a="1",}',  # trailing comma
        "{a=1}",  # unquoted value
        '{a=="1"}',  # no such operator
        '{a<"1"}',
        '{1a="1"}',  # not a label name
        '{a="1" b="2"}',  # missing comma
        '{a="\\q"}',  # unknown escape
        '{a="\\x4"}',  # short hex escape
        "{a='1'}",  # single quotes are not LogQL strings
        "sum(x)}",  # stray brace
    ],
)
def test_malformed_selectors_are_refused(query):
    with pytest.raises(LogQLError):
        stream_selectors(query)


@pytest.mark.parametrize("pattern", ["(?=a)", "(?!a)", "(?<=a)b", "(a)\\1", "a\\Z", "(?>a)"])
def test_regexes_go_would_read_differently_are_refused(pattern):
    (selector,) = stream_selectors(f"{{a=~`{pattern}`}}")

    with pytest.raises(LogQLError):
        accepted_by_loki(selector)


def test_interpolation_covers_grafanas_variable_forms():
    query = '{a=~"$x", b=~"${x}", c=~"${x:regex}", d=~"[[x]]", e="$$"} [$__interval]'

    pasted = interpolate(query, {"x": ".+", "__interval": "1m"})

    assert pasted == '{a=~".+", b=~".+", c=~".+", d=~".+", e="$$"} [1m]'
    with pytest.raises(LogQLError, match="'y'"):
        interpolate('{a=~"$y"}', {"x": ".+"})


# -- what we ship ----------------------------------------------------------------------------


def _panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    for panel in panels:
        yield panel
        yield from _panels(panel.get("panels", []))  # a collapsed row keeps its panels inside


def _is_loki(datasource: Any) -> bool:
    if isinstance(datasource, dict):
        return datasource.get("type") == "loki" or datasource.get("uid") == "${lokids}"
    return datasource == "${lokids}"


def loki_queries(path: Path) -> list[str]:
    dashboard = json.loads(path.read_text())
    return [
        target["expr"]
        for panel in _panels(dashboard["panels"])
        for target in panel.get("targets", [])
        if _is_loki(target.get("datasource", panel.get("datasource")))
    ]


def all_values(path: Path, unknown_all: str = ".*") -> dict[str, str]:
    """Each variable a dashboard query may use, at its "All" value.

    A variable of the dashboard's own without a custom `allValue` gets `unknown_all`: Grafana
    pastes its options as `(a|b|…)`, which may or may not match "", so test with both kinds.
    """
    values = dict.fromkeys(TOPOLOGY_VARIABLES, ".*") | GRAFANA_GLOBALS
    for variable in json.loads(path.read_text()).get("templating", {}).get("list", []):
        values[variable["name"]] = variable.get("allValue") or unknown_all
    return values


@pytest.mark.parametrize("unknown_all", [".*", ".+"])
@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_log_queries_are_accepted_with_every_dropdown_at_all(path, unknown_all):
    queries = loki_queries(path)

    assert queries, f"{path.name} has no Loki query to check"
    for query in queries:
        selectors = stream_selectors(interpolate(query, all_values(path, unknown_all)))
        assert selectors, query
        for selector in selectors:
            assert accepted_by_loki(selector), f"Loki refuses {selector} of {query!r}"


@pytest.fixture
def published(tmp_path) -> testing.State:
    """The charm's state after a hook with a Loki related: rules published, targets set."""
    charm_dir = tmp_path / "charm"
    charm_dir.mkdir()
    return run(
        testing.Context(FlaskCharm),
        "config_changed",
        cos_state(charm_dir, logging_relation(URL_0)),
    )


def _forwarded_labels(out: testing.State) -> dict[str, str]:
    (target,) = plan_targets(out).values()
    return target["labels"] | PEBBLE_LABELS


@pytest.mark.parametrize("path", DASHBOARDS, ids=lambda path: path.name)
def test_dashboard_log_queries_select_the_lines_the_charm_forwards(path, published):
    """Picking our app in every dropdown, each selector matches the labels our lines carry."""
    labels = _forwarded_labels(published)
    ours = all_values(path) | {name: labels[name] for name in TOPOLOGY_VARIABLES}

    for query in loki_queries(path):
        for selector in stream_selectors(interpolate(query, ours)):
            for matcher in selector:
                assert matcher.matches(labels.get(matcher.label, "")), (matcher, labels)


def test_published_loki_rules_are_accepted_and_select_our_lines(published):
    (relation,) = [rel for rel in published.relations if rel.endpoint == "logging"]
    rules = json.loads(published.get_relation(relation.id).local_app_data["alert_rules"])
    labels = _forwarded_labels(published)
    exprs = [rule["expr"] for group in rules["groups"] for rule in group["rules"]]

    assert exprs, "no LogQL rule published"
    assert (labels["juju_model"], labels["juju_model_uuid"]) == (MODEL, MODEL_UUID)
    for expr in exprs:
        selectors = stream_selectors(expr)
        assert selectors, expr
        for selector in selectors:
            assert accepted_by_loki(selector), f"Loki refuses {selector} of {expr!r}"
            assert all(matcher.matches(labels.get(matcher.label, "")) for matcher in selector)

"""Put a run's pieces on one simulated time axis: a :class:`~fanwatch.demo.outcome.Story`.

The edge's side comes from what the devices published (their readings and alerts, as the broker
delivered them); the cloud's side, when the run had one, adds what the lake stored, the forest's score
of each reading, its anomalies and the notifications people received. Every timestamp is mapped to
simulated seconds with its thing's :class:`~fanwatch.demo.observations.Timeline`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from fanwatch.cloud.events import severity_of
from fanwatch.demo.ledger import reading_key
from fanwatch.demo.observations import DemoRun, Observations, Timeline
from fanwatch.demo.outcome import Finding, Ledger, Notice, Point, Source, Story
from fanwatch.demo.scenario import Scenario
from fanwatch.telemetry import AlertState

__all__ = ["edge_story", "story_of"]


def story_of(run: DemoRun) -> Story:
    """The run's story: the cloud's side when it had one (the lake, its events, the notifications, the
    forest's scores, the ledger against the edge), else the edge's."""
    if run.cloud is None:
        story = edge_story(run.scenario, run.observations, run.where, run.wall_s)
        story.problems += run.problems
        return story
    scenario, cloud = run.scenario, run.cloud
    story = Story.empty(scenario, run.where, run.wall_s)
    story.problems += run.problems
    plans = {t.name: t for t in scenario.things}
    timelines = {t: run.observations.timeline(t, plans[t]) for t in plans}
    for row in cloud.readings:
        fan, timeline = story.fans.get((row["thing"], row["fan"])), timelines.get(row["thing"])
        if fan is None or timeline is None:
            continue
        fan.readings.append(
            Point(
                timeline.at(_utc(row["ts"])),
                row["rpm"],
                row["target_rpm"],
                frozenset(row["flags"] or ()),
                row["label"] or "normal",
            )
        )
    for row in cloud.events:
        fan, timeline = story.fans.get((row["thing"], row["fan"])), timelines.get(row["thing"])
        if fan is None or timeline is None or row["kind"] == "gap":
            continue  # a gap is the data path's finding, not the fan's: the ledger accounts for it
        fan.findings.append(_finding(row, timeline))
    for (thing, fan_id), scored in cloud.scores.items():
        fan, timeline = story.fans.get((thing, fan_id)), timelines.get(thing)
        if fan is None or timeline is None:
            continue
        fan.scores = [(timeline.at(s.ts), s.score) for s in scored]
        fan.thresholds = [(timeline.at(s.ts), s.threshold) for s in scored]
    for n in cloud.notifications:
        fan, timeline = story.fans.get((n.thing, n.fan)), timelines.get(n.thing)
        if fan is None or timeline is None:
            continue
        sent = _utc(n.sent)
        at = timeline.at(run.wall_to_stamps(sent) if run.wall_to_stamps is not None else sent)
        fan.notices.append(Notice(n.thing, n.fan, at, n.severity, n.kind, n.source, n.subject, n.message))
    for fan in story:
        fan.readings.sort(key=lambda p: p.at_s)
        fan.findings.sort(key=lambda f: f.at_s)
        fan.notices.sort(key=lambda n: n.at_s)
    stored = [reading_key(r["thing"], r["fan"], r["boot"], r["seq"], r["ts"]) for r in cloud.readings]
    story.ledger = Ledger.of(run.ledger.keys() if run.ledger is not None else [], stored)
    story.notices_suppressed = cloud.held_back
    story.dead_letters = [_reason(letter) for letter in cloud.dead_letters]
    return story


def _utc(ts: datetime) -> datetime:
    """The lake's timestamps are UTC, without a zone once DuckDB has read them."""
    return ts.replace(tzinfo=UTC) if ts.tzinfo is None else ts


def _finding(row: Mapping[str, Any], timeline: Timeline) -> Finding:
    source = Source.RCF if row["source"] == "cloud" else Source.EDGE
    return Finding(
        row["thing"],
        row["fan"],
        source,
        row["kind"],
        timeline.at(_utc(row["ts"])),
        row["rpm"],
        state=AlertState(row["state"] or AlertState.RAISED),
        severity=row["severity"] or "warning",
        score=row["score"],
        threshold=row["threshold"],
    )


def _reason(letter: Mapping[str, Any]) -> str:
    """One line per dead letter: a record a handler rejected, or a batch Lambda gave up on."""
    if "reason" in letter:
        who, key = letter.get("source", "?"), letter.get("partitionKey")
        return f"{who} rejected a record from {key}: {letter['reason']}"
    context = letter.get("requestContext", {})
    function = str(context.get("functionArn", "?")).rsplit(":", 1)[-1]
    size = letter.get("KinesisBatchInfo", {}).get("batchSize", "?")
    attempts, why = context.get("approximateInvokeCount", "?"), context.get("condition", "?")
    return f"{function} gave up on {size} record(s) after {attempts} attempts ({why})"


def edge_story(scenario: Scenario, observations: Observations, where: str, wall_s: float) -> Story:
    """The story as the edge told it: readings and alerts as they reached IoT Core."""
    story = Story.empty(scenario, where, wall_s)
    plans = {t.name: t for t in scenario.things}
    for thing, log in observations:
        timeline = observations.timeline(thing, plans.get(thing))
        if timeline is None:
            continue
        for message in log.telemetry:
            fan = story.fans.get((thing, message.fan))
            if fan is None:
                continue  # a fan the scenario does not know: counted by the observations, not drawn
            fan.readings += [
                Point(timeline.at(r.ts), r.rpm, r.target_rpm, r.flags, r.label or "normal")
                for r in message.readings
            ]
        for alert in log.alerts:
            fan = story.fans.get((thing, alert.fan))
            if fan is None:
                continue
            fan.findings.append(
                Finding(
                    thing,
                    alert.fan,
                    Source.EDGE,
                    alert.kind,
                    timeline.at(alert.ts),
                    alert.rpm,
                    state=alert.state,
                    severity=severity_of(alert),
                    detail=alert.detail,
                )
            )
    for fan in story:
        fan.readings.sort(key=lambda p: p.at_s)
        fan.findings.sort(key=lambda f: f.at_s)
    return story

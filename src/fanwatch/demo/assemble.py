"""Put a run's pieces on one simulated time axis: a :class:`~fanwatch.demo.outcome.Story`.

The edge's side comes from what the devices published (their readings and alerts, as the broker
delivered them); the cloud's side, when the run had one, adds what the lake stored, the forest's score
of each reading, its anomalies and the notifications people received. Every timestamp is mapped to
simulated seconds with its thing's :class:`~fanwatch.demo.observations.Timeline`.
"""

from __future__ import annotations

from fanwatch.cloud.events import severity_of
from fanwatch.demo.observations import Observations
from fanwatch.demo.outcome import Finding, Point, Source, Story
from fanwatch.demo.scenario import Scenario

__all__ = ["edge_story"]


def edge_story(scenario: Scenario, observations: Observations, where: str, wall_s: float) -> Story:
    """The story as the edge told it: readings and alerts as they reached IoT Core."""
    story = Story.empty(scenario, where, wall_s)
    story.cloud = False  # until the cloud's side is added
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

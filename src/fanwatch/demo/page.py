"""The demo's report, ``report.html``: one self-contained page a browser opens offline.

Plotly's JavaScript bundle (from the ``plotly`` package) is inlined once, so the page needs no network
and no CDN. On it: the verdict and the ledger (readings sent at the edge and stored in the lake), the
fleet overview (a tile per fan with its state), the faults and what caught them, the timeline of
alerts, anomalies and notifications with the notifications' text, and per fan its RPM (with its
setpoint, when it is speed-controlled) over the anomaly score, the fault schedule shaded behind both.
"""

from __future__ import annotations

import html
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from fanwatch.demo.outcome import Caught, FanStory, Source, Story, Verdict, judge
from fanwatch.demo.palette import STATE_COLOURS, fan_state, fault_colour
from fanwatch.demo.report import failures
from fanwatch.demo.text import clock, count, window

__all__ = ["write_report"]

_CONFIG: Final = {"displaylogo": False, "responsive": True}
_MARKERS: Final = {  # (symbol, colour) of what the timeline and the fan charts mark
    ("edge", "raised"): ("triangle-down", "#d62728"),
    ("edge", "cleared"): ("triangle-up", "#2ca02c"),
    ("rcf", "raised"): ("x", "#1f1f1f"),
    ("notice", "sent"): ("circle-open", "#1f77b4"),
}


def write_report(story: Story, path: Path, *, verdict: Verdict | None = None) -> Path:
    """Write the page to ``path`` and return it."""
    from plotly.offline import get_plotlyjs

    verdict = verdict or judge(story)
    charts: list[tuple[str, dict[str, Any]]] = [("timeline", _timeline(story, verdict))]
    charts += [(_chart_id(fan), _fan_chart(story, fan)) for fan in story]
    body = "\n".join(
        [
            _header(story, verdict),
            _tiles(story, verdict),
            _fault_table(verdict),
            '<h2 id="timeline-title">Alerts, anomalies and notifications</h2>',
            '<div class="chart wide" id="timeline"></div>',
            _notices(story),
            "<h2>Every fan: speed over anomaly score</h2>",
            '<p class="hint">Shaded: the fault schedule (when each fault was injected). Triangles: edge '
            "alerts (down: raised, up: cleared); crosses: RCF anomalies; circles: notifications. The "
            "score strip shows the forest's score of every reading and, dashed, the fan's threshold.</p>",
            '<div class="fans">'
            + "".join(f'<div class="chart fan" id="{cid}"></div>' for cid, _ in charts[1:])
            + "</div>",
        ]
    )
    plots = "\n".join(
        f"Plotly.newPlot({json.dumps(cid)}, {_json(fig['data'])}, {_json(fig['layout'])}, "
        f"{json.dumps(_CONFIG)});"
        for cid, fig in charts
    )
    page = _PAGE.format(
        title=html.escape(f"fanwatch demo: {story.where}"),
        style=_STYLE,
        plotly=get_plotlyjs(),
        body=body,
        plots=plots,
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(page, encoding="utf-8")
    return path


def _json(value: Any) -> str:
    """JSON for a script block: no NaN (not JSON), and no ``</`` that would end the script early."""
    return json.dumps(value, separators=(",", ":"), allow_nan=False).replace("</", "<\\/")


def _chart_id(fan: FanStory) -> str:
    return "fan-" + "".join(c if c.isalnum() else "-" for c in fan.label)


def _minutes(seconds: float) -> float:
    return round(seconds / 60.0, 4)


# --- the text parts -----------------------------------------------------------------------------------


def _header(story: Story, verdict: Verdict) -> str:
    scenario = story.scenario
    fans = len(story.fans)
    problems = failures(story, verdict)
    ok = not problems
    lines = [
        f'<h1>fanwatch demo <span class="{"ok" if ok else "failed"}">{"OK" if ok else "FAILED"}</span></h1>',
        f'<p class="meta">{count(len(scenario.things), "device")}, {fans} fans, {html.escape(story.where)}: '
        f"{clock(scenario.seconds)} simulated (warm-up {clock(scenario.warmup_s)}) in "
        f"{story.wall_s:.0f} s of wall time, time scale {scenario.time_scale:g}.</p>",
    ]
    if story.ledger is not None:
        ledger = story.ledger
        lines.append(
            f'<p class="meta">Readings: {ledger.sent:,} sent at the edge, {ledger.stored:,} stored in the '
            f"lake; {ledger.lost} lost, {ledger.duplicated} duplicated.</p>"
        )
    else:
        lines.append(
            f'<p class="meta">Readings: {story.readings:,} sent at the edge (no lake in this run).</p>'
        )
    if problems:
        lines.append("<ul class=problems>" + "".join(f"<li>{html.escape(p)}</li>" for p in problems))
        lines.append("</ul>")
    return "\n".join(lines)


def _tiles(story: Story, verdict: Verdict) -> str:
    tiles = []
    for fan in story:
        state, text = fan_state(fan, verdict)
        faults = fan.plan.describe()
        tiles.append(
            f'<div class="tile" style="border-color:{STATE_COLOURS[state]}">'
            f'<div class="name">{html.escape(fan.label)}</div>'
            f'<div class="state" style="background:{STATE_COLOURS[state]}">{html.escape(state)}</div>'
            f'<div class="what">{fan.plan.normal_rpm:,.0f} rpm · {html.escape(faults)}</div>'
            f'<div class="why">{html.escape(text)}</div></div>'
        )
    return '<h2>Fleet</h2>\n<div class="tiles">' + "".join(tiles) + "</div>"


def _fault_table(verdict: Verdict) -> str:
    rows = []
    for v in verdict.faults:
        caught = v.caught
        rows.append(
            "<tr>"
            f"<td>{html.escape(v.thing)}/{html.escape(v.fan)}</td><td>{html.escape(v.fault.kind)}</td>"
            f"<td>{window(v.fault.start_s, v.fault.end_s)}</td>"
            f'<td class="{"missed" if caught is Caught.MISSED else ""}">{caught}</td>'
            f"<td>{_delay(v.edge_s)}</td><td>{_delay(v.rcf_s)}</td></tr>"
        )
    alarms = "".join(
        f"<tr><td>{html.escape(f.thing)}/{html.escape(f.fan)}</td><td>{clock(f.at_s)}</td>"
        f"<td>{html.escape(f.describe())}</td></tr>"
        for f in verdict.false_alarms
    )
    out = (
        "<h2>Injected faults and what caught them</h2>\n<table><tr><th>fan</th><th>fault</th>"
        "<th>scheduled (mm:ss)</th><th>caught by</th><th>edge alert after</th><th>RCF anomaly after</th></tr>"
        + "".join(rows)
        + "</table>"
    )
    if alarms:
        out += f"<h3>False alarms ({len(verdict.false_alarms)})</h3><table><tr><th>fan</th><th>at</th>"
        out += f"<th>what</th></tr>{alarms}</table>"
    else:
        out += "<p>No false alarms.</p>"
    return out


def _delay(seconds: float | None) -> str:
    return "–" if seconds is None else f"{seconds:.0f} s"


def _notices(story: Story) -> str:
    notices = story.notices()
    if not notices:
        return "<p>No notifications.</p>"
    rows = "".join(
        f"<tr><td>{clock(n.at_s)}</td><td>{html.escape(n.thing)}/{html.escape(n.fan)}</td>"
        f'<td class="sev-{html.escape(n.severity)}">{html.escape(n.severity)}</td>'
        f"<td><b>{html.escape(n.subject)}</b><br>{html.escape(n.text)}</td></tr>"
        for n in notices
    )
    held = f", {story.notices_suppressed} held back by the cooldown" if story.notices_suppressed else ""
    return (
        f"<h3>Notifications ({len(notices)} delivered{held})</h3>"
        "<table class=notices><tr><th>at</th><th>fan</th><th>severity</th><th>message</th></tr>"
        f"{rows}</table>"
    )


# --- the charts ---------------------------------------------------------------------------------------


def _timeline(story: Story, verdict: Verdict) -> dict[str, Any]:
    """Every fan a row; its fault windows as bars, findings and notifications as markers."""
    labels = [fan.label for fan in story]
    shapes = []
    for fan in story:
        for fault in fan.plan.faults:
            end = fault.end_s if math.isfinite(fault.end_s) else story.scenario.seconds
            shapes.append(
                {
                    "type": "rect",
                    "xref": "x",
                    "yref": "y",
                    "x0": _minutes(fault.start_s),
                    "x1": _minutes(end),
                    "y0": labels.index(fan.label) - 0.35,
                    "y1": labels.index(fan.label) + 0.35,
                    "fillcolor": fault_colour(fault.kind),
                    "opacity": 0.3,
                    "line": {"width": 0},
                    "layer": "below",
                }
            )
    data = []
    for (source, state), (symbol, colour) in _MARKERS.items():
        if source == "notice":
            points = [(n.at_s, f"{n.thing}/{n.fan}", f"{n.subject}<br>{n.text}") for n in story.notices()]
            name = "notification sent"
        else:
            points = [
                (f.at_s, f"{f.thing}/{f.fan}", f.describe())
                for f in story.findings()
                if f.source.value == source and f.state == state
            ]
            name = "RCF anomaly" if source == "rcf" else f"edge alert {state}"
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": f"{name} ({len(points)})",
                "x": [_minutes(at) for at, _, _ in points],
                "y": [label for _, label, _ in points],
                "text": [html.escape(t).replace("&lt;br&gt;", "<br>") for _, _, t in points],
                "hovertemplate": "%{y} at %{x:.2f} min<br>%{text}<extra></extra>",
                "marker": {"symbol": symbol, "color": colour, "size": 10, "line": {"width": 1.5}},
            }
        )
    data += _fault_legend(story)
    layout = {
        "height": 120 + 26 * len(labels),
        "margin": {"l": 150, "r": 20, "t": 30, "b": 40},
        "xaxis": {"title": {"text": "simulated minutes"}, "range": [0, _minutes(story.scenario.seconds)]},
        "yaxis": {
            "type": "category",
            "categoryorder": "array",
            "categoryarray": labels,
            "autorange": "reversed",
            "range": [-0.5, len(labels) - 0.5],
        },
        "shapes": shapes,
        "legend": {"orientation": "h", "y": 1.02, "yanchor": "bottom", "x": 0},
        "plot_bgcolor": "white",
    }
    return {"data": data, "layout": layout}


def _fault_legend(story: Story) -> list[dict[str, Any]]:
    """Legend entries for the fault colours (shapes have none of their own)."""
    kinds = sorted({f.kind for fan in story for f in fan.plan.faults})
    return [
        {
            "type": "scatter",
            "mode": "markers",
            "name": f"fault: {kind}",
            "x": [None],
            "y": [None],
            "marker": {
                "symbol": "square",
                "size": 12,
                "color": fault_colour(kind),
                "opacity": 0.4,
            },
            "hoverinfo": "skip",
        }
        for kind in kinds
    ]


def _fan_chart(story: Story, fan: FanStory) -> dict[str, Any]:
    """Speed (and setpoint) on top, the anomaly score beneath, the fault schedule behind both."""
    plan = fan.plan
    minutes = [_minutes(p.at_s) for p in fan.readings]
    data: list[dict[str, Any]] = [
        {
            "type": "scattergl" if len(minutes) > 5000 else "scatter",
            "mode": "lines",
            "name": "rpm",
            "x": minutes,
            "y": [round(p.rpm, 1) for p in fan.readings],
            "line": {"color": "#1f77b4", "width": 1.3, "shape": "hv"},
            "xaxis": "x",
            "yaxis": "y",
        }
    ]
    if plan.setpoints:
        targets = [p.target_rpm for p in fan.readings]
        data.append(
            _line("setpoint (target_rpm)", minutes, targets, "y", color="#555", dash="dash", shape="hv")
        )
    data.append(_line("anomaly score", *_series(fan.scores), "y2", color="#7f7f7f"))
    if fan.thresholds:
        data.append(_line("threshold", *_series(fan.thresholds), "y2", color="#d62728", dash="dot"))
    rcf = [f for f in fan.findings if f.source is Source.RCF and f.score is not None]
    if rcf:
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": "anomalous score",
                "x": [_minutes(f.at_s) for f in rcf],
                "y": [round(f.score or 0.0, 3) for f in rcf],
                "marker": {"symbol": "x", "size": 9, "color": "#1f1f1f"},
                "xaxis": "x",
                "yaxis": "y2",
            }
        )
    for (source, state), (symbol, colour) in _MARKERS.items():
        if source == "notice":
            points = [(n.at_s, _rpm_at(fan, n.at_s), f"{n.subject}<br>{n.text}") for n in fan.notices]
            name = "notification"
        else:
            found = [f for f in fan.findings if f.source.value == source and f.state == state]
            points = [(f.at_s, f.rpm, f.describe()) for f in found]
            name = "RCF anomaly" if source == "rcf" else f"edge {state}"
        if not points:
            continue
        data.append(
            {
                "type": "scatter",
                "mode": "markers",
                "name": name,
                "x": [_minutes(at) for at, _, _ in points],
                "y": [round(rpm, 1) for _, rpm, _ in points],
                "text": [html.escape(t).replace("&lt;br&gt;", "<br>") for _, _, t in points],
                "hovertemplate": "%{x:.2f} min<br>%{text}<extra></extra>",
                "marker": {"symbol": symbol, "color": colour, "size": 10, "line": {"width": 1.5}},
                "xaxis": "x",
                "yaxis": "y",
            }
        )
    shapes, annotations = _fault_shapes(plan.faults, story.scenario.seconds)
    span = _minutes(story.scenario.seconds)
    layout = {
        "title": {"text": f"<b>{html.escape(fan.label)}</b>: {html.escape(plan.describe())}", "x": 0.01},
        "height": 380,
        "margin": {"l": 60, "r": 10, "t": 40, "b": 40},
        "showlegend": False,
        "xaxis": {
            "domain": [0, 1],
            "anchor": "y2",
            "range": [0, span],
            "title": {"text": "simulated minutes"},
        },
        "yaxis": {"domain": [0.36, 1], "title": {"text": "rpm"}, "rangemode": "tozero"},
        "yaxis2": {"domain": [0, 0.28], "title": {"text": "score"}, "rangemode": "tozero"},
        "shapes": shapes,
        "annotations": annotations,
        "plot_bgcolor": "white",
    }
    return {"data": data, "layout": layout}


def _series(points: Sequence[tuple[float, float]]) -> tuple[list[float], list[float]]:
    """(minutes, values) of (simulated seconds, value) pairs."""
    return [_minutes(at) for at, _ in points], [round(v, 3) for _, v in points]


def _line(
    name: str, x: Sequence[float], y: Sequence[float | None], yaxis: str, **line: object
) -> dict[str, Any]:
    """A line trace on the rpm panel (``y``) or the score panel (``y2``)."""
    return {
        "type": "scatter",
        "mode": "lines",
        "name": name,
        "x": list(x),
        "y": list(y),
        "line": {"width": 1, **line},
        "xaxis": "x",
        "yaxis": yaxis,
    }


def _fault_shapes(faults: Sequence[Any], run_s: float) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """A shaded span per fault from its schedule, over both panels, labelled at the top; overlapping
    faults are labelled on separate lines, each in its own colour."""
    shapes, annotations = [], []
    for i, fault in enumerate(faults):
        end = fault.end_s if math.isfinite(fault.end_s) else run_s
        colour = fault_colour(fault.kind)
        shapes.append(
            {
                "type": "rect",
                "xref": "x",
                "yref": "paper",
                "x0": _minutes(fault.start_s),
                "x1": _minutes(end),
                "y0": 0,
                "y1": 1,
                "fillcolor": colour,
                "opacity": 0.15,
                "line": {"width": 0},
                "layer": "below",
            }
        )
        annotations.append(
            {
                "xref": "x",
                "yref": "paper",
                "x": _minutes(fault.start_s),
                "y": 1 - 0.07 * i,
                "xanchor": "left",
                "yanchor": "top",
                "showarrow": False,
                "text": f"{fault.kind} {window(fault.start_s, fault.end_s)}",
                "font": {"size": 11, "color": colour},
            }
        )
    return shapes, annotations


def _rpm_at(fan: FanStory, at_s: float) -> float:
    before = [p.rpm for p in fan.readings if p.at_s <= at_s]
    return before[-1] if before else fan.plan.normal_rpm


_STYLE: Final = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 .ok { color: #2ca02c; } h1 .failed { color: #d62728; }
.meta { margin: 0.2em 0; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(210px, 1fr)); gap: 0.6em; }
.tile { border: 3px solid #ccc; border-radius: 6px; padding: 0.5em; font-size: 0.9em; }
.tile .name { font-weight: bold; } .tile .state { color: white; padding: 0 0.4em; display: inline-block;
  border-radius: 3px; margin: 0.2em 0; } .tile .why { color: #555; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.9em; }
td, th { border: 1px solid #ddd; padding: 0.25em 0.5em; text-align: left; vertical-align: top; }
td.missed { color: white; background: #d62728; } .sev-critical { color: #d62728; font-weight: bold; }
.fans { display: grid; grid-template-columns: repeat(auto-fill, minmax(560px, 1fr)); gap: 0.8em; }
.chart { min-height: 200px; } .hint { color: #555; font-size: 0.9em; }
"""

_PAGE: Final = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{style}</style>
<script>{plotly}</script>
</head><body>
{body}
<script>
{plots}
</script>
</body></html>
"""

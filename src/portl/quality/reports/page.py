"""The HTML report's own style sheet and the few lines of script that draw its charts."""

STYLE = """
:root { --fg: #1b1b1b; --muted: #5f6368; --line: #dadce0; --bg: #fff; --pass: #1b5e20; --warn: #8a4b00;
  --fail: #b71c1c; --pass-bg: #e8f5e9; --warn-bg: #fff3e0; --fail-bg: #ffebee; }
* { box-sizing: border-box; }
body { margin: 0 auto; max-width: 72rem; padding: 1rem; font: 15px/1.45 system-ui, -apple-system, "Segoe UI",
  Roboto, sans-serif; color: var(--fg); background: var(--bg); }
h1 { font-size: 1.6rem; margin: .2rem 0; overflow-wrap: anywhere; }
h2 { font-size: 1.25rem; border-bottom: 1px solid var(--line); padding-bottom: .2rem; margin-top: 2rem; }
h3 { font-size: 1.05rem; margin-bottom: .3rem; overflow-wrap: anywhere; }
h4 { font-size: .95rem; margin: .6rem 0 .3rem; }
small, .run, figcaption { color: var(--muted); }
code, pre { font-family: ui-monospace, SFMono-Regular, Menlo, Consolas, monospace; font-size: .9em; }
pre { background: #f6f8fa; padding: .6rem; overflow-x: auto; }
nav ul { display: flex; flex-wrap: wrap; gap: .4rem 1rem; list-style: none; padding: 0; margin: .5rem 0; }
.badge { display: inline-block; font-weight: 700; font-size: 1.1rem; padding: .3rem .8rem; border-radius: 1rem; margin: 0; }
.outcome-passed { color: var(--pass); background: var(--pass-bg); }
.outcome-passed_with_warnings { color: var(--warn); background: var(--warn-bg); }
.outcome-failed_checks { color: var(--fail); background: var(--fail-bg); }
.gate { font-size: 1.05rem; }
dl.figures { display: grid; grid-template-columns: repeat(auto-fit, minmax(11rem, 1fr)); gap: .6rem; margin: 1rem 0; }
dl.figures div { border: 1px solid var(--line); border-radius: .4rem; padding: .5rem .7rem; }
dl.figures dt { color: var(--muted); font-size: .85rem; }
dl.figures dd { margin: 0; font-size: 1.15rem; font-weight: 600; }
dl.facts { display: flex; flex-wrap: wrap; gap: .2rem 1.2rem; margin: .4rem 0; }
dl.facts dt { color: var(--muted); } dl.facts dd { margin: 0 0 0 .3rem; }
dl.facts div { display: flex; }
.scroll { overflow-x: auto; margin: .6rem 0; }
table { border-collapse: collapse; width: 100%; }
caption { text-align: left; color: var(--muted); font-size: .9rem; padding: .2rem 0; }
th, td { text-align: left; vertical-align: top; padding: .35rem .5rem; border-bottom: 1px solid var(--line); }
td { overflow-wrap: break-word; }
details { margin: .4rem 0; } summary { cursor: pointer; }
th { background: #f8f9fa; font-weight: 600; }
td.num { text-align: right; font-variant-numeric: tabular-nums; white-space: nowrap; }
.none { color: var(--muted); font-style: italic; }
.sev, .status { white-space: nowrap; }
.sev { font-size: .8rem; font-weight: 700; text-transform: uppercase; letter-spacing: .03em; }
.sev-critical { color: var(--fail); } .sev-warning { color: var(--warn); } .sev-info { color: var(--muted); }
tr.status-failed td:first-child, tr.status-error td:first-child { border-left: 4px solid var(--fail); }
tr.status-failed .status, tr.status-error .status { color: var(--fail); font-weight: 700; }
tr.status-passed .status { color: var(--pass); }
article { border: 1px solid var(--line); border-radius: .4rem; padding: .2rem .9rem .6rem; margin: .8rem 0; }
article.status-failed, article.status-error { border-left: 4px solid var(--fail); }
ul.dates { display: flex; flex-wrap: wrap; gap: .3rem; list-style: none; padding: 0; }
ul.dates li { background: var(--fail-bg); color: var(--fail); padding: .1rem .45rem; border-radius: .3rem;
  font-family: ui-monospace, monospace; font-size: .85rem; }
figure.chart { margin: 1rem 0; border: 1px solid var(--line); border-radius: .4rem; padding: .5rem; }
.plot { width: 100%; min-height: 0; }
footer { margin-top: 2rem; color: var(--muted); font-size: .85rem; }
@media (max-width: 40rem) { body { padding: .5rem; font-size: 14px; } th, td { padding: .3rem; } }
@media print { nav, noscript { display: none; } .plot { break-inside: avoid; } }
"""

# Draws each chart from the JSON beside its figure; the page is complete without it.
PAGE_SCRIPT = """
(function () {
  if (!window.Plotly) { return; }
  var figures = document.querySelectorAll('script[type="application/json"][data-chart]');
  for (var i = 0; i < figures.length; i++) {
    var figure = JSON.parse(figures[i].textContent);
    var target = document.getElementById(figures[i].getAttribute('data-chart') + '-plot');
    Plotly.newPlot(target, figure.data, figure.layout, {responsive: true, displaylogo: false});
  }
})();
"""

/* Draws the dashboard's charts with the vendored Chart.js.
 *
 * A chart is a <canvas data-chart="KIND" data-series="ID">, where ID names a
 * <script type="application/json"> written by Django's json_script. The numbers are always
 * on the page as a table too: the charts only draw them. Runs on page load and after every
 * htmx swap; charts inside content that htmx removes are destroyed first.
 */
(function () {
  "use strict";

  var COLOURS = {
    blue: "#0b5cad", red: "#a40e26", green: "#116329", amber: "#9a6700", purple: "#6639ba",
  };

  function dataset(label, data, colour, extra) {
    var base = { label: label, data: data, borderColor: colour, backgroundColor: colour };
    return Object.assign(base, extra || {});
  }

  var KINDS = {
    requests: function (s) {
      return { type: "bar", datasets: [
        dataset("Requests", s.requests, COLOURS.blue),
        dataset("Errors", s.errors, COLOURS.red),
      ] };
    },
    tokens: function (s) {
      return { type: "bar", stacked: true, datasets: [
        dataset("Input tokens", s.input_tokens, COLOURS.blue),
        dataset("Output tokens", s.output_tokens, COLOURS.purple),
      ] };
    },
    cost: function (s) {
      return { type: "line", datasets: [dataset("Cost (USD)", s.cost_usd, COLOURS.green)] };
    },
    rates: function (s) {
      return { type: "line", max: 100, datasets: [
        dataset("Error rate (%)", s.error_rate, COLOURS.red),
        dataset("Cache hit rate (%)", s.cache_hit_rate, COLOURS.green, { borderDash: [6, 3] }),
      ] };
    },
    latency: function (s) {
      return { type: "line", datasets: [
        dataset("p50 (ms)", s.p50_ms, COLOURS.blue),
        dataset("p95 (ms)", s.p95_ms, COLOURS.amber, { borderDash: [6, 3] }),
      ] };
    },
    daily: function (s) {
      return { type: "bar", datasets: [
        dataset("Requests", s.requests, COLOURS.blue, { yAxisID: "y" }),
        dataset("Cost (USD)", s.cost_usd, COLOURS.green, { type: "line", yAxisID: "cost" }),
      ], costAxis: true };
    },
  };

  function draw(canvas) {
    if (!window.Chart || canvas.dataset.drawn) return;
    var source = document.getElementById(canvas.dataset.series);
    var kind = KINDS[canvas.dataset.chart];
    if (!source || !kind) return;
    var series = JSON.parse(source.textContent);
    var spec = kind(series);
    var scales = {
      x: { stacked: !!spec.stacked },
      y: { stacked: !!spec.stacked, beginAtZero: true, max: spec.max },
    };
    if (spec.costAxis) {
      scales.cost = { position: "right", beginAtZero: true, grid: { drawOnChartArea: false } };
    }
    canvas.dataset.drawn = "yes";
    new window.Chart(canvas, {
      type: spec.type,
      data: { labels: series.labels, datasets: spec.datasets },
      options: {
        animation: false, // nothing moves: faster, and kind to people who get motion sick
        maintainAspectRatio: false,
        spanGaps: true,
        interaction: { mode: "index", intersect: false },
        elements: { line: { borderWidth: 2 }, point: { radius: 2 } },
        plugins: { legend: { position: "bottom", labels: spec.type === "line"
          ? { usePointStyle: true, pointStyle: "line" } : {} } },
        scales: scales,
      },
    });
  }

  function drawAll(root) {
    (root || document).querySelectorAll("canvas[data-chart]").forEach(draw);
  }

  function destroyIn(root) {
    if (!window.Chart || !root || !root.querySelectorAll) return;
    root.querySelectorAll("canvas[data-chart]").forEach(function (canvas) {
      var chart = window.Chart.getChart(canvas);
      if (chart) chart.destroy();
    });
  }

  document.addEventListener("DOMContentLoaded", function () { drawAll(document); });
  document.addEventListener("htmx:beforeSwap", function (event) { destroyIn(event.detail.target); });
  document.addEventListener("htmx:afterSettle", function () { drawAll(document); });
})();

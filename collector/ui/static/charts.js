// The pages' charts, drawn with uPlot (vendored in /static/vendor/, see its README.md).
// Each <figure class="uplot-chart"> holds its spec as JSON in <script type="application/json"
// class="chart-spec"> (built by collector/ui/charts.py; never executed, so the CSP needs no inline
// script). Drawn: hover values in the legend, drag across the plot to zoom (double-click or
// "reset zoom" to return to the whole range), a log toggle for the y axis, and on run pages the
// x axis chosen in #x-axis. Without this script the figure's table of values is the chart.
(() => {
  "use strict";
  const plots = {}; // chart id -> its uPlot (the browser tests read scales from here)
  window.tracehouseCharts = plots;
  const HEIGHT = 220;
  const pad = (n, width = 2) => String(n).padStart(width, "0");

  function number(value) {
    if (value == null || Number.isNaN(value)) return "—";
    const size = Math.abs(value);
    if (value !== 0 && (size >= 1e6 || size < 1e-3)) return value.toExponential(3);
    return String(+value.toPrecision(5));
  }

  // On a log axis spanning decades only the powers of ten are labelled (the minor ticks crowd).
  function numberTicks(splits, log) {
    const decades = log && splits.length > 1 && splits[splits.length - 1] / splits[0] >= 100;
    return splits.map((v) => (decades && Math.abs(Math.log10(v) % 1) > 1e-9 ? "" : number(v)));
  }

  function utcText(seconds) {
    const d = new Date(seconds * 1000);
    return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ` +
      `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}`;
  }

  // Time ticks in UTC at the resolution of the tick step, so no two ticks read the same.
  function timeTicks(figure) {
    return (u, splits, axisIdx, space, step) => {
      const span = u.scales.x.max - u.scales.x.min;
      const labels = splits.map((seconds) => {
        const d = new Date(seconds * 1000);
        const day = `${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())}`;
        const minutes = `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
        if (step >= 86400) return day;
        if (step < 1) return `${minutes}:${pad(d.getUTCSeconds())}.${pad(d.getUTCMilliseconds(), 3)}`;
        if (step < 60) return `${minutes}:${pad(d.getUTCSeconds())}`;
        return span > 86400 ? `${day} ${minutes}` : minutes;
      });
      if (labels.length) figure.dataset.xTicks = JSON.stringify(labels); // the ticks drawn, for tests
      return labels;
    };
  }

  // The columns uPlot draws: x ascending (rows without an x dropped), gaps as null, and on a log
  // axis the values it cannot place (<= 0) as null too.
  function columns(spec, state) {
    const xs = spec.xs[state.x];
    const xLog = !!spec.x_axes[state.x].log;
    const rows = [];
    for (let i = 0; i < xs.length; i++) {
      if (xs[i] != null && !(xLog && xs[i] <= 0)) rows.push(i);
    }
    rows.sort((a, b) => xs[a] - xs[b] || a - b);
    const data = [rows.map((i) => xs[i])];
    for (const series of spec.series) {
      const values = (series.by_x && series.by_x[state.x]) || series.values; // x columns of their own length
      data.push(rows.map((i) => {
        const value = values[i];
        return value == null || (state.log && value <= 0) ? null : value;
      }));
    }
    return data;
  }

  // A value with a gap on both sides has no line to show it: draw it as a point.
  function isolated(u, seriesIndex, show) {
    if (show) return null;
    const ys = u.data[seriesIndex];
    const found = [];
    for (let i = 0; i < ys.length; i++) {
      if (ys[i] != null && (i === 0 || ys[i - 1] == null) && (i === ys.length - 1 || ys[i + 1] == null)) found.push(i);
    }
    return found.length ? found : null;
  }

  // Narrower than the whole range (the window, for a time chart with one)?
  function zoomedIn(u, spec, axis) {
    const xs = u.data && u.data[0];
    if (!xs || !xs.length) return false;
    const [low, high] = axis.time && spec.window ? spec.window : [xs[0], xs[xs.length - 1]];
    return u.scales.x.min > low + 1e-9 || u.scales.x.max < high - 1e-9;
  }

  function options(figure, spec, state, data, width) {
    const axis = spec.x_axes[state.x];
    const x = { time: !!axis.time };
    if (axis.log) Object.assign(x, { distr: 3, log: 10 });
    if (axis.time && spec.window) {
      // The page's window, whatever the data spans; a zoom (a narrower range) is kept as chosen.
      const [start, end] = spec.window;
      const first = data[0][0];
      const last = data[0][data[0].length - 1];
      x.range = (u, min, max) => (min == null || (min <= first && max >= last) ? [start, end] : [min, max]);
    }
    const y = state.log ? { distr: 3, log: 10 } : {};
    const xSeries = { label: axis.label, value: (u, v) => (v == null ? "—" : axis.time ? utcText(v) : number(v)) };
    const lines = spec.series.map((s) => {
      const line = {
        label: s.name, stroke: s.faint ? `${s.color}55` : s.color, width: s.faint ? 1 : 1.5,
        spanGaps: !!spec.span_gaps, value: (u, v) => number(v),
      };
      if (spec.points_only) Object.assign(line, { paths: () => null, points: { show: true, size: 7, fill: s.color } });
      else if (!spec.span_gaps) line.points = { filter: isolated, size: 5, fill: s.color };
      return line;
    });
    const xAxis = { label: axis.label, space: 70 };
    xAxis.values = axis.time ? timeTicks(figure) : (u, splits) => numberTicks(splits, !!axis.log);
    return {
      width, height: HEIGHT,
      tzDate: (seconds) => uPlot.tzDate(new Date(seconds * 1000), "Etc/UTC"),
      cursor: { drag: { x: true, y: false } },
      scales: { x, y },
      axes: [xAxis, { label: spec.y_label || "", size: 64, values: (u, splits) => numberTicks(splits, state.log) }],
      series: [xSeries, ...lines],
      hooks: {
        setScale: [(u, key) => {
          if (key === "x") {
            figure.dataset.xMin = u.scales.x.min;
            figure.dataset.xMax = u.scales.x.max;
            figure.dataset.zoomed = zoomedIn(u, spec, axis) ? "1" : "0";
          }
        }],
      },
    };
  }

  function draw(figure, spec, state) {
    const holder = figure.querySelector(".plot");
    const old = plots[spec.id];
    const zoom = old && old.tracehouseX === state.x && figure.dataset.zoomed === "1"
      ? { min: old.scales.x.min, max: old.scales.x.max } : null;
    if (old) old.destroy();
    const data = columns(spec, state);
    const width = Math.max(240, holder.clientWidth || figure.clientWidth - 16);
    const plot = new uPlot(options(figure, spec, state, data, width), data, holder);
    plot.tracehouseX = state.x;
    plots[spec.id] = plot;
    if (zoom) plot.setScale("x", zoom);
    figure.dataset.log = state.log ? "1" : "0";
    figure.dataset.x = state.x;
    figure.dataset.drawn = "1";
  }

  function tools(figure, spec, state) {
    const bar = document.createElement("span");
    bar.className = "chart-tools";
    const reset = document.createElement("button");
    reset.type = "button";
    reset.className = "reset-zoom";
    reset.textContent = "reset zoom";
    reset.addEventListener("click", () => {
      const plot = plots[spec.id];
      plot.setData(plot.data, true); // back to the whole range (the window, for time charts)
      figure.dataset.zoomed = "0";
    });
    bar.append(reset);
    if (spec.log_ok) {
      const label = document.createElement("label");
      const box = document.createElement("input");
      box.type = "checkbox";
      box.className = "log-toggle";
      box.checked = state.log;
      box.addEventListener("change", () => {
        state.log = box.checked;
        draw(figure, spec, state);
      });
      label.append(box, " log y");
      bar.append(label);
    }
    figure.querySelector("figcaption").append(bar);
  }

  function chosenX(spec) {
    const picker = document.getElementById("x-axis");
    const wanted = picker && picker.value;
    return wanted && spec.xs[wanted] && spec.x_axes[wanted] ? wanted : spec.x;
  }

  function start() {
    if (typeof uPlot === "undefined") return; // the tables stay
    const states = [];
    for (const figure of document.querySelectorAll("figure.uplot-chart")) {
      const block = figure.querySelector("script.chart-spec");
      if (!block) continue;
      const spec = JSON.parse(block.textContent);
      const state = { x: chosenX(spec), log: !!spec.log };
      tools(figure, spec, state);
      draw(figure, spec, state);
      states.push([figure, spec, state]);
    }
    const picker = document.getElementById("x-axis");
    if (picker) {
      picker.addEventListener("change", () => {
        for (const [figure, spec, state] of states) {
          state.x = chosenX(spec);
          figure.dataset.zoomed = "0";
          draw(figure, spec, state);
        }
        const url = new URL(window.location.href);
        url.searchParams.set("x", picker.value);
        window.history.replaceState(null, "", url);
      });
    }
    let pending = null;
    window.addEventListener("resize", () => {
      clearTimeout(pending);
      pending = setTimeout(() => {
        for (const [figure, spec] of states) {
          const holder = figure.querySelector(".plot");
          plots[spec.id].setSize({ width: Math.max(240, holder.clientWidth), height: HEIGHT });
        }
      }, 150);
    });
  }

  document.addEventListener("DOMContentLoaded", start);
})();

// The console dashboard: polls /console/api/stats every few seconds and draws
// three small SVG charts (throughput, latency, status mix). No library: a
// bar, two lines and a stacked bar are a few dozen lines of DOM.
"use strict";

(function () {
  const POLL_MS = 5000;
  const NS = "http://www.w3.org/2000/svg";
  const WIDTH = 960;
  const PAD = { left: 52, right: 10, top: 10, bottom: 24 };
  const STATUSES = ["PENDING", "REQUIRES_ACTION", "AUTHORIZED", "CAPTURED", "REFUNDED", "FAILED", "CANCELED"];

  const root = document.getElementById("dashboard");
  if (!root) {
    return;
  }
  const statsUrl = root.dataset.statsUrl;
  const signInUrl = root.dataset.signInUrl;
  let timer = null;
  let busy = false;

  function node(name, attributes, text) {
    const element = document.createElementNS(NS, name);
    for (const [key, value] of Object.entries(attributes || {})) {
      element.setAttribute(key, String(value));
    }
    if (text !== undefined) {
      element.textContent = text;
    }
    return element;
  }

  function canvas(containerId, height) {
    const container = document.getElementById(containerId);
    const svg = node("svg", { viewBox: `0 0 ${WIDTH} ${height}`, role: "img" });
    container.replaceChildren(svg);
    return svg;
  }

  // A round ceiling for the y axis: 1, 2 or 5 times a power of ten.
  function niceMax(value) {
    if (!(value > 0)) {
      return 1;
    }
    const power = Math.pow(10, Math.floor(Math.log10(value)));
    for (const step of [1, 2, 5, 10]) {
      if (value <= step * power) {
        return step * power;
      }
    }
    return 10 * power;
  }

  function clock(iso) {
    return iso.slice(11, 16);
  }

  function frame(svg, height, minutes, top, unit) {
    const bottom = height - PAD.bottom;
    svg.append(node("line", { class: "axis", x1: PAD.left, y1: bottom, x2: WIDTH - PAD.right, y2: bottom }));
    svg.append(node("line", { class: "axis", x1: PAD.left, y1: PAD.top, x2: PAD.left, y2: bottom }));
    svg.append(node("text", { class: "tick", x: PAD.left - 6, y: PAD.top + 8, "text-anchor": "end" }, `${top}${unit}`));
    svg.append(node("text", { class: "tick", x: PAD.left - 6, y: bottom, "text-anchor": "end" }, `0${unit}`));
    const last = minutes.length - 1;
    for (const index of [0, Math.floor(last / 2), last]) {
      const x = xAt(index, minutes.length);
      svg.append(node("text", { class: "tick", x: x, y: height - 6, "text-anchor": "middle" }, clock(minutes[index].minute)));
    }
  }

  function xAt(index, count) {
    const span = WIDTH - PAD.left - PAD.right;
    return PAD.left + (span * (index + 0.5)) / count;
  }

  function yAt(value, top, height) {
    const span = height - PAD.top - PAD.bottom;
    return height - PAD.bottom - (span * value) / top;
  }

  function drawThroughput(minutes) {
    const height = 180;
    const svg = canvas("throughput-chart", height);
    const top = niceMax(Math.max(...minutes.map((m) => m.created)));
    frame(svg, height, minutes, top, "");
    const width = ((WIDTH - PAD.left - PAD.right) / minutes.length) * 0.8;
    minutes.forEach((m, index) => {
      if (m.created > 0) {
        const y = yAt(m.created, top, height);
        const bar = node("rect", {
          class: "bar",
          x: xAt(index, minutes.length) - width / 2,
          y: y,
          width: width,
          height: height - PAD.bottom - y,
        });
        bar.append(node("title", {}, `${clock(m.minute)}: ${m.created} created`));
        svg.append(bar);
      }
    });
  }

  // One polyline per run of minutes that have a value: a quiet minute is a gap.
  function lines(svg, minutes, field, top, height, className) {
    let points = [];
    const flush = () => {
      if (points.length > 0) {
        const shape = points.length === 1 ? "circle" : "polyline";
        if (shape === "circle") {
          const [x, y] = points[0].split(",");
          svg.append(node("circle", { class: className, cx: x, cy: y, r: 2 }));
        } else {
          svg.append(node("polyline", { class: className, points: points.join(" ") }));
        }
      }
      points = [];
    };
    minutes.forEach((m, index) => {
      const value = m[field];
      if (value === null || value === undefined) {
        flush();
      } else {
        points.push(`${xAt(index, minutes.length)},${yAt(Math.min(value, top), top, height)}`);
      }
    });
    flush();
  }

  function drawLatency(minutes) {
    const height = 180;
    const svg = canvas("latency-chart", height);
    const values = minutes.flatMap((m) => [m.p50Ms, m.p99Ms]).filter((v) => v !== null);
    const top = niceMax(values.length > 0 ? Math.max(...values) : 0);
    frame(svg, height, minutes, top, " ms");
    lines(svg, minutes, "p50Ms", top, height, "p50");
    lines(svg, minutes, "p99Ms", top, height, "p99");
  }

  function drawStatusMix(mix) {
    const height = 60;
    const svg = canvas("status-chart", height);
    const total = Object.values(mix).reduce((sum, n) => sum + n, 0);
    if (total === 0) {
      svg.append(node("text", { class: "mix-label", x: PAD.left, y: 24 }, "No payments in the last hour."));
      return;
    }
    const span = WIDTH - PAD.left - PAD.right;
    let x = PAD.left;
    for (const status of STATUSES.concat(Object.keys(mix).filter((s) => !STATUSES.includes(s)))) {
      const count = mix[status] || 0;
      if (count === 0) {
        continue;
      }
      const width = (span * count) / total;
      const part = node("rect", { class: `mix-${status.toLowerCase()}`, x: x, y: 4, width: width, height: 24 });
      part.append(node("title", {}, `${status}: ${count}`));
      svg.append(part);
      if (width > 60) {
        svg.append(node("text", { class: "mix-label", x: x + 4, y: 46 }, `${status} ${count}`));
      }
      x += width;
    }
  }

  function showError(text) {
    const box = document.getElementById("stats-error");
    box.textContent = text || "";
    box.hidden = !text;
  }

  async function poll() {
    timer = null;
    busy = true;
    try {
      const response = await fetch(statsUrl, {
        credentials: "same-origin",
        headers: { Accept: "application/json" },
        cache: "no-store",
      });
      if (response.status === 401) {
        window.location.assign(`${signInUrl}?next=${encodeURIComponent("/console/")}`);
        return;
      }
      if (!response.ok) {
        throw new Error(`the stats answered ${response.status}`);
      }
      const stats = await response.json();
      drawThroughput(stats.minutes);
      drawLatency(stats.minutes);
      drawStatusMix(stats.statusMix);
      document.getElementById("total-created").textContent = String(stats.created);
      document.getElementById("updated-at").textContent = new Date().toLocaleTimeString();
      showError(null);
    } catch (error) {
      showError(`Could not refresh: ${error.message}`);
    }
    busy = false;
    schedule();
  }

  function schedule() {
    if (timer === null && !document.hidden) {
      timer = window.setTimeout(poll, POLL_MS);
    }
  }

  document.addEventListener("visibilitychange", () => {
    if (!document.hidden && timer === null && !busy) {
      poll();
    }
  });
  poll();
})();

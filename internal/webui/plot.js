// plot.js: small time-series plots drawn in SVG by the page itself (no library, nothing fetched).
"use strict";

const Plot = (() => {
  const NS = "http://www.w3.org/2000/svg";
  const W = 1000, H = 100; // the SVG's own coordinates; it is stretched over its box

  // niceMax rounds a positive maximum up to 1, 2 or 5 × 10^k (1 for nothing).
  function niceMax(v) {
    if (!(v > 0)) return 1;
    const p = Math.pow(10, Math.floor(Math.log10(v)));
    for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
    return 10 * p;
  }

  // draw renders series into box (a .plot-box element): series is a list of
  // {name, cls, points: [[x, y], ...]} with x increasing and y a number or null (a gap); x0..x1 is
  // the x range shown; fmt formats the y-axis maximum. What is drawn is kept as JSON in
  // box.dataset.plot ({name, points} per series, the points inside the range), for tests and tools.
  function draw(box, series, x0, x1, fmt) {
    let svg = box.querySelector("svg");
    let label = box.querySelector(".ymax");
    if (!svg) {
      svg = document.createElementNS(NS, "svg");
      svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
      svg.setAttribute("preserveAspectRatio", "none");
      svg.setAttribute("aria-hidden", "true");
      label = document.createElement("span");
      label.className = "ymax";
      box.append(svg, label);
    }
    const shown = series.map(s => ({
      name: s.name, cls: s.cls,
      points: s.points.filter(p => p[0] >= x0 && p[0] <= x1),
    }));
    let ymax = 0;
    for (const s of shown) for (const p of s.points) if (p[1] != null && p[1] > ymax) ymax = p[1];
    ymax = niceMax(ymax);
    const X = x => ((x - x0) / Math.max(1, x1 - x0)) * W;
    const Y = y => H - (Math.min(y, ymax) / ymax) * H;

    svg.replaceChildren();
    const grid = document.createElementNS(NS, "line");
    grid.setAttribute("class", "grid");
    grid.setAttribute("x1", 0); grid.setAttribute("x2", W);
    grid.setAttribute("y1", H / 2); grid.setAttribute("y2", H / 2);
    grid.setAttribute("vector-effect", "non-scaling-stroke");
    svg.append(grid);
    for (const s of shown) {
      let seg = [];
      const flush = () => {
        if (seg.length === 1) seg.push([seg[0][0] + 4, seg[0][1]]); // a lone point shows as a dash
        if (seg.length > 1) {
          const pl = document.createElementNS(NS, "polyline");
          pl.setAttribute("class", s.cls);
          pl.setAttribute("points", seg.map(p => p[0].toFixed(1) + "," + p[1].toFixed(1)).join(" "));
          svg.append(pl);
        }
        seg = [];
      };
      for (const p of s.points) {
        if (p[1] == null) { flush(); continue; }
        seg.push([X(p[0]), Y(p[1])]);
      }
      flush();
    }
    label.textContent = fmt(ymax);
    box.dataset.plot = JSON.stringify(shown.map(s => ({ name: s.name, points: s.points })));
  }

  return { draw, niceMax };
})();

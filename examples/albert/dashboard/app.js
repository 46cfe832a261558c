// app.js: albert's training dashboard. Every POLL_MS it reads /data (the monitor's aggregate) from
// the monitor that served it and redraws; when it cannot, it says so and keeps the last data.
"use strict";

const POLL_MS = 2000;
const TIMEOUT_MS = 4000;
const KINDS = { go: "Go", hivemind: "Python (hivemind)", other: "other", unknown: "unknown" };

let lastOK = null, downSince = null, failures = 0;

function fmtNum(v, digits) { return v == null ? "–" : v.toFixed(digits); }
function fmtRate(v) { return v == null ? "–" : v < 100 ? v.toFixed(1) : Math.round(v).toString(); }
function fmtDuration(sec) {
  if (!(sec >= 0)) return "–";
  sec = Math.round(sec);
  const h = Math.floor(sec / 3600), m = Math.floor(sec / 60) % 60, s = sec % 60;
  return h ? `${h}h ${m}m` : m ? `${m}m ${s}s` : `${s}s`;
}
function fmtClock(d) { return d.toLocaleTimeString([], { hour12: false }); }
function shortID(id) { return id && id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id || "–"; }

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k === "text") e.textContent = v; else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}
function setText(field, text) {
  for (const e of document.querySelectorAll(`[data-field="${field}"]`)) if (e.textContent !== text) e.textContent = text;
}

function render(d) {
  document.getElementById("run").textContent = d.run_id;
  document.getElementById("waiting").hidden = d.found;
  setText("step", d.found ? String(d.step) : "–");
  setText("loss", fmtNum(d.loss, 4));
  setText("samples_per_second", d.found ? fmtRate(d.samples_per_second) : "–");
  setText("alive_peers", d.found ? String(d.alive_peers) : "–");
  if (d.eta != null) {
    const left = d.eta - d.now;
    setText("eta", left < 0.5 ? "due now" : `in ${fmtDuration(left)}`);
  } else setText("eta", "–");
  const frac = d.target_batch_size > 0 ? Math.min(1, d.epoch_samples / d.target_batch_size) : 0;
  document.querySelector('[data-field="progress_bar"]').style.width = `${(frac * 100).toFixed(1)}%`;
  setText("epoch_progress", `epoch ${d.epoch}: ${d.epoch_samples} / ${d.target_batch_size} samples`);

  const h = d.history || [];
  const x0 = h.length ? h[0].step : 0, x1 = h.length ? Math.max(h[h.length - 1].step, x0 + 1) : 1;
  setText("first_step", h.length ? String(x0) : "");
  setText("last_step", h.length ? String(h[h.length - 1].step) : "");
  Plot.draw(document.querySelector('[data-plot-kind="loss"]'),
    [{ name: "loss", cls: "s1", points: h.map(p => [p.step, p.loss]) }], x0, x1, v => v.toString());
  Plot.draw(document.querySelector('[data-plot-kind="throughput"]'),
    [{ name: "samples_per_second", cls: "s2", points: h.map(p => [p.step, p.samples_per_second]) }], x0, x1, v => `${v}/s`);

  const tbody = document.querySelector("#peers tbody");
  tbody.replaceChildren(...(d.peers || []).map(p => {
    const td = (label, cls, ...c) => el("td", { "data-label": label, class: cls }, ...c);
    return el("tr", { "data-owner": p.owner },
      td("Trainer", "", el("code", { text: p.owner })),
      td("Peer", "", el("code", { title: p.peer_id || "", text: shortID(p.peer_id) })),
      td("Kind", "", el("span", { class: `tag ${p.kind}`, "data-field": "kind", text: KINDS[p.kind] || p.kind }),
        p.client_mode ? " client" : ""),
      td("Step", "num", String(p.step)),
      td("Loss", "num", fmtNum(p.loss, 4)),
      td("Samples/s", "num", fmtRate(p.samples_per_second)),
      td("Epoch progress", "num", p.epoch == null ? "–" : `epoch ${p.epoch}: ${p.epoch_samples} samples`),
      td("Last report", "num", p.last_report ? `${fmtDuration(d.now - p.last_report)} ago` : "–"),
    );
  }));
  document.body.dataset.dataTime = String(d.now);
}

async function poll() {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    const r = await fetch("/data", { cache: "no-store", signal: ctl.signal });
    if (!r.ok) throw new Error(`HTTP ${r.status}`);
    const d = await r.json();
    lastOK = new Date(); failures = 0; downSince = null;
    render(d);
    document.body.classList.remove("stale");
    document.getElementById("banner").hidden = true;
    const c = document.getElementById("conn");
    c.classList.remove("down");
    c.textContent = `live · updated ${fmtClock(lastOK)}`;
  } catch (err) {
    failures++;
    if (!downSince) downSince = new Date();
    document.body.classList.add("stale");
    const b = document.getElementById("banner");
    b.hidden = false;
    b.textContent = `Monitor unreachable since ${fmtClock(downSince)} (${failures} failed ${failures === 1 ? "try" : "tries"}: ${err.message || err}). ` +
      (lastOK ? `The figures below are from ${fmtClock(lastOK)}. ` : "") + "Retrying every 2 s.";
    const c = document.getElementById("conn");
    c.classList.add("down");
    c.textContent = "monitor unreachable";
  } finally {
    clearTimeout(t);
    setTimeout(poll, POLL_MS);
  }
}

poll();

// app.js: the supervisor's status page. Every POLL_MS it reads /status and /series from the
// supervisor that served it and redraws; when they cannot be read it says so and keeps the last
// data on screen, greyed, until the supervisor answers again.
"use strict";

const POLL_MS = 2000;
const TIMEOUT_MS = 4000;
const WINDOW_MS = 5 * 60 * 1000; // the plots show the last five minutes
const MAX_ROWS = 40;               // swarm rows beyond the connected peers

const STATES = {
  running: { text: "running", tone: "ok" },
  starting: { text: "starting", tone: "warn" },
  backoff: { text: "restarting", tone: "warn" },
  stopping: { text: "stopping", tone: "idle" },
  stopped: { text: "stopped", tone: "idle" },
  failed: { text: "gave up", tone: "bad" },
  idle: { text: "waiting", tone: "idle" },
};
const KINDS = { go: "Go worker", hivemind: "hivemind (p2pd)", other: "other", unknown: "unknown" };

let lastOK = null;      // Date of the last successful poll
let downSince = null;   // Date of the first failed poll of the current outage
let failures = 0;

// ---- formatting -------------------------------------------------------------------------------

function fmtDuration(sec) {
  if (!(sec >= 0)) return "–";
  sec = Math.floor(sec);
  const d = Math.floor(sec / 86400), h = Math.floor(sec / 3600) % 24, m = Math.floor(sec / 60) % 60, s = sec % 60;
  if (d) return `${d}d ${h}h`;
  if (h) return `${h}h ${m}m`;
  if (m) return `${m}m ${s}s`;
  return `${s}s`;
}
function fmtBytes(b) {
  if (!b) return "–";
  const units = ["B", "KiB", "MiB", "GiB"];
  let i = 0;
  while (b >= 1024 && i < units.length - 1) { b /= 1024; i++; }
  return `${b.toFixed(i ? 1 : 0)} ${units[i]}`;
}
function fmtRate(v) { return v == null ? "–" : v < 10 ? v.toFixed(1) : Math.round(v).toString(); }
function fmtMs(ms) {
  if (ms == null) return "–";
  if (ms < 1) return `${(ms * 1000).toFixed(0)} µs`;
  if (ms < 10) return `${ms.toFixed(1)} ms`;
  return `${Math.round(ms)} ms`;
}
function fmtClock(d) { return d.toLocaleTimeString([], { hour12: false }); }
function shortID(id) { return id && id.length > 16 ? `${id.slice(0, 8)}…${id.slice(-6)}` : id || "–"; }
function ago(now, iso) {
  if (!iso) return null;
  return fmtDuration((now - Date.parse(iso)) / 1000) + " ago";
}

// ---- DOM helpers ------------------------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v;
    else if (k === "text") e.textContent = v;
    else e.setAttribute(k, v);
  }
  e.append(...children);
  return e;
}
function setText(root, field, text) {
  const e = root.querySelector(`[data-field="${field}"]`);
  if (e && e.textContent !== text) e.textContent = text;
}
function copyButton(getText) {
  const b = el("button", { class: "copy", type: "button", text: "copy" });
  b.addEventListener("click", async () => {
    const text = getText();
    try {
      await navigator.clipboard.writeText(text);
    } catch {
      const ta = el("textarea", {}); ta.value = text; document.body.append(ta); ta.select();
      document.execCommand("copy"); ta.remove();
    }
    b.textContent = "copied"; b.classList.add("done");
    setTimeout(() => { b.textContent = "copy"; b.classList.remove("done"); }, 1500);
  });
  return b;
}

// ---- cards ------------------------------------------------------------------------------------

const FACTS = [
  ["uptime", "uptime"], ["pid", "PID"], ["restarts", "restarts"],
  ["routing_table_size", "routing table"], ["stored_keys", "stored keys"], ["cached_keys", "cached keys"],
  ["connected_peers", "connected peers"], ["rpc_sent", "DHT sent/s"], ["rpc_served", "served/s"],
  ["rss", "RSS"], ["reachability", "reachability"], ["conns", "direct / relayed"],
  ["relays", "relays"], ["circuits", "circuits relayed"],
];

// natFacts are a worker's reachability facts as the card shows them ("–" before a health check):
// relays is how many relays hold a reservation for it, circuits how many it relays for others now.
function natFacts(n) {
  if (!n || !n.reachability) return { reachability: "–", conns: "–", relays: "–", circuits: "–" };
  return {
    reachability: n.reachability + (n.reachability_forced ? " (forced)" : ""),
    conns: `${n.direct_conns} / ${n.relayed_conns}`,
    relays: String((n.reservations || []).length),
    circuits: String(n.circuits_open),
  };
}

function newCard(name) {
  const facts = el("dl", { class: "facts" });
  for (const [f, label] of FACTS) facts.append(el("div", {}, el("dt", { text: label }), el("dd", { "data-field": f, text: "–" })));
  const card = el("article", { class: "card", "data-slot": name },
    el("header", {}, el("h3", { text: name }), el("span", { class: "badge", "data-field": "state", text: "…" })),
    el("p", { class: "alert", "data-field": "alert" }),
    facts,
    el("div", { class: "ident" }, el("span", { class: "label", text: "peer" }), el("code", { "data-field": "peer_id", text: "–" })),
    el("details", { class: "addrs" }, el("summary", { "data-field": "addrs_summary", text: "addresses" }), el("ul", {})),
    el("div", { class: "plots" }, plotFigure("rate", "requests/s", [["s1", "served"], ["s2", "DHT sent"]]),
      plotFigure("latency", "latency of served", [["s1", "p50"], ["s3", "p99"]])),
  );
  const ident = card.querySelector(".ident");
  ident.append(copyButton(() => card.dataset.peerId || ""));
  return card;
}

function plotFigure(kind, title, keys) {
  const cap = el("figcaption", {}, el("b", { text: title }));
  for (const [cls, name] of keys) cap.append(el("span", { class: `key ${cls}`, text: name }));
  return el("figure", { class: "plot" }, cap,
    el("div", { class: "plot-box", "data-plot-kind": kind }),
    el("div", { class: "plot-axis" }, el("span", { "data-field": "since", text: "" }), el("span", { text: "now" })));
}

function renderCard(card, s, latest, serverNow) {
  const st = STATES[s.state] || { text: s.state, tone: "idle" };
  let tone = st.tone, stateText = st.text;
  if (s.state === "running" && s.alone) stateText = "running (alone)";
  if (s.state === "running" && s.restarts > 0) tone = "warn";
  card.className = `card ${tone}`;
  card.dataset.state = s.state;
  setText(card, "state", stateText);

  let alert = "";
  if (s.state === "failed") alert = `Gave up after ${s.restarts} restarts: ${s.error || s.last_exit || "unknown reason"}`;
  else if (s.state === "backoff") alert = `Worker exited ${ago(serverNow, s.last_exit_at) || ""}: ${s.last_exit || "unknown reason"} — restarting`;
  else if (s.restarts > 0) alert = `Restarted ${s.restarts}× — last exit ${ago(serverNow, s.last_exit_at) || ""}: ${s.last_exit || "unknown reason"}`;
  setText(card, "alert", alert);

  const running = s.state === "running";
  setText(card, "uptime", running ? fmtDuration((serverNow - Date.parse(s.since)) / 1000) : "–");
  setText(card, "pid", s.pid ? String(s.pid) : "–");
  setText(card, "restarts", String(s.restarts));
  setText(card, "routing_table_size", String(s.routing_table_size));
  setText(card, "stored_keys", String(s.stored_keys));
  setText(card, "cached_keys", String(s.cached_keys ?? 0));
  setText(card, "connected_peers", String(s.connected_peers));
  setText(card, "rss", fmtBytes(s.rss_bytes));
  setText(card, "rpc_sent", running && latest ? fmtRate(latest.sent_per_sec) : "–");
  setText(card, "rpc_served", running && latest ? fmtRate(latest.served_per_sec) : "–");
  const nat = natFacts(s.nat);
  for (const f of Object.keys(nat)) setText(card, f, nat[f]);
  card.querySelector('[data-field="reachability"]').dataset.reach = (s.nat && s.nat.reachability) || "";

  card.dataset.peerId = s.peer_id || "";
  setText(card, "peer_id", s.peer_id || "–");
  card.querySelector('[data-field="peer_id"]').title = s.peer_id || "";
  // The addresses it started with, then those through its relays (a reservation gives them later).
  const relayAddrs = ((s.nat && s.nat.relay_addrs) || []).map(a => s.peer_id ? `${a}/p2p/${s.peer_id}` : a);
  const maddrs = [...(s.maddrs || []), ...relayAddrs.filter(a => !(s.maddrs || []).includes(a))];
  setText(card, "addrs_summary", `addresses (${maddrs.length})`);
  const ul = card.querySelector("details.addrs ul");
  if (ul.dataset.addrs !== maddrs.join(" ")) {
    ul.dataset.addrs = maddrs.join(" ");
    ul.replaceChildren(...maddrs.map(m => el("li", {}, el("code", { title: m, text: m }), copyButton(() => m))));
  }
}

function renderPlots(card, points, serverNow) {
  // The last five minutes, or since the first point when there is less.
  const first = points.length ? Date.parse(points[0].t) : serverNow;
  const x1 = serverNow, x0 = Math.max(serverNow - WINDOW_MS, Math.min(first, serverNow - 10000));
  for (const e of card.querySelectorAll('[data-field="since"]')) e.textContent = fmtDuration((x1 - x0) / 1000) + " ago";
  const pts = field => points.map(p => [Date.parse(p.t), p[field]]);
  Plot.draw(card.querySelector('[data-plot-kind="rate"]'), [
    { name: "served_per_sec", cls: "s1", points: pts("served_per_sec") },
    { name: "sent_per_sec", cls: "s2", points: pts("sent_per_sec") },
  ], x0, x1, v => `${v}/s`);
  Plot.draw(card.querySelector('[data-plot-kind="latency"]'), [
    { name: "p50_ms", cls: "s1", points: pts("p50_ms") },
    { name: "p99_ms", cls: "s3", points: pts("p99_ms") },
  ], x0, x1, v => fmtMs(v));
}

// ---- summary and swarm ------------------------------------------------------------------------

function renderSummary(st, peers) {
  const slots = st.slots;
  const running = slots.filter(s => s.state === "running").length;
  const restarts = slots.reduce((n, s) => n + s.restarts, 0);
  const failed = slots.filter(s => s.state === "failed").length;
  const kinds = {};
  for (const p of peers.values()) if (!p.worker) kinds[p.kind] = (kinds[p.kind] || 0) + 1;
  const outside = Object.values(kinds).reduce((a, b) => a + b, 0);
  const parts = Object.entries(kinds).map(([k, n]) => `${n} ${KINDS[k] || k}`).join(", ");
  const pill = (cls, field, ...content) => el("span", { class: `pill ${cls}`, "data-field": field }, ...content);
  document.getElementById("summary").replaceChildren(
    pill(running === slots.length ? "" : "warn", "running", el("b", { text: `${running}/${slots.length}` }), " workers running"),
    pill(failed ? "bad" : "", "failed", el("b", { text: String(failed) }), " gave up"),
    pill(restarts ? "warn" : "", "restarts_total", el("b", { text: String(restarts) }), " restarts"),
    pill("", "outside_peers", el("b", { text: String(outside) }), ` peers outside the pool${parts ? ` (${parts})` : ""}`),
    pill("", "supervisor", `supervisor pid ${st.pid}`),
  );
}

// collectPeers merges the workers' peers by peer ID; a peer that is one of the pool's own workers
// is marked with its slot name.
function collectPeers(slots) {
  const own = new Map(slots.filter(s => s.peer_id).map(s => [s.peer_id, s.name]));
  const peers = new Map();
  for (const s of slots) {
    if (s.state !== "running") continue;
    for (const p of s.peers || []) {
      let e = peers.get(p.peer_id);
      if (!e) {
        e = { id: p.peer_id, kind: p.kind, agent: p.agent || "", worker: own.get(p.peer_id) || "", seen: [] };
        peers.set(p.peer_id, e);
      }
      if (p.agent && !e.agent) { e.agent = p.agent; e.kind = p.kind; }
      e.seen.push({ slot: s.name, ...p });
    }
  }
  return peers;
}

// inTables names the workers whose routing table holds p (an empty string when none does).
function inTables(p) {
  const slots = p.seen.filter(x => x.in_routing_table).map(x => x.slot);
  return slots.length ? el("span", { class: "sub", "data-field": "in-table", text: `in the routing table of ${slots.join(", ")}` }) : "";
}

function renderSwarm(peers, serverNow) {
  const tbody = document.querySelector("#swarm tbody");
  // The pool's workers first, then peers connected or in a routing table, then the most recent
  // other DHT contacts.
  const rank = p => p.worker ? 0 : p.seen.some(x => x.connected || x.in_routing_table) ? 1 : 2;
  const heard = p => p.seen.map(x => x.dht_last_answer || x.dht_last_request || "").sort().pop() || "";
  const all = [...peers.values()].sort((a, b) => rank(a) - rank(b) || (a.worker || "").localeCompare(b.worker || "") ||
    heard(b).localeCompare(heard(a)) || a.id.localeCompare(b.id));
  const rows = all.filter((p, i) => rank(p) < 2 || i < MAX_ROWS);
  const more = document.getElementById("swarm-more");
  more.hidden = rows.length === all.length;
  more.textContent = `${all.length - rows.length} older DHT contacts not shown (see /status).`;
  document.getElementById("swarm-empty").hidden = all.length > 0;
  tbody.replaceChildren(...rows.map(p => {
    const connected = p.seen.filter(x => x.connected);
    const relayed = connected.length > 0 && connected.every(x => x.relayed);
    const conn = connected.length === 0 ? el("span", { class: "tag gone", text: "not connected" })
      : el("span", { class: `tag ${relayed ? "relayed" : ""}`, text: relayed ? "relayed" : "direct" });
    const lat = p.seen.map(x => (x.dht_rtt_ns || x.latency_ns || 0) / 1e6).filter(v => v > 0);
    const answers = p.seen.map(x => x.dht_last_answer).filter(Boolean).sort().reverse();
    const requests = p.seen.map(x => x.dht_last_request).filter(Boolean).sort().reverse();
    const dht = answers.length ? `answered ${ago(serverNow, answers[0])}`
      : requests.length ? `asked ${ago(serverNow, requests[0])}` : "–";
    const addrs = [...new Set(connected.flatMap(x => x.addrs || []))];
    const td = (label, ...c) => el("td", { "data-label": label }, ...c);
    return el("tr", { "data-peer": p.id },
      td("Peer", el("code", { title: p.id, text: shortID(p.id) }), p.worker ? el("span", { class: "sub", text: `pool ${p.worker}` }) : ""),
      td("Kind", el("span", { class: `tag ${p.kind}`, "data-field": "kind", text: KINDS[p.kind] || p.kind }),
        p.agent ? el("span", { class: "sub", text: p.agent }) : ""),
      td("Seen by", p.seen.map(x => x.slot).join(", "), inTables(p)),
      td("Connection", conn, addrs.length ? el("span", { class: "sub", text: addrs[0] + (addrs.length > 1 ? ` +${addrs.length - 1}` : "") }) : ""),
      td("Latency", lat.length ? fmtMs(Math.min(...lat)) : "–"),
      td("DHT", dht),
    );
  }));
}

// ---- polling ----------------------------------------------------------------------------------

async function getJSON(path) {
  const ctl = new AbortController();
  const t = setTimeout(() => ctl.abort(), TIMEOUT_MS);
  try {
    const r = await fetch(path, { cache: "no-store", signal: ctl.signal });
    if (!r.ok) throw new Error(`${path}: HTTP ${r.status}`);
    return await r.json();
  } finally {
    clearTimeout(t);
  }
}

function render(st, series) {
  const serverNow = Date.parse(st.time);
  const bySlot = new Map((series.slots || []).map(s => [s.name, s.points || []]));
  const box = document.getElementById("workers");
  for (const s of st.slots) {
    let card = box.querySelector(`[data-slot="${CSS.escape(s.name)}"]`);
    if (!card) { card = newCard(s.name); box.append(card); }
    const points = bySlot.get(s.name) || [];
    renderCard(card, s, points[points.length - 1], serverNow);
    renderPlots(card, points, serverNow);
  }
  const peers = collectPeers(st.slots);
  renderSummary(st, peers);
  renderSwarm(peers, serverNow);
  document.body.dataset.statusTime = st.time;
}

function showUp() {
  failures = 0; downSince = null;
  document.body.classList.remove("stale");
  document.getElementById("banner").hidden = true;
  const c = document.getElementById("conn");
  c.classList.remove("down");
  c.textContent = `live · updated ${fmtClock(lastOK)}`;
}

function showDown(err) {
  failures++;
  if (!downSince) downSince = new Date();
  document.body.classList.add("stale");
  const b = document.getElementById("banner");
  b.hidden = false;
  b.textContent = `Supervisor unreachable since ${fmtClock(downSince)} (${failures} failed ${failures === 1 ? "try" : "tries"}: ${err.message || err}). ` +
    (lastOK ? `The figures below are from ${fmtClock(lastOK)}. ` : "") + "Retrying every 2 s.";
  const c = document.getElementById("conn");
  c.classList.add("down");
  c.textContent = "supervisor unreachable";
}

async function poll() {
  try {
    const [st, series] = await Promise.all([getJSON("/status"), getJSON("/series")]);
    lastOK = new Date();
    render(st, series);
    showUp();
  } catch (err) {
    showDown(err);
  } finally {
    setTimeout(poll, POLL_MS);
  }
}

poll();

// The operators' console: plain DOM, no framework. The session is an HttpOnly cookie; changes
// carry the session's CSRF token in X-CSRF-Token (returned by /api/login and /api/me).
"use strict";

const $ = (id) => document.getElementById(id);
const state = { me: null, page: 1, perPage: 50, total: 0, current: null, source: null, eventsSignature: "" };

function el(tag, attrs = {}, ...children) {
  const e = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") e.className = v; else if (k.startsWith("data-")) e.setAttribute(k, v); else e[k] = v;
  }
  for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c ?? "")));
  return e;
}

function utc(ts) {
  return ts ? new Date(ts * 1000).toISOString().replace("T", " ").slice(0, 19) : "";
}

async function api(path, options = {}) {
  const headers = Object.assign({}, options.headers || {});
  if (options.method && options.method !== "GET" && state.me) headers["X-CSRF-Token"] = state.me.csrf;
  if (options.json !== undefined) { headers["Content-Type"] = "application/json"; options.body = JSON.stringify(options.json); }
  const r = await fetch(path, Object.assign({}, options, { headers, credentials: "same-origin" }));
  if (r.status === 401 && path !== "/api/login") { showLogin(); throw new Error("log in first"); }
  if (!r.ok) {
    let msg = r.statusText;
    try { msg = (await r.json()).detail || msg; } catch (e) { /* not JSON */ }
    throw new Error(typeof msg === "string" ? msg : JSON.stringify(msg));
  }
  return r.headers.get("content-type")?.includes("json") ? r.json() : r;
}

function showLogin() {
  state.me = null;
  if (state.source) { state.source.close(); state.source = null; }
  $("main-view").hidden = true; $("login-view").hidden = false; $("logout").hidden = true; $("who").textContent = "";
  // nothing of the last operator's view is left for the next one
  state.current = null; state.page = 1;
  $("filters").reset(); $("event-view").hidden = true; $("tab-events").hidden = false;
}

function showMain() {
  $("login-view").hidden = true; $("main-view").hidden = false; $("logout").hidden = false;
  $("who").textContent = `${state.me.name} (${state.me.role})`;
  $("hold").disabled = state.me.role !== "operator";
  $("hold").title = state.me.role === "operator" ? "" : "viewers read only";
  loadEvents();
  live();
}

// ------------------------------------------------------------------ events list
function filters() {
  const q = new URLSearchParams();
  for (const k of ["site", "camera"]) { const v = $("f-" + k).value.trim(); if (v) q.set(k, v); }
  for (const k of ["since", "until"]) { const v = $("f-" + k).value; if (v) q.set(k, Date.parse(v + "Z") / 1000); }
  if ($("f-faces").checked) q.set("has_faces", "true");
  if ($("f-flagged").checked) q.set("flagged", "true");
  if ($("f-held").checked) q.set("held", "true");
  q.set("page", state.page); q.set("per_page", state.perPage);
  return q;
}

async function loadEvents() {
  const out = await api("/api/events?" + filters());
  state.total = out.total;
  const body = $("events").tBodies[0];
  // rebuild the rows only when the list changed: a live refresh then never swaps a row away under
  // the operator's pointer in the middle of a click
  const signature = JSON.stringify(out.events);
  if (signature === state.eventsSignature && body.rows.length) return updatePages(out);
  state.eventsSignature = signature;
  body.replaceChildren(...out.events.map((e) => {
    const tags = [e.flagged ? "FLAGGED" : "", e.held ? "on hold" : "", e.bad_signature ? "bad signature" : ""].filter(Boolean);
    const row = el("tr", { class: "ev" + (e.flagged ? " flag" : ""), "data-site": e.site, "data-event": e.event_id },
      el("td", {}, utc(e.started_at)), el("td", {}, e.site), el("td", {}, e.camera), el("td", {}, e.event_id),
      el("td", {}, e.faces), el("td", {}, tags.join(", ") || (e.ended ? "ended" : "in progress")));
    row.addEventListener("click", () => openEvent(e.site, e.event_id));
    return row;
  }));
  updatePages(out);
}

function updatePages(out) {
  const pages = Math.max(1, Math.ceil(out.total / out.per_page));
  $("page-info").textContent = `page ${out.page} of ${pages} (${out.total} events)`;
  $("prev").disabled = out.page <= 1; $("next").disabled = out.page >= pages;
}

function live() {
  if (state.source) state.source.close();
  state.source = new EventSource("/api/stream");
  state.source.addEventListener("event", () => {
    $("live").textContent = "new events: " + new Date().toISOString().slice(11, 19) + " UTC";
    if (state.page === 1 && $("event-view").hidden) loadEvents();
  });
}

// ------------------------------------------------------------------ one event
function imageOf(ev, role) {
  const all = ev.images.filter((i) => i.role === role);
  return all.length ? all[all.length - 1] : null;
}

async function openEvent(site, eventId) {
  const ev = await api(`/api/events/${encodeURIComponent(site)}/${encodeURIComponent(eventId)}`);
  state.current = ev;
  $("tab-events").hidden = true; $("event-view").hidden = false;
  $("ev-title").textContent = `${ev.site} / ${ev.camera} / ${ev.event_id}`;
  for (const role of ["original", "enhanced"]) {
    const img = imageOf(ev, role);
    $("ev-" + role).src = img ? `/api/images/${img.id}` : "";
    $("ev-" + role).alt = img ? `${role} (${img.check})` : `no ${role} image`;
    $("cmp-" + role).src = $("ev-" + role).src;
  }
  setCompare();
  const crops = ev.images.filter((i) => i.role === "face");
  const srs = Object.fromEntries(ev.images.filter((i) => i.role === "face_sr").map((i) => [i.seq + "/" + i.name.replace("_sr", ""), i]));
  $("ev-faces").replaceChildren(...crops.map((c) => {
    const sr = srs[c.seq + "/" + c.name];
    // the face's entry in the message it came with: how many frames its crop averages (face fusion)
    const meta = c.seq === ev.faces_seq ? (ev.faces || []).find((f) => f.crop === c.name) : null;
    const fused = meta && meta.fused_frames > 1 ? ` (${meta.fused_frames} frames fused)` : "";
    return el("figure", { class: "face" }, el("img", { src: `/api/images/${c.id}`, alt: c.name }),
      sr ? el("img", { src: `/api/images/${sr.id}`, alt: sr.name }) : el("span", { class: "muted" }, "no SR"),
      el("figcaption", {}, `${c.name}${sr ? " / " + sr.name : ""}${fused}`));
  }));
  const rows = [["stages", ev.stages.join(", ")],
    ["models", ev.models.map((m) => `${m.name} ${m.version} (${m.backend}, ${m.precision})`).join("; ")],
    ["timings (ms)", Object.entries(ev.stage_ms).map(([k, v]) => `${k} ${Number(v).toFixed(1)}`).join(", ")],
    ["luma", ev.luma], ["errors", ev.errors.join("; ") || "none"],
    ["messages", ev.messages.map((m) => `${m.phase} #${m.seq} (signature ${m.signature})`).join(", ")]];
  $("ev-stages").tBodies[0].replaceChildren(...rows.map(([k, v]) => el("tr", {}, el("th", {}, k), el("td", {}, v))));
  const integ = ev.integrity;
  const bad = integ.signature === "FAILED" || integ.images_failed.length > 0;
  const box = $("integrity");
  box.className = bad ? "bad" : "";
  box.replaceChildren(
    el("div", {}, "Signature: ", el("span", { id: "sig-state", class: integ.signature === "FAILED" ? "failed" : integ.signature === "valid" ? "ok" : "muted" }, integ.signature)),
    el("div", {}, `Images: ${integ.images_checked - integ.images_failed.length} of ${integ.images_checked} match their signed sha256`),
    ...ev.images.map((i) => el("div", { class: i.check === "ok" ? "ok" : i.check === "FAILED" || i.check === "missing" ? "failed img-failed" : "muted" },
      `${i.seq}/${i.name}: ${i.check}`)),
    ...integ.flags.map((f) => el("div", { class: "flag" }, f)));
  $("hold").textContent = ev.held ? `Release hold (held by ${ev.held_by})` : "Put on hold";
  $("hold-msg").textContent = "";
  $("export").href = `/api/events/${encodeURIComponent(ev.site)}/${encodeURIComponent(ev.event_id)}/evidence.zip`;
}

// the before/after slider: the original covers the enhanced image left of the slider's position
function setCompare() {
  const pos = Number($("cmp-pos").value);
  $("cmp-original").style.clipPath = `inset(0 ${100 - pos}% 0 0)`;
}

async function toggleHold() {
  const ev = state.current;
  try {
    await api(`/api/events/${encodeURIComponent(ev.site)}/${encodeURIComponent(ev.event_id)}/hold`, { method: "POST", json: { hold: !ev.held } });
    await openEvent(ev.site, ev.event_id);
  } catch (e) { $("hold-msg").textContent = e.message; }
}

// ------------------------------------------------------------------ alerts and sites
async function loadAlerts() {
  const st = $("alert-state").value;
  const rows = await api("/api/alerts" + (st ? "?state=" + st : ""));
  $("alerts").tBodies[0].replaceChildren(...rows.map((a) => el("tr", { class: a.open ? "flag" : "" },
    el("td", {}, utc(a.since)), el("td", {}, a.site), el("td", {}, a.camera || "(site)"), el("td", {}, a.type),
    el("td", {}, a.severity), el("td", {}, a.message), el("td", {}, a.open ? "open" : "closed " + utc(a.ended)))));
}

async function loadSites() {
  const rows = await api("/api/sites");
  $("sites").tBodies[0].replaceChildren(...rows.map((s) => el("tr", {},
    el("td", {}, s.site), el("td", { class: s.state === "online" ? "ok" : "failed" }, s.state),
    el("td", {}, utc(s.last_seen)), el("td", {}, s.cameras.join(", ")))));
}

function tab(name) {
  for (const b of document.querySelectorAll(".tab")) b.classList.toggle("active", b.dataset.tab === name);
  for (const t of ["events", "alerts", "sites"]) $("tab-" + t).hidden = t !== name;
  $("event-view").hidden = true;
  ({ events: loadEvents, alerts: loadAlerts, sites: loadSites })[name]();
}

// ------------------------------------------------------------------ wiring
document.addEventListener("DOMContentLoaded", async () => {
  $("login-form").addEventListener("submit", async (e) => {
    e.preventDefault();
    $("login-error").textContent = "";
    try {
      state.me = await api("/api/login", { method: "POST", json: { name: $("login-name").value, password: $("login-password").value } });
      $("login-password").value = "";
      showMain();
    } catch (err) { $("login-error").textContent = err.message; }
  });
  $("logout").addEventListener("click", async () => { try { await api("/api/logout", { method: "POST" }); } finally { showLogin(); } });
  $("filters").addEventListener("submit", (e) => { e.preventDefault(); state.page = 1; loadEvents(); });
  $("prev").addEventListener("click", () => { state.page -= 1; loadEvents(); });
  $("next").addEventListener("click", () => { state.page += 1; loadEvents(); });
  $("close-event").addEventListener("click", () => { $("event-view").hidden = true; $("tab-events").hidden = false; loadEvents(); });
  $("hold").addEventListener("click", toggleHold);
  $("cmp-pos").addEventListener("input", setCompare);
  $("alert-state").addEventListener("change", loadAlerts);
  for (const b of document.querySelectorAll(".tab")) b.addEventListener("click", () => tab(b.dataset.tab));
  try { state.me = await api("/api/me"); showMain(); } catch (e) { showLogin(); }
});

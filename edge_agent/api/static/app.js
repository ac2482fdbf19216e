// Nightwatch Edge camera setup page: plain JS, talks to the local config API.
"use strict";

const $ = (id) => document.getElementById(id);
const NAME_RE = /^[A-Za-z0-9_-]{1,64}$/;
const state = {
  token: sessionStorage.getItem("nw-token"),
  cameras: [],
  camera: null,        // name of the shown camera
  polys: [],           // [{kind: "zone"|"mask", name, points: [[x, y], ...]}] normalized 0..1
  drawing: null,       // {kind, points} while a polygon is being drawn
  selected: -1,
  drag: null,          // {poly, vertex} while a corner is dragged
  timers: [],
};

// ------------------------------------------------------------------ API
async function api(method, path, body, isForm) {
  const headers = {};
  if (state.token) headers["Authorization"] = "Bearer " + state.token;
  const init = { method, headers };
  if (body !== undefined) {
    if (isForm) init.body = body;
    else { headers["Content-Type"] = "application/json"; init.body = JSON.stringify(body); }
  }
  const r = await fetch(path, init);
  if (r.status === 401 && state.token) setToken(null);
  return r;
}

async function detailOf(r) {
  try { return (await r.json()).detail; } catch (e) { return r.statusText; }
}

function setToken(token) {
  state.token = token;
  if (token) sessionStorage.setItem("nw-token", token); else sessionStorage.removeItem("nw-token");
  $("login-form").hidden = !!token;
  $("session").hidden = !token;
  if (!token) $("onbox-bar").hidden = true;
}

async function refreshAuth() {
  const r = await api("GET", "/api/auth");
  const s = await r.json();
  if (!s.password_set) {
    $("readonly-banner").textContent = s.message;
    $("readonly-banner").hidden = false;
    $("login-form").hidden = true;
  } else if (!s.authenticated) {
    setToken(null);
  } else {
    setToken(state.token);
  }
}

$("login-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("login-status").textContent = "";
  const r = await api("POST", "/api/auth/login", { password: $("password").value });
  $("password").value = "";
  if (r.ok) {
    setToken((await r.json()).access_token);
    $("login-status").textContent = "Logged in.";
    await loadCameras();
  } else {
    const d = await detailOf(r);
    $("login-status").textContent = typeof d === "string" ? d : "Login failed.";
  }
});

$("logout-btn").addEventListener("click", async () => {
  await api("POST", "/api/auth/logout");
  setToken(null);
  $("login-status").textContent = "Logged out.";
});

// ------------------------------------------------------------------ cameras
async function loadCameras() {
  // the settings (and everything but the login) are behind the login
  const r = await api("GET", "/api/config");
  if (!r.ok) { $("camera-view").hidden = true; return; }
  const cfg = await r.json();
  $("site").textContent = "site " + cfg.site;
  state.cameras = cfg.cameras.map((c) => c.name);
  const nav = $("camera-tabs");
  nav.innerHTML = "";
  for (const name of state.cameras) {
    const b = document.createElement("button");
    b.type = "button";
    b.textContent = name;
    b.id = "tab-" + name;
    b.addEventListener("click", () => showCamera(name));
    nav.appendChild(b);
  }
  if (state.cameras.length) await showCamera(state.camera && state.cameras.includes(state.camera) ? state.camera : state.cameras[0]);
  await refreshOnBox();
}

// ------------------------------------------------------------------ on-box changes (the overlay)
// Changes saved here go to the box's overlay over the installer's config; a deploy never reverts
// them. The bar counts them and "Reset" drops them all (the installer's config applies again).
async function refreshOnBox() {
  const r = await api("GET", "/api/config/overlay");
  if (!r.ok) { $("onbox-bar").hidden = true; return; }
  const o = await r.json();
  const count = $("onbox-count");
  count.textContent = "On-box changes: " + o.keys + (o.keys === 1 ? " key" : " keys") +
    (o.ignored_cameras.length ? " (ignored, camera not in the installer's config: " + o.ignored_cameras.join(", ") + ")" : "");
  count.title = o.changed_keys.join("\n");
  $("onbox-reset").disabled = o.keys === 0;
  $("onbox-bar").hidden = false;
}

$("onbox-reset").addEventListener("click", async () => {
  $("onbox-status").textContent = "";
  if (!window.confirm("Drop every on-box change and go back to the installer's config?")) return;
  const r = await api("DELETE", "/api/config/overlay");
  if (r.ok) {
    const out = await r.json();
    $("onbox-status").textContent = "Reset: " + out.changed.length + " key(s) back to the installer's config." +
      (out.restart_required.length ? " Restart the agent to apply: " + out.restart_required.join(", ") : "");
    await loadCameras();
  } else {
    const d = await detailOf(r);
    $("onbox-status").textContent = typeof d === "string" ? d : (d || []).map((e) => e.key + ": " + e.msg).join("; ");
  }
});

async function showCamera(name) {
  state.camera = name;
  for (const b of $("camera-tabs").children) b.classList.toggle("active", b.textContent === name);
  const r = await api("GET", "/api/cameras/" + encodeURIComponent(name));
  if (!r.ok) return;
  fillCamera(await r.json());
  $("cam-name").textContent = name;
  $("camera-view").hidden = false;
  refreshImages();
  pollCounters();
}

function fillCamera(cam) {
  const m = cam.motion || {}, ll = cam.low_light || {}, f = cam.faces || {};
  $("f-sensitivity").value = m.sensitivity ?? "";
  $("f-threshold").value = m.threshold ?? "";
  $("f-min-area").value = m.min_area ?? "";
  $("f-luma").value = ll.luma_threshold ?? "";
  $("f-ratio").value = ll.ratio ?? "";
  $("f-face-sr").checked = f.super_resolve !== false;
  state.polys = [
    ...(m.masks || []).map((p) => ({ kind: "mask", name: "", points: p.points })),
    ...(m.zones || []).map((z) => ({ kind: "zone", name: z.name, points: z.points })),
  ];
  state.drawing = null;
  select(-1);
  clearErrors();
}

// snapshots are behind the login: an <img src> cannot send the token, so fetch them and show blob URLs
async function snapshotBlob(kind) {
  const r = await api("GET", "/api/cameras/" + encodeURIComponent(state.camera) + "/snapshot/" + kind);
  return r.ok ? await r.blob() : null;
}

function showBlob(id, blob) {
  const img = $(id);
  if (img.src.startsWith("blob:")) URL.revokeObjectURL(img.src);
  if (blob) img.src = URL.createObjectURL(blob); else img.removeAttribute("src");
}

async function refreshImages() {
  if (!state.camera || !state.token) return;
  const [original, enhanced] = await Promise.all([snapshotBlob("original"), snapshotBlob("enhanced")]);
  if (!state.drag && !state.drawing) showBlob("snapshot", original);
  showBlob("before-img", original);
  showBlob("after-img", enhanced);
}

async function pollCounters() {
  if (!state.camera || !state.token) return;
  const r = await api("GET", "/api/cameras/" + encodeURIComponent(state.camera) + "/stats");
  if (!r.ok) return;
  const s = await r.json();
  const dl = $("counters");
  dl.innerHTML = "";
  const rows = ["connected", "motion", "frames", "frames_dropped", "motion_events", "jobs_dropped", "enhanced",
    "faces", "faces_sr", "events_published", "errors"];
  for (const k of rows) addRow(dl, k, String(s[k] ?? 0));
  for (const [stage, ms] of Object.entries(s.stage_ms_avg || {})) addRow(dl, stage + " (avg ms)", ms.toFixed(1));
  const alerts = (s.alerts || []).map((a) => a.type + " (" + a.severity + ")");
  const h = await api("GET", "/api/health");
  if (h.ok) for (const a of (await h.json()).alerts || []) alerts.push("site: " + a.type + " (" + a.severity + ")");
  addRow(dl, "alerts", alerts.length ? alerts.join(", ") : "none");
  $("counter-alerts").classList.toggle("alerting", alerts.length > 0);
}

function addRow(dl, key, value) {
  const dt = document.createElement("dt"), dd = document.createElement("dd");
  dt.textContent = key;
  dd.textContent = value;
  dd.id = "counter-" + key.replace(/[^a-z0-9_]/gi, "_");
  dl.append(dt, dd);
}

// ------------------------------------------------------------------ polygon editor
const canvas = $("overlay");
const ctx = canvas.getContext("2d");

function fitCanvas() {
  const img = $("snapshot");
  canvas.width = img.clientWidth || 640;
  canvas.height = img.clientHeight || 360;
  canvas.style.width = canvas.width + "px";
  canvas.style.height = canvas.height + "px";
  draw();
}
$("snapshot").addEventListener("load", fitCanvas);
$("snapshot").addEventListener("error", fitCanvas);
window.addEventListener("resize", fitCanvas);

function tool() { return document.querySelector("input[name=tool]:checked").value; }

function toNorm(ev) {
  const r = canvas.getBoundingClientRect();
  const clamp = (v) => Math.min(1, Math.max(0, v));
  return [clamp((ev.clientX - r.left) / r.width), clamp((ev.clientY - r.top) / r.height)];
}

function px(p) { return [p[0] * canvas.width, p[1] * canvas.height]; }

function tracePath(points) {
  ctx.beginPath();
  points.forEach((p, i) => { const [x, y] = px(p); if (i) ctx.lineTo(x, y); else ctx.moveTo(x, y); });
}

function draw() {
  ctx.clearRect(0, 0, canvas.width, canvas.height);
  state.polys.forEach((poly, i) => {
    const zone = poly.kind === "zone";
    tracePath(poly.points);
    ctx.closePath();
    ctx.fillStyle = zone ? "rgba(63,185,80,0.25)" : "rgba(248,81,73,0.30)";
    ctx.fill();
    ctx.lineWidth = i === state.selected ? 3 : 1.5;
    ctx.strokeStyle = i === state.selected ? "#ffd33d" : zone ? "#3fb950" : "#f85149";
    ctx.stroke();
    if (i === state.selected) poly.points.forEach((p) => handle(p));
    if (zone) {
      const [x, y] = px(poly.points[0]);
      ctx.fillStyle = "#fff";
      ctx.font = "12px sans-serif";
      ctx.fillText(poly.name, x + 4, y - 4);
    }
  });
  if (state.drawing) {
    tracePath(state.drawing.points);
    ctx.setLineDash([5, 4]);
    ctx.strokeStyle = "#58a6ff";
    ctx.lineWidth = 2;
    ctx.stroke();
    ctx.setLineDash([]);
    state.drawing.points.forEach((p) => handle(p));
  }
  renderList();
}

function handle(p) {
  const [x, y] = px(p);
  ctx.fillStyle = "#ffd33d";
  ctx.fillRect(x - 4, y - 4, 8, 8);
}

function renderList() {
  const ul = $("poly-list");
  ul.innerHTML = "";
  state.polys.forEach((poly, i) => {
    const li = document.createElement("li");
    li.textContent = (poly.kind === "zone" ? "zone " + poly.name : "mask") + " (" + poly.points.length + " points)";
    li.className = "poly-item" + (i === state.selected ? " selected" : "");
    li.dataset.kind = poly.kind;
    li.addEventListener("click", () => select(i));
    ul.appendChild(li);
  });
}

function select(i) {
  state.selected = i;
  $("delete-poly").disabled = i < 0;
  if (i >= 0 && state.polys[i].kind === "zone") $("zone-name").value = state.polys[i].name;
  draw();
}

function inside(p, points) {
  let hit = false;
  for (let i = 0, j = points.length - 1; i < points.length; j = i++) {
    const [xi, yi] = points[i], [xj, yj] = points[j];
    if ((yi > p[1]) !== (yj > p[1]) && p[0] < ((xj - xi) * (p[1] - yi)) / (yj - yi) + xi) hit = !hit;
  }
  return hit;
}

function nearVertex(p) {
  if (state.selected < 0) return -1;
  const pts = state.polys[state.selected].points;
  for (let k = 0; k < pts.length; k++) {
    const dx = (pts[k][0] - p[0]) * canvas.width, dy = (pts[k][1] - p[1]) * canvas.height;
    if (dx * dx + dy * dy <= 64) return k;
  }
  return -1;
}

function nextZoneName() {
  const typed = $("zone-name").value.trim();
  const taken = new Set(state.polys.filter((q) => q.kind === "zone").map((q) => q.name));
  if (typed && !taken.has(typed)) return typed;
  let n = 1;
  while (taken.has("zone" + n)) n++;
  return "zone" + n;
}

function closePolygon() {
  const d = state.drawing;
  if (!d) return;
  // a double-click also delivered two clicks at the same spot: drop repeated corners
  const pts = d.points.filter((p, i, a) => i === 0 || Math.hypot(p[0] - a[i - 1][0], p[1] - a[i - 1][1]) > 0.005);
  if (pts.length < 3) {
    $("form-error").textContent = "A polygon needs at least 3 corners.";
    return;
  }
  const poly = { kind: d.kind, name: d.kind === "zone" ? nextZoneName() : "", points: pts };
  state.polys.push(poly);
  state.drawing = null;
  $("form-error").textContent = "";
  select(state.polys.length - 1);
}

canvas.addEventListener("mousedown", (ev) => {
  if (tool() !== "select") return;
  const p = toNorm(ev);
  const k = nearVertex(p);
  if (k >= 0) { state.drag = { poly: state.selected, vertex: k }; return; }
  for (let i = state.polys.length - 1; i >= 0; i--) {
    if (inside(p, state.polys[i].points)) { select(i); return; }
  }
  select(-1);
});
canvas.addEventListener("mousemove", (ev) => {
  if (!state.drag) return;
  state.polys[state.drag.poly].points[state.drag.vertex] = toNorm(ev);
  draw();
});
window.addEventListener("mouseup", () => { state.drag = null; });
canvas.addEventListener("click", (ev) => {
  const t = tool();
  if (t === "select") return;
  if (!state.drawing || state.drawing.kind !== t) state.drawing = { kind: t, points: [] };
  state.drawing.points.push(toNorm(ev));
  draw();
});
canvas.addEventListener("dblclick", (ev) => { ev.preventDefault(); closePolygon(); });
$("close-poly").addEventListener("click", closePolygon);
$("cancel-poly").addEventListener("click", () => { state.drawing = null; draw(); });
$("delete-poly").addEventListener("click", deleteSelected);
document.addEventListener("keydown", (ev) => {
  if (ev.target.tagName === "INPUT") return;
  if (ev.key === "Delete" || ev.key === "Backspace") deleteSelected();
  if (ev.key === "Escape") { state.drawing = null; draw(); }
});
$("zone-name").addEventListener("change", () => {
  const poly = state.polys[state.selected];
  if (poly && poly.kind === "zone") { poly.name = $("zone-name").value.trim(); draw(); }
});

function deleteSelected() {
  if (state.selected < 0) return;
  state.polys.splice(state.selected, 1);
  select(-1);
}

// ------------------------------------------------------------------ save
function numberOrRaw(input) {
  const v = input.value.trim();
  return v !== "" && Number.isFinite(Number(v)) ? Number(v) : v;  // the server names what is wrong
}

function round(points) {
  return points.map((p) => p.map((v) => Math.round(Math.min(1, Math.max(0, v)) * 10000) / 10000));
}

function clearErrors() {
  for (const el of document.querySelectorAll("[data-error-for]")) el.textContent = "";
  for (const el of document.querySelectorAll("input.invalid")) el.classList.remove("invalid");
  $("form-error").textContent = "";
}

function showErrors(detail) {
  if (!Array.isArray(detail)) { $("form-error").textContent = String(detail); return; }
  for (const e of detail) {
    const key = e.key || "";
    let target = null;
    for (let k = key; k; k = k.includes(".") ? k.slice(0, k.lastIndexOf(".")) : "") {
      target = document.querySelector(`[data-error-for="${k}"]`);
      if (target) break;
    }
    const text = (target ? "" : key + ": ") + e.msg;
    if (target) {
      target.textContent = target.textContent ? target.textContent + "; " + text : text;
      const input = document.querySelector(`input[data-key="${target.dataset.errorFor}"]`);
      if (input) input.classList.add("invalid");
    } else {
      $("form-error").textContent += ($("form-error").textContent ? "; " : "") + text;
    }
  }
}

$("settings-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  clearErrors();
  $("save-status").textContent = "";
  const bad = state.polys.find((p) => p.kind === "zone" && !NAME_RE.test(p.name));
  if (bad) { $("form-error").textContent = `zone name "${bad.name}": use letters, digits, - or _`; return; }
  const body = {
    motion: {
      sensitivity: numberOrRaw($("f-sensitivity")),
      threshold: numberOrRaw($("f-threshold")),
      min_area: numberOrRaw($("f-min-area")),
      masks: state.polys.filter((p) => p.kind === "mask").map((p) => ({ points: round(p.points) })),
      zones: state.polys.filter((p) => p.kind === "zone").map((p) => ({ name: p.name, points: round(p.points) })),
    },
    low_light: { luma_threshold: numberOrRaw($("f-luma")), ratio: numberOrRaw($("f-ratio")) || "auto" },
    faces: { super_resolve: $("f-face-sr").checked },
  };
  const r = await api("PATCH", "/api/cameras/" + encodeURIComponent(state.camera), body);
  if (r.ok) {
    const out = await r.json();
    fillCamera(out.camera);
    $("save-status").textContent = "Saved." +
      (out.restart_required.length ? " Restart the agent to apply: " + out.restart_required.join(", ") : "");
    await refreshOnBox();
  } else if (r.status === 401) {
    $("form-error").textContent = "Log in to save changes.";
  } else {
    showErrors(await detailOf(r));
  }
});

// ------------------------------------------------------------------ try enhancement
$("try-form").addEventListener("submit", async (ev) => {
  ev.preventDefault();
  $("try-status").textContent = "";
  const file = $("try-file").files[0];
  if (!file) { $("try-status").textContent = "Choose a PNG or JPEG file first."; return; }
  const form = new FormData();
  form.append("image", file);
  const r = await api("POST", "/api/enhance", form, true);
  if (!r.ok) { const d = await detailOf(r); $("try-status").textContent = typeof d === "string" ? d : "failed"; return; }
  $("try-img").src = URL.createObjectURL(await r.blob());
  $("try-img").hidden = false;
  $("try-caption").hidden = false;
});

// ------------------------------------------------------------------ start
async function start() {
  setToken(state.token);
  await refreshAuth();
  await loadCameras();
  state.timers.push(setInterval(pollCounters, 2000), setInterval(refreshImages, 10000));
}
start();

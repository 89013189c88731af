/// The viewer's single page: the MJPEG video beside a live panel (per-face emotion bars, a
/// timeline of the emotions over the last minutes, the shares since start, and a picture upload to
/// `/api/v1/analyze`). Plain HTML, CSS and JavaScript, no external files, so it works offline.
///
/// "Use my camera" swaps the server's video for the browser's own camera: the page sends its
/// frames (JPEG, at most 640 wide, the next when the answer to the last is in, at most 15 a second)
/// to `POST /api/v1/camera?session=ID`, draws the tracked faces over its mirrored picture, and
/// fills the panel from the answers instead of the server's feed.
///
/// For tests and monitoring the page keeps counters on `<body>`: `data-events` (frame events
/// received), `data-faces` (faces in the last one), `data-video-updates` (times the shown video
/// picture was seen to change), `data-ticks` (timeline points), `data-camera-frames` (camera
/// frames answered) and `data-mode` (`server` or `camera`).
enum ViewerPage {
    static let html = #"""
<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>GstFER live</title>
<style>
  :root { color-scheme: dark; --bg: #14161a; --panel: #1d2026; --line: #2c3038; --text: #e6e6e6; --dim: #9aa0a6; }
  * { box-sizing: border-box; }
  body { margin: 0; font: 14px/1.4 system-ui, sans-serif; background: var(--bg); color: var(--text); }
  header { display: flex; gap: 16px; align-items: baseline; padding: 10px 18px; border-bottom: 1px solid var(--line); }
  header h1 { font-size: 18px; margin: 0; }
  #status { color: var(--dim); }
  #status.bad { color: #ff7b72; }
  #timecode { font-variant-numeric: tabular-nums; color: var(--dim); }
  main { display: grid; grid-template-columns: minmax(320px, 1fr) 420px; gap: 16px; padding: 16px; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } }
  .video { position: relative; align-self: start; background: #000; border-radius: 6px; min-height: 240px; }
  .video img, .video video { width: 100%; height: auto; display: block; border-radius: 6px; }
  .video video { transform: scaleX(-1); }
  #overlay { position: absolute; left: 0; top: 0; width: 100%; height: 100%; pointer-events: none; }
  #camera { margin-left: auto; }
  #videostate.bad { color: #ff7b72; }
  #novideo { color: var(--dim); padding: 40px; text-align: center; }
  #videostate { position: absolute; left: 8px; top: 8px; max-width: calc(100% - 16px); z-index: 1; background: #000a; padding: 2px 8px; border-radius: 4px; font-size: 12px; }
  aside section { background: var(--panel); border-radius: 6px; padding: 10px 12px; margin-bottom: 12px; }
  aside h2 { font-size: 13px; margin: 0 0 8px; color: var(--dim); font-weight: 600; text-transform: uppercase; letter-spacing: .04em; }
  .face { border-top: 1px solid var(--line); padding: 6px 0; }
  .face:first-child { border-top: 0; }
  .face .title { display: flex; justify-content: space-between; margin-bottom: 4px; }
  .bar { display: grid; grid-template-columns: 70px 1fr 44px; gap: 6px; align-items: center; font-size: 12px; }
  .bar .track { background: var(--line); height: 9px; border-radius: 4px; overflow: hidden; }
  .bar .fill { height: 100%; }
  .bar .v { text-align: right; color: var(--dim); }
  .stack { display: flex; height: 12px; border-radius: 3px; overflow: hidden; background: var(--line); }
  .stack span { display: block; height: 100%; }
  canvas { width: 100%; background: #101216; border-radius: 4px; }
  .legend { display: flex; flex-wrap: wrap; gap: 8px; font-size: 12px; margin-top: 6px; }
  .legend i { display: inline-block; width: 10px; height: 10px; border-radius: 2px; margin-right: 4px; vertical-align: -1px; }
  .muted { color: var(--dim); }
  button { background: var(--panel); color: var(--text); border: 1px solid var(--line); border-radius: 4px; padding: 4px 10px; cursor: pointer; }
  select, input { background: var(--bg); color: var(--text); border: 1px solid var(--line); border-radius: 4px; }
</style>
</head>
<body data-events="0" data-faces="0" data-video-updates="0" data-ticks="0" data-camera-frames="0" data-mode="server">
<header><h1>GstFER live</h1><span id="status">connecting…</span><span id="timecode" hidden></span><button id="camera" type="button">Use my camera</button></header>
<main>
  <div class="video">
    <img id="video" alt="annotated video" hidden>
    <video id="cam" playsinline muted hidden></video>
    <canvas id="overlay" hidden></canvas>
    <div id="novideo" hidden></div>
    <div id="videostate">video: waiting</div>
  </div>
  <aside>
    <section><h2>Faces now</h2><div id="faces" class="muted">no faces yet</div></section>
    <section>
      <h2>Emotions over the last
        <select id="span"><option value="60">minute</option><option value="300" selected>5 minutes</option><option value="600">10 minutes</option></select>
      </h2>
      <canvas id="timeline" width="800" height="260"></canvas>
      <div id="legend" class="legend"></div>
    </section>
    <section><h2>Since start</h2><div id="summary" class="muted">nothing yet</div></section>
    <section><h2>Analyse a picture</h2><input type="file" id="upload" accept="image/jpeg,image/png"><div id="analysis" class="muted"></div></section>
  </aside>
</main>
<script>
"use strict";
const COLORS = { angry: "#e5534b", disgust: "#46954a", fear: "#8e6dd8", happy: "#e3b341", sad: "#4c8ed9", surprise: "#e0823d", neutral: "#8b949e" };
let labels = Object.keys(COLORS);
let serverPoints = [];
const body = document.body;
const $ = (id) => document.getElementById(id);
const esc = (s) => String(s).replace(/[&<>"]/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;" }[c]));
const color = (l) => COLORS[l] || "#999";
const count = (key, n = 1) => { body.dataset[key] = String(Number(body.dataset[key] || 0) + n); };

function bars(probs) {
  return labels.map((l) => {
    const p = probs[l] || 0;
    return `<div class="bar"><span>${esc(l)}</span><span class="track"><span class="fill" style="display:block;width:${(p * 100).toFixed(1)}%;background:${color(l)}"></span></span><span class="v">${(p * 100).toFixed(0)}%</span></div>`;
  }).join("");
}

function stack(probs) {
  return `<div class="stack">` + labels.map((l) => {
    const p = probs[l] || 0;
    return p >= 0.005 ? `<span title="${esc(l)} ${(p * 100).toFixed(0)}%" style="width:${(p * 100).toFixed(1)}%;background:${color(l)}"></span>` : "";
  }).join("") + `</div>`;
}

let lastStatus = null;
function showStatus(s) {
  lastStatus = s;
  if (cam.on) return;
  const el = $("status");
  const size = s.width ? ` · ${s.width}x${s.height}` : "";
  el.textContent = s.state === "none" ? "no video source" : `${s.state}${size} · ${s.source || ""}` + (s.error ? ` · ${s.error}` : "");
  el.className = (s.state === "error" || s.state === "reconnecting") ? "bad" : "";
  const img = $("video"), nv = $("novideo");
  if (s.state === "none") {
    img.hidden = true; nv.hidden = false;
    nv.innerHTML = "No video source. Start <code>fer serve --source …</code> with a webcam (/dev/video0), a file, an RTSP/HTTP URL or <code>test</code>.<br>The API and picture analysis below still work.";
    // a camera error the user has just been shown stays until they act again
    if ($("videostate").className !== "bad") $("videostate").textContent = "video: none";
  } else if (img.hidden) {
    img.hidden = false; nv.hidden = true;
    img.src = "/video.mjpg";
  }
}

// ---- the browser's own camera ----
const cam = { on: false, stream: null, session: null, points: [], current: null, counts: {}, faceFrames: 0, frames: 0, tracks: new Set(), since: 0 };
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const grab = document.createElement("canvas");

function newSession() {
  if (crypto.randomUUID) return crypto.randomUUID();
  return Array.from(crypto.getRandomValues(new Uint8Array(16)), (b) => b.toString(16).padStart(2, "0")).join("");
}

function camState(text, bad = false) { const el = $("videostate"); el.textContent = text; el.className = bad ? "bad" : ""; }

async function startCamera() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    camState(`camera: browsers give a page the camera only on http://localhost or over HTTPS; serve it over HTTPS (fer serve --tls-cert cert.pem --tls-key key.pem), or open http://localhost:${location.port || 80}/ on the server's machine (from another: ssh -L ${location.port || 80}:localhost:${location.port || 80} server)`, true);
    return;
  }
  let stream;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
  } catch (e) {
    camState(`camera: ${e.name === "NotAllowedError" ? "permission refused" : e.name === "NotFoundError" ? "no camera found" : (e.message || e.name)}`, true);
    return;
  }
  Object.assign(cam, { on: true, stream, session: newSession(), points: [], current: null, counts: {}, faceFrames: 0, frames: 0, tracks: new Set(), since: Date.now() / 1000 });
  const v = $("cam");
  v.srcObject = stream;
  v.hidden = false; $("overlay").hidden = false; $("video").hidden = true; $("novideo").hidden = true;
  $("video").removeAttribute("src");   // stops the MJPEG download
  $("camera").textContent = "Back to the server's video";
  body.dataset.mode = "camera";
  $("status").textContent = "your camera"; $("status").className = "";
  $("faces").className = "muted"; $("faces").textContent = "no faces yet";
  $("summary").className = "muted"; $("summary").textContent = "nothing yet";
  try { await v.play(); } catch (e) {}
  drawTimeline();
  cameraLoop(cam.session);
}

function stopCamera() {
  cam.on = false;
  if (cam.stream) cam.stream.getTracks().forEach((t) => t.stop());
  cam.stream = null;
  // the loop ends the session once the frame it has in flight is answered (a DELETE sent now
  // could reach the server before that frame, which would open the session again)
  $("cam").hidden = true; $("overlay").hidden = true; $("videostate").className = "";
  $("camera").textContent = "Use my camera";
  body.dataset.mode = "server";
  $("video").hidden = true;   // showStatus reopens the server's video
  if (lastStatus) showStatus(lastStatus);
  drawTimeline();
  summary();
}

function endSession(session = cam.session) {
  if (!session) return;
  fetch(`/api/v1/camera?session=${session}`, { method: "DELETE", keepalive: true }).catch(() => {});
  if (cam.session === session) cam.session = null;
}

async function cameraLoop(session) {
  try { await sendFrames(session); } finally { endSession(session); }
}

async function sendFrames(session) {
  const v = $("cam");
  const live = () => cam.on && cam.session === session;
  while (live()) {
    const t0 = performance.now();
    if (!v.videoWidth) { await sleep(50); continue; }
    const scale = Math.min(1, 640 / v.videoWidth);
    grab.width = Math.round(v.videoWidth * scale); grab.height = Math.round(v.videoHeight * scale);
    grab.getContext("2d").drawImage(v, 0, 0, grab.width, grab.height);
    const blob = await new Promise((r) => grab.toBlob(r, "image/jpeg", 0.85));
    if (!live()) break;
    let j;
    try {
      const r = await fetch(`/api/v1/camera?session=${session}`, { method: "POST", body: blob, headers: { "Content-Type": "image/jpeg" } });
      j = await r.json();
      if (!r.ok) { camState(`camera: ${j.error}`, true); await sleep(r.status === 503 ? 3000 : 1000); continue; }
    } catch (e) { camState("camera: the server does not answer", true); await sleep(1000); continue; }
    if (!live()) break;
    count("cameraFrames");
    body.dataset.faces = String(j.faces.length);
    drawOverlay(j);
    renderFaces(j);
    tally(j);
    const dt = performance.now() - t0;
    const wait = 1000 / 15 - dt;
    camState(`camera: live · ${j.width}x${j.height} · ${j.elapsed_ms.toFixed(0)} ms a frame on the server`);
    if (wait > 0) await sleep(wait);
  }
}

// The tracked faces over the mirrored picture: boxes mirrored, their text not.
function drawOverlay(j) {
  const c = $("overlay"), v = $("cam"), dpr = window.devicePixelRatio || 1;
  c.width = Math.round(v.clientWidth * dpr); c.height = Math.round(v.clientHeight * dpr);
  const g = c.getContext("2d"), sx = c.width / j.width, sy = c.height / j.height;
  g.clearRect(0, 0, c.width, c.height);
  g.lineWidth = 2 * dpr; g.font = `${Math.round(14 * dpr)}px system-ui`; g.textBaseline = "bottom";
  for (const f of j.faces) {
    const x = c.width - (f.box.x + f.box.width) * sx, y = f.box.y * sy, w = f.box.width * sx, h = f.box.height * sy;
    g.strokeStyle = color(f.emotion); g.strokeRect(x, y, w, h);
    const text = `${f.emotion} ${(f.confidence * 100).toFixed(0)}%`;
    const tw = g.measureText(text).width + 8 * dpr, th = 18 * dpr;
    g.fillStyle = color(f.emotion); g.fillRect(x, Math.max(y - th, 0), tw, th);
    g.fillStyle = "#000"; g.fillText(text, x + 4 * dpr, Math.max(y - th, 0) + th - 3 * dpr);
  }
}

// The camera's timeline and totals, kept here as the server keeps its video's.
function tally(j) {
  const now = Math.floor(Date.now() / 1000);
  if (cam.current && cam.current.time !== now) { closeSecond(); }
  if (!cam.current) cam.current = { time: now, frames: 0, counts: labels.map(() => 0) };
  cam.current.frames++; cam.frames++;
  for (const f of j.faces) {
    const k = labels.indexOf(f.emotion);
    if (k < 0) continue;
    cam.current.counts[k]++; cam.counts[f.emotion] = (cam.counts[f.emotion] || 0) + 1; cam.faceFrames++;
    if (f.id != null) cam.tracks.add(f.id);
  }
  renderSummary({ frames: cam.frames, face_frames: cam.faceFrames, seconds: Date.now() / 1000 - cam.since, tracks: Array.from(cam.tracks),
    overall: Object.fromEntries(labels.map((l) => [l, cam.faceFrames ? (cam.counts[l] || 0) / cam.faceFrames : 0])) });
}

function closeSecond() {
  const c = cam.current, n = c.counts.reduce((a, b) => a + b, 0);
  cam.points.push({ time: c.time, frames: c.frames, faces: n, shares: c.counts.map((k) => (n ? k / n : 0)) });
  if (cam.points.length > 600) cam.points.shift();
  cam.current = null;
  count("ticks");
  drawTimeline();
}

let pending = null;
function renderFaces(frame) {
  pending = frame;
  requestAnimationFrame(() => {
    if (!pending) return;
    const f = pending; pending = null;
    const el = $("faces");
    if (!f.faces.length) { el.className = "muted"; el.textContent = "no faces in view"; return; }
    el.className = "";
    el.innerHTML = f.faces.map((x) =>
      `<div class="face" data-id="${x.id}" data-emotion="${esc(x.emotion)}"><div class="title"><b>face ${x.id}: <span style="color:${color(x.emotion)}">${esc(x.emotion)}</span></b><span class="muted">${(x.confidence * 100).toFixed(0)}% · ${x.box.width}x${x.box.height}</span></div>${f.faces.length > 2 ? stack(x.probabilities) : bars(x.probabilities)}</div>`
    ).join("");
  });
}

function drawTimeline() {
  const c = $("timeline"), g = c.getContext("2d");
  const span = Number($("span").value);
  const W = c.width, H = c.height, padL = 34, padB = 20;
  g.clearRect(0, 0, W, H);
  g.fillStyle = "#9aa0a6"; g.font = "12px system-ui"; g.strokeStyle = "#2c3038";
  for (let i = 0; i <= 4; i++) {
    const y = (H - padB) * i / 4;
    g.beginPath(); g.moveTo(padL, y); g.lineTo(W, y); g.stroke();
    g.fillText(`${100 - i * 25}%`, 0, Math.min(y + 10, H - padB));
  }
  const points = cam.on ? cam.points : serverPoints;
  const now = points.length ? points[points.length - 1].time : Math.floor(Date.now() / 1000);
  const t0 = now - span;
  const x = (t) => padL + (W - padL) * (t - t0) / span;
  g.fillText(span >= 120 ? `-${span / 60} min` : `-${span} s`, padL, H - 4);
  g.fillText("now", W - 26, H - 4);
  const shown = points.filter((p) => p.time > t0);
  const withFaces = shown.filter((p) => p.faces > 0);
  if (!withFaces.length) { g.fillText("no faces in this period", padL + 10, (H - padB) / 2); return; }
  const w = Math.max((W - padL) / span, 1);
  for (const p of withFaces) {
    let y = H - padB;
    labels.forEach((l, k) => {
      const h = p.shares[k] * (H - padB);
      if (h <= 0) return;
      g.fillStyle = color(l);
      g.fillRect(x(p.time), y - h, w + 0.5, h);
      y -= h;
    });
  }
}

async function summary() {
  if (cam.on) return;
  try { const s = await (await fetch("/api/v1/summary")).json(); if (!cam.on) renderSummary(s); } catch (e) {}
}

function renderSummary(s) {
  if (!s.face_frames) return;
  const el = $("summary");
  el.className = "";
  const mins = (s.seconds / 60).toFixed(1);
  el.innerHTML = `<div class="muted">${cam.on ? "your camera: " : ""}${s.frames} frames, ${s.face_frames} face-frames, ${s.tracks.length} faces over ${mins} min</div>` + bars(s.overall);
}

function legend() {
  $("legend").innerHTML = labels.map((l) => `<span><i style="background:${color(l)}"></i>${esc(l)}</span>`).join("");
}

async function start() {
  try {
    const h = await (await fetch("/api/v1/health")).json();
    labels = h.labels;
    showStatus(h.pipeline);
    const t = await (await fetch("/api/v1/timeline?seconds=600")).json();
    serverPoints = t.points;
  } catch (e) { $("status").textContent = "server unreachable"; $("status").className = "bad"; }
  legend(); drawTimeline();
  const es = new EventSource("/events");
  es.addEventListener("frame", (e) => {
    const f = JSON.parse(e.data); count("events");
    if (!cam.on) { body.dataset.faces = String(f.faces.length); renderFaces(f); }
    const tc = $("timecode"); tc.hidden = cam.on || !f.timecode; tc.textContent = f.timecode ? "TC " + f.timecode : "";
  });
  es.addEventListener("tick", (e) => {
    serverPoints.push(JSON.parse(e.data)); if (serverPoints.length > 600) serverPoints.shift();
    if (!cam.on) { count("ticks"); drawTimeline(); }
  });
  es.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  es.onerror = () => { $("status").textContent = "reconnecting to the server…"; $("status").className = "bad"; };
  $("span").onchange = drawTimeline;
  summary(); setInterval(summary, 3000);
  watchVideo();
}

// The MJPEG <img> fires no event per frame: sample a few pixels each second to tell live from stalled.
function watchVideo() {
  const img = $("video"), c = document.createElement("canvas");
  c.width = 32; c.height = 24;
  const g = c.getContext("2d", { willReadFrequently: true });
  let last = null, still = 0;
  setInterval(() => {
    if (cam.on || img.hidden || !img.naturalWidth) return;
    g.drawImage(img, 0, 0, c.width, c.height);
    const d = g.getImageData(0, 0, c.width, c.height).data;
    let sig = 0;
    for (let i = 0; i < d.length; i += 4) sig = (sig * 31 + d[i] + d[i + 1] * 3 + d[i + 2] * 7) >>> 0;
    if (sig !== last) { count("videoUpdates"); still = 0; } else { still++; }
    last = sig;
    $("videostate").textContent = still >= 3 ? "video: stalled" : `video: live · ${img.naturalWidth}x${img.naturalHeight}`;
  }, 500);
}

$("upload").onchange = async (ev) => {
  const file = ev.target.files[0];
  if (!file) return;
  const out = $("analysis");
  out.className = "muted"; out.textContent = "analysing…";
  try {
    const r = await fetch("/api/v1/analyze", { method: "POST", body: file, headers: { "Content-Type": file.type || "application/octet-stream" } });
    const j = await r.json();
    if (!r.ok) { out.textContent = j.error; return; }
    out.className = "";
    out.innerHTML = `<div class="muted">${j.width}x${j.height}, ${j.faces.length} face(s), ${j.elapsed_ms.toFixed(0)} ms</div>` +
      j.faces.map((f, i) => `<div class="face"><div class="title"><b>${i + 1}: <span style="color:${color(f.emotion)}">${esc(f.emotion)}</span></b><span class="muted">${(f.confidence * 100).toFixed(0)}%</span></div>${bars(f.probabilities)}</div>`).join("");
  } catch (e) { out.textContent = String(e); }
};

$("camera").onclick = () => (cam.on ? stopCamera() : startCamera());
addEventListener("pagehide", () => endSession());
start();
</script>
</body>
</html>
"""#
}

/// The viewer's single page: the MJPEG video beside a live panel (per-face emotion bars, a
/// timeline of the emotions over the last minutes, the shares since start, and a picture upload to
/// `/api/v1/analyze`). Plain HTML, CSS and JavaScript, no external files, so it works offline.
///
/// For tests and monitoring the page keeps counters on `<body>`: `data-events` (frame events
/// received), `data-faces` (faces in the last one), `data-video-updates` (times the shown video
/// picture was seen to change) and `data-ticks` (timeline points).
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
  main { display: grid; grid-template-columns: minmax(320px, 1fr) 420px; gap: 16px; padding: 16px; }
  @media (max-width: 900px) { main { grid-template-columns: 1fr; } }
  .video { position: relative; align-self: start; background: #000; border-radius: 6px; min-height: 240px; }
  .video img { width: 100%; height: auto; display: block; border-radius: 6px; }
  #novideo { color: var(--dim); padding: 40px; text-align: center; }
  #videostate { position: absolute; left: 8px; top: 8px; background: #000a; padding: 2px 8px; border-radius: 4px; font-size: 12px; }
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
  select, input { background: var(--bg); color: var(--text); border: 1px solid var(--line); border-radius: 4px; }
</style>
</head>
<body data-events="0" data-faces="0" data-video-updates="0" data-ticks="0">
<header><h1>GstFER live</h1><span id="status">connecting…</span></header>
<main>
  <div class="video">
    <img id="video" alt="annotated video" hidden>
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
let points = [];
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

function showStatus(s) {
  const el = $("status");
  const size = s.width ? ` · ${s.width}x${s.height}` : "";
  el.textContent = s.state === "none" ? "no video source" : `${s.state}${size} · ${s.source || ""}` + (s.error ? ` · ${s.error}` : "");
  el.className = (s.state === "error" || s.state === "reconnecting") ? "bad" : "";
  const img = $("video"), nv = $("novideo");
  if (s.state === "none") {
    img.hidden = true; nv.hidden = false;
    nv.innerHTML = "No video source. Start <code>fer serve --source …</code> with a webcam (/dev/video0), a file, an RTSP/HTTP URL or <code>test</code>.<br>The API and picture analysis below still work.";
    $("videostate").textContent = "video: none";
  } else if (img.hidden) {
    img.hidden = false; nv.hidden = true;
    img.src = "/video.mjpg";
  }
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

function renderSummary(s) {
  if (!s.face_frames) return;
  const el = $("summary");
  el.className = "";
  const mins = (s.seconds / 60).toFixed(1);
  el.innerHTML = `<div class="muted">${s.frames} frames, ${s.face_frames} face-frames, ${s.tracks.length} faces over ${mins} min</div>` + bars(s.overall);
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
    points = t.points;
  } catch (e) { $("status").textContent = "server unreachable"; $("status").className = "bad"; }
  legend(); drawTimeline();
  const es = new EventSource("/events");
  es.addEventListener("frame", (e) => { const f = JSON.parse(e.data); count("events"); body.dataset.faces = String(f.faces.length); renderFaces(f); });
  es.addEventListener("tick", (e) => { points.push(JSON.parse(e.data)); if (points.length > 600) points.shift(); count("ticks"); drawTimeline(); });
  es.addEventListener("status", (e) => showStatus(JSON.parse(e.data)));
  es.onerror = () => { $("status").textContent = "reconnecting to the server…"; $("status").className = "bad"; };
  $("span").onchange = drawTimeline;
  const summary = async () => { try { renderSummary(await (await fetch("/api/v1/summary")).json()); } catch (e) {} };
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
    if (img.hidden || !img.naturalWidth) return;
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

start();
</script>
</body>
</html>
"""#
}

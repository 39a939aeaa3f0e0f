// Plays detection messages from /ws over a canvas. Same origin, so it works behind Kong.
"use strict";

const BOX_COLOUR = "#00ff66"; // same green the service draws into frames
const API = "/api/v1/video";
const KEY_STORE = "video-service.apikey";
const canvas = document.getElementById("view");
const ctx = canvas.getContext("2d");
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);
const wanted = params.get("stream_id");
// Kong's key-auth guards /ws and the API; browsers cannot set headers on a WebSocket, so the key
// goes in the query there (key-auth's key_in_query) and in the apikey header for fetches.
let apiKey = params.get("apikey") || localStorage.getItem(KEY_STORE) || "";
// Read by the browser test: how many messages and boxes have been drawn.
const stats = (window.videoStats = { messages: 0, framesWithBoxes: 0, boxesDrawn: 0, detector: null });
let socket = null;
let backoff = 500;
let retryTimer = null;

function connect() {
  clearTimeout(retryTimer);
  const query = new URLSearchParams();
  if (wanted) query.set("stream_id", wanted);
  if (apiKey) query.set("apikey", apiKey);
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const qs = query.toString();
  const ws = new WebSocket(`${scheme}://${location.host}/ws${qs ? `?${qs}` : ""}`);
  socket = ws;
  $("conn").textContent = "connecting";
  ws.onopen = () => {
    backoff = 500;
    $("conn").textContent = "open";
  };
  ws.onclose = (event) => {
    if (ws !== socket) return; // replaced after a key change
    if (event.code === 1000 && event.reason === "stream stopped") {
      $("conn").textContent = "stream stopped";
      return;
    }
    // A refused upgrade (401 without a valid key) also ends here, as 1006.
    $("conn").textContent = `closed${apiKey ? "" : " (API key needed?)"}, retry in ${backoff} ms`;
    retryTimer = setTimeout(connect, backoff);
    backoff = Math.min(backoff * 2, 10000);
  };
  ws.onmessage = (event) => {
    let msg;
    try {
      msg = JSON.parse(event.data);
    } catch {
      return;
    }
    if (msg.type === "hello") {
      setDetector(msg.detector);
    } else if (msg.type === "detections") {
      onDetections(msg);
    } else if (msg.type === "stream") {
      refreshStreams();
    }
  };
}

function setDetector(name) {
  stats.detector = name;
  $("detector").textContent = name;
}

function onDetections(msg) {
  stats.messages++;
  setDetector(msg.detector);
  $("stream").textContent = msg.stream_id.slice(0, 8);
  $("frame").textContent = String(msg.frame);
  $("boxes").textContent = String(msg.boxes.length);
  if (msg.image) {
    const img = new Image();
    img.onload = () => draw(msg, img);
    img.src = msg.image;
  } else {
    draw(msg, null);
  }
}

function draw(msg, img) {
  ctx.fillStyle = "#111";
  ctx.fillRect(0, 0, canvas.width, canvas.height);
  if (img) ctx.drawImage(img, 0, 0, canvas.width, canvas.height);
  const sx = canvas.width / msg.width;
  const sy = canvas.height / msg.height;
  ctx.lineWidth = 3;
  ctx.font = "13px system-ui, sans-serif";
  ctx.textBaseline = "top";
  for (const b of msg.boxes) {
    const x = b.x * sx;
    const y = b.y * sy;
    ctx.strokeStyle = BOX_COLOUR;
    ctx.strokeRect(x, y, b.w * sx, b.h * sy);
    const text = `${b.label} ${Math.round(b.score * 100)}%`;
    const tw = ctx.measureText(text).width + 6;
    const ty = y >= 17 ? y - 17 : y;
    ctx.fillStyle = BOX_COLOUR;
    ctx.fillRect(x, ty, tw, 17);
    ctx.fillStyle = "#000";
    ctx.fillText(text, x + 3, ty + 2);
  }
  if (msg.boxes.length > 0) stats.framesWithBoxes++;
  stats.boxesDrawn += msg.boxes.length;
}

function headers(extra) {
  return Object.assign(apiKey ? { apikey: apiKey } : {}, extra);
}

async function refreshStreams() {
  try {
    const res = await fetch(`${API}/status`, { headers: headers() });
    if (!res.ok) return;
    const status = await res.json();
    setDetector(status.detector.name);
    const rows = status.streams.map((s) => {
      const tr = document.createElement("tr");
      for (const v of [s.stream_id.slice(0, 8), s.stream_url, s.state, s.frames_analysed, s.reconnects, s.last_error || ""]) {
        const td = document.createElement("td");
        td.textContent = String(v);
        tr.appendChild(td);
      }
      const td = document.createElement("td");
      const button = document.createElement("button");
      button.textContent = "Stop";
      button.onclick = () => post("stop", { stream_id: s.stream_id }).then(refreshStreams);
      td.appendChild(button);
      tr.appendChild(td);
      return tr;
    });
    $("streams").replaceChildren(...rows);
  } catch {
    // the next refresh tries again
  }
}

async function post(path, body) {
  const res = await fetch(`${API}/${path}`, { method: "POST", headers: headers({ "content-type": "application/json" }), body: JSON.stringify(body) });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error((data.error && data.error.message) || data.message || `HTTP ${res.status}`);
  return data;
}

$("apikey").value = apiKey;
$("apikey").addEventListener("change", (event) => {
  apiKey = event.target.value.trim();
  localStorage.setItem(KEY_STORE, apiKey);
  backoff = 500;
  if (socket) socket.close();
  connect();
  refreshStreams();
});

$("start").addEventListener("submit", (event) => {
  event.preventDefault();
  const form = event.target;
  $("start-error").textContent = "";
  post("start", { stream_url: form.stream_url.value, fps: Number(form.fps.value), enable_drawing: form.enable_drawing.checked })
    .then(refreshStreams)
    .catch((err) => ($("start-error").textContent = err.message));
});

connect();
refreshStreams();
setInterval(refreshStreams, 3000);

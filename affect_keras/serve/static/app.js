// The page of affect-serve: photos and the webcam, through the HTTP API alone (/v1/faces, /v1/stream,
// /v1/model). No build step, nothing fetched from elsewhere.
"use strict";

const PALETTE = ["#8d99ae", "#f4a259", "#5b8def", "#e9c46a", "#9b5de5", "#2a9d8f", "#e63946", "#6d597a", "#90be6d", "#577590"];
const $ = (id) => document.getElementById(id);
let classes = [];

function colour(name) {
  const k = classes.indexOf(name);
  return k < 0 ? "#999" : PALETTE[k % PALETTE.length];
}

function token() {
  return sessionStorage.getItem("affect-token") || "";
}

function headers() {
  return token() ? { Authorization: "Bearer " + token() } : {};
}

async function call(path, options = {}) {
  const response = await fetch(path, { ...options, headers: { ...headers(), ...(options.headers || {}) } });
  const body = await response.json().catch(() => ({}));
  if (response.status === 401) {
    $("token-box").hidden = false;
    $("token").focus();
  }
  if (!response.ok) {
    throw new Error((body.error && body.error.message) || response.statusText);
  }
  return body;
}

// ------------------------------------------------------------------------------------------------ model card
async function loadCard() {
  try {
    const card = await call("/v1/model");
    classes = card.class_names;
    const fields = {
      Name: card.name + (card.version ? " " + card.version : ""),
      Classes: card.class_names.join(", "),
      "Input size": card.image_size + " px",
      Temperature: card.temperature == null ? "none" : Number(card.temperature).toFixed(3),
      Data: card.data_terms || "-",
    };
    if (card.metrics && typeof card.metrics === "object") {
      for (const [name, value] of Object.entries(card.metrics).slice(0, 6)) {
        if (typeof value === "number") fields[name] = value.toFixed(3);
      }
    }
    const list = $("card-fields");
    list.replaceChildren();
    for (const [name, value] of Object.entries(fields)) {
      const dt = document.createElement("dt");
      const dd = document.createElement("dd");
      dt.textContent = name;
      dd.textContent = value;
      list.append(dt, dd);
    }
    const legend = document.createElement("div");
    legend.className = "legend";
    for (const name of classes) {
      const item = document.createElement("span");
      const swatch = document.createElement("i");
      swatch.style.background = colour(name);
      item.append(swatch, name);
      legend.append(item);
    }
    $("card").append(legend);
  } catch (error) {
    $("card-fields").textContent = "The model card cannot be read: " + error.message;
  }
}

// ---------------------------------------------------------------------------------------------------- photos
function label(face) {
  return face.expression || face.label || face.status;
}

function drawFaces(context, faces, scale = 1) {
  context.lineWidth = Math.max(2, 3 * scale);
  context.font = `${Math.max(12, Math.round(16 * scale))}px system-ui, sans-serif`;
  for (const face of faces) {
    const [x, y, w, h] = face.box.map((v) => v * scale);
    const text = (face.track ? "#" + face.track + " " : "") + label(face);
    context.strokeStyle = colour(face.expression || face.label);
    context.strokeRect(x, y, w, h);
    const width = context.measureText(text).width + 8;
    context.fillStyle = context.strokeStyle;
    context.fillRect(x, Math.max(0, y - 22 * scale), width, 22 * scale);
    context.fillStyle = "#fff";
    context.fillText(text, x + 4, Math.max(16 * scale, y - 6 * scale));
  }
}

function bars(face) {
  const box = document.createElement("div");
  for (const [name, p] of Object.entries(face.probabilities || {}).sort((a, b) => b[1] - a[1])) {
    const row = document.createElement("div");
    row.className = "bar";
    const title = document.createElement("span");
    const track = document.createElement("span");
    const fill = document.createElement("span");
    const value = document.createElement("span");
    title.textContent = name;
    track.className = "track";
    fill.style.cssText = `display:block;height:100%;width:${(100 * p).toFixed(1)}%;background:${colour(name)}`;
    track.append(fill);
    value.textContent = (100 * p).toFixed(1) + " %";
    row.append(title, track, value);
    box.append(row);
  }
  return box;
}

async function analysePhoto(file) {
  const result = document.createElement("div");
  result.className = "result";
  result.dataset.name = file.name;
  $("results").prepend(result);
  const image = await createImageBitmap(file).catch(() => null);
  const form = new FormData();
  form.append("images", file, file.name);
  let answer;
  try {
    answer = (await call("/v1/faces", { method: "POST", body: form })).images[0];
  } catch (error) {
    result.classList.add("error");
    result.textContent = file.name + ": " + error.message;
    return;
  }
  const canvas = document.createElement("canvas");
  if (image) {
    const scale = Math.min(1, 640 / image.width);
    canvas.width = Math.round(image.width * scale);
    canvas.height = Math.round(image.height * scale);
    const context = canvas.getContext("2d");
    context.drawImage(image, 0, 0, canvas.width, canvas.height);
    drawFaces(context, answer.faces, scale * (image.width / answer.width));
    result.append(canvas);
  }
  const list = document.createElement("div");
  list.className = "faces";
  const heading = document.createElement("p");
  heading.className = "status";
  heading.textContent = `${file.name}: ${answer.faces.length} face(s), ${answer.outcome}, ${(1000 * answer.seconds).toFixed(0)} ms`;
  list.append(heading);
  answer.faces.forEach((face, k) => {
    const item = document.createElement("div");
    item.className = "face";
    item.dataset.label = label(face);
    const title = document.createElement("h3");
    title.textContent = `Face ${k + 1}: ${label(face)}`;
    item.append(title, bars(face));
    list.append(item);
  });
  result.append(list);
}

async function analysePhotos(files) {
  const images = [...files].filter((f) => f.type.startsWith("image/") || !f.type);
  $("photo-status").textContent = images.length ? `Reading ${images.length} photo(s)...` : "No image among those files.";
  for (const file of images) await analysePhoto(file);
  if (images.length) $("photo-status").textContent = `${images.length} photo(s) read.`;
}

// ---------------------------------------------------------------------------------------------------- webcam
const STRIP = 300; // columns of a track's strip: its last 300 answered frames
let socket = null;
let stream = null;
const strips = new Map();
let answered = [];

function strip(track) {
  if (!strips.has(track)) {
    const row = document.createElement("div");
    row.className = "strip";
    row.dataset.track = track;
    const name = document.createElement("span");
    const canvas = document.createElement("canvas");
    canvas.width = STRIP;
    canvas.height = 18;
    row.append(name, canvas);
    $("strips").append(row);
    strips.set(track, { row, name, canvas, column: 0 });
  }
  return strips.get(track);
}

function extendStrip(face) {
  const s = strip(face.track);
  s.row.dataset.label = face.label || face.status;
  s.name.textContent = `#${face.track} ${face.label || face.status}`;
  const context = s.canvas.getContext("2d");
  if (s.column >= STRIP) {
    context.drawImage(s.canvas, -1, 0);
    s.column = STRIP - 1;
  }
  let y = 0;
  for (const [name, p] of Object.entries(face.smoothed || {})) {
    context.fillStyle = colour(name);
    context.fillRect(s.column, y, 1, p * 18);
    y += p * 18;
  }
  s.column += 1;
}

function showFrame(answer) {
  const video = $("video");
  const overlay = $("overlay");
  overlay.width = video.videoWidth;
  overlay.height = video.videoHeight;
  const context = overlay.getContext("2d");
  context.clearRect(0, 0, overlay.width, overlay.height);
  if (answer.error) {
    $("fps").textContent = answer.error.message;
    return;
  }
  drawFaces(context, answer.faces);
  answer.faces.forEach(extendStrip);
  const now = performance.now();
  answered = answered.filter((t) => now - t < 2000).concat(now);
  const rate = answered.length > 1 ? (1000 * (answered.length - 1)) / (now - answered[0]) : 0;
  $("fps").textContent = `${rate.toFixed(1)} frames/s, ${answer.faces.length} face(s)`;
  $("fps").dataset.rate = rate.toFixed(2);
}

function sendFrame() {
  const video = $("video");
  if (!socket || socket.readyState !== WebSocket.OPEN || !video.videoWidth) return;
  const canvas = document.createElement("canvas");
  canvas.width = video.videoWidth;
  canvas.height = video.videoHeight;
  canvas.getContext("2d").drawImage(video, 0, 0);
  canvas.toBlob((blob) => blob && socket && socket.readyState === WebSocket.OPEN && socket.send(blob), "image/jpeg", 0.85);
}

async function startCamera() {
  $("start").disabled = true;
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: { width: 640, height: 480 }, audio: false });
  } catch (error) {
    $("fps").textContent = "No camera: " + error.message;
    $("start").disabled = false;
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  const scheme = location.protocol === "https:" ? "wss" : "ws";
  const query = token() ? "?token=" + encodeURIComponent(token()) : "";
  socket = new WebSocket(`${scheme}://${location.host}/v1/stream${query}`);
  socket.onopen = sendFrame;
  socket.onmessage = (event) => {
    showFrame(JSON.parse(event.data));
    sendFrame(); // one frame in flight: the server's pace sets the frame rate
  };
  socket.onclose = (event) => {
    if (event.code === 1008) {
      $("token-box").hidden = false;
      $("fps").textContent = "The server refused the stream: " + (event.reason || "missing or wrong token");
    }
    stopCamera();
  };
  $("stop").disabled = false;
}

function stopCamera() {
  if (socket) socket.close();
  socket = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("start").disabled = false;
  $("stop").disabled = true;
}

// ----------------------------------------------------------------------------------------------------- wiring
function mode(name) {
  for (const m of ["photos", "webcam"]) {
    $(m).hidden = m !== name;
    $("mode-" + m).classList.toggle("active", m === name);
  }
  if (name !== "webcam") stopCamera();
}

$("mode-photos").onclick = () => mode("photos");
$("mode-webcam").onclick = () => mode("webcam");
$("start").onclick = startCamera;
$("stop").onclick = stopCamera;
$("files").onchange = (event) => analysePhotos(event.target.files);
$("token").onchange = (event) => {
  sessionStorage.setItem("affect-token", event.target.value);
  loadCard();
};
const drop = $("drop");
drop.ondragover = (event) => {
  event.preventDefault();
  drop.classList.add("over");
};
drop.ondragleave = () => drop.classList.remove("over");
drop.ondrop = (event) => {
  event.preventDefault();
  drop.classList.remove("over");
  analysePhotos(event.dataTransfer.files);
};
loadCard();

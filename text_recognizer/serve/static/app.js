// The page: send an uploaded, pasted or drawn image to /v1/recognize, or an uploaded or pasted
// page to /v1/page, and show the answer.
"use strict";

const $ = (id) => document.getElementById(id);
const canvas = $("canvas");
const pen = canvas.getContext("2d");
let drawn = null; // the bounding box of the strokes, in canvas pixels

function headers() {
  const token = $("token").value.trim();
  return token ? { Authorization: `Bearer ${token}` } : {};
}

function showError(message) {
  $("result").hidden = true;
  $("error").textContent = message;
  $("error").hidden = false;
}

async function describeModel() {
  try {
    const response = await fetch("/v1/model", { headers: headers() });
    const body = await response.json();
    if (!response.ok) {
      $("model").textContent = `Model: ${body.error}`;
      return;
    }
    const input = body.input;
    $("model").textContent =
      `A ${body.kind} model: ${input.height} x ${input.width} input, ` +
      `${body.charset.length} characters, version ${body.sha256.slice(0, 12)}.`;
  } catch (error) {
    $("model").textContent = `Model: ${error}`;
  }
}

// A line is read by /v1/recognize, shown with its stem; a page by /v1/page, which finds its
// lines (seconds a page), shown with its overlay.
async function recognize(blob, name, source, asPage = false) {
  const form = new FormData();
  form.append("image", blob, name);
  form.append(asPage ? "overlay" : "stem", "true");
  $("error").hidden = true;
  $("busy").hidden = !asPage;
  const began = performance.now();
  let response, body;
  try {
    const path = asPage ? "/v1/page" : "/v1/recognize";
    response = await fetch(path, { method: "POST", body: form, headers: headers() });
    body = await response.json();
  } catch (error) {
    showError(`The server did not answer: ${error}`);
    return;
  } finally {
    $("busy").hidden = true;
  }
  if (!response.ok) {
    showError(`${response.status}: ${body.error}`);
    return;
  }
  const roundTrip = performance.now() - began;
  $("text").textContent = body.text;
  $("result").classList.toggle("page", asPage);
  $("page-view").hidden = !asPage;
  $("stem-view").hidden = asPage;
  if (asPage) $("overlay").src = body.overlay;
  else $("stem").src = body.stem;
  const found = asPage ? body.lines.length : 0;
  const what = asPage ? `${found} line${found === 1 ? "" : "s"} found and read` : "Read";
  $("time").textContent =
    `${what} from the ${source} in ${(body.seconds * 1000).toFixed(0)} ms on the server, ` +
    `${roundTrip.toFixed(0)} ms round trip.`;
  $("result").hidden = false;
}

function pageChosen() {
  return document.querySelector('input[name="mode"]:checked').value === "page";
}

// Upload and paste: a line or a page, as chosen.
$("file").addEventListener("change", () => {
  const file = $("file").files[0];
  if (file) recognize(file, file.name, "upload", pageChosen());
  $("file").value = "";
});
document.addEventListener("paste", (event) => {
  if (event.target instanceof HTMLInputElement) return; // a token pasted into its field
  const items = event.clipboardData ? [...event.clipboardData.items] : [];
  const item = items.find((i) => i.type.startsWith("image/"));
  if (!item) {
    showError("The clipboard holds no image.");
    return;
  }
  event.preventDefault();
  recognize(item.getAsFile(), "pasted.png", "paste", pageChosen());
});

// Drawing: pointer events cover the mouse, a pen and a finger.
function clear() {
  pen.fillStyle = "#fff";
  pen.fillRect(0, 0, canvas.width, canvas.height);
  drawn = null;
}

function point(event) {
  const box = canvas.getBoundingClientRect();
  return {
    x: ((event.clientX - box.left) * canvas.width) / box.width,
    y: ((event.clientY - box.top) * canvas.height) / box.height,
  };
}

function extend(p) {
  drawn = drawn
    ? { x0: Math.min(drawn.x0, p.x), y0: Math.min(drawn.y0, p.y),
        x1: Math.max(drawn.x1, p.x), y1: Math.max(drawn.y1, p.y) }
    : { x0: p.x, y0: p.y, x1: p.x, y1: p.y };
}

canvas.addEventListener("pointerdown", (event) => {
  canvas.setPointerCapture(event.pointerId);
  const p = point(event);
  pen.beginPath();
  pen.moveTo(p.x, p.y);
  extend(p);
});
canvas.addEventListener("pointermove", (event) => {
  if (!canvas.hasPointerCapture(event.pointerId)) return;
  const p = point(event);
  pen.lineTo(p.x, p.y);
  pen.stroke();
  extend(p);
});
canvas.addEventListener("pointerup", (event) => canvas.releasePointerCapture(event.pointerId));

// The drawing is sent cropped to its strokes, as a scanned line is cropped to its writing.
$("read-drawing").addEventListener("click", () => {
  if (!drawn) {
    showError("Draw something first.");
    return;
  }
  const margin = 2 * pen.lineWidth;
  const x = Math.max(0, Math.floor(drawn.x0 - margin));
  const y = Math.max(0, Math.floor(drawn.y0 - margin));
  const w = Math.min(canvas.width, Math.ceil(drawn.x1 + margin)) - x;
  const h = Math.min(canvas.height, Math.ceil(drawn.y1 + margin)) - y;
  const crop = document.createElement("canvas");
  crop.width = w;
  crop.height = h;
  crop.getContext("2d").drawImage(canvas, x, y, w, h, 0, 0, w, h);
  crop.toBlob((blob) => recognize(blob, "drawing.png", "drawing"), "image/png");
});
$("clear").addEventListener("click", clear);
$("token").addEventListener("change", describeModel);

pen.lineWidth = 5;
pen.lineCap = "round";
pen.lineJoin = "round";
pen.strokeStyle = "#111";
clear();
describeModel();

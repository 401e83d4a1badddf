// The demo page of a tlstudio web export: pick, drop or film an image, see the top classes.
//
// model.json (written by tlstudio) says how to prepare an image: input size, resize policy, the
// "not sure" threshold. Everything runs here; the only requests go to files of this folder.
// window.tlstudioWeb exposes the state for tlstudio's own check of the export (--verify).

import * as ort from "./runtime/ort.wasm.bundle.min.js";
import { resizeImage, rgbaToRgb, toProbabilities } from "./preprocess.js";

const TOP_K = 5;
const WEBCAM_INTERVAL_MS = 250;

const $ = (id) => document.getElementById(id);
const state = { ready: false, error: null, count: 0, last: null, meta: null };
window.tlstudioWeb = state;

let session = null;
let busy = false;
let stream = null;
let webcamTimer = null;

function setStatus(text, isError = false) {
  $("status").textContent = text;
  $("status").classList.toggle("error", isError);
}

function percent(p) {
  const text = (100 * p).toFixed(1);
  return `${text.endsWith(".0") ? text.slice(0, -2) : text} %`;
}

async function loadModel() {
  const response = await fetch("model.json");
  if (!response.ok) throw new Error(`model.json: ${response.status} ${response.statusText}`);
  const meta = await response.json();
  state.meta = meta;
  document.title = meta.title || "Image classifier";
  $("title").textContent = meta.title || "Image classifier";
  const [h, w] = meta.input_size;
  const unsure = meta.threshold != null ? `; below ${percent(meta.threshold)} it answers "not sure"` : "";
  $("subtitle").textContent = `${meta.labels.length} classes: ${meta.labels.join(", ")} · ${w} × ${h} pixels, ${meta.resize_policy}${unsure}`;
  $("runtime").textContent = `ONNX Runtime Web ${meta.runtime_version || ""}`.trim();
  $("made-by").textContent = `tlstudio ${meta.tlstudio_version || ""}`.trim();
  // Several threads need a cross-origin isolated page, which a plain static server does not give.
  ort.env.wasm.numThreads = self.crossOriginIsolated ? Math.min(4, navigator.hardwareConcurrency || 1) : 1;
  session = await ort.InferenceSession.create(meta.model, { executionProviders: ["wasm"] });
  state.ready = true;
  setStatus("Ready: choose or drop an image.");
}

// RGB pixels of an image file as the app decodes it: EXIF orientation applied, transparency on
// white, colour values as stored (no colour-profile conversion: Pillow does none either).
async function decodeBlob(blob) {
  const bitmap = await createImageBitmap(blob, {
    imageOrientation: "from-image", premultiplyAlpha: "none", colorSpaceConversion: "none",
  });
  try {
    return pixelsOf(bitmap, bitmap.width, bitmap.height);
  } finally {
    bitmap.close();
  }
}

function pixelsOf(source, width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  const ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.fillStyle = "#ffffff";
  ctx.fillRect(0, 0, width, height);
  ctx.drawImage(source, 0, 0, width, height);
  return rgbaToRgb(ctx.getImageData(0, 0, width, height).data, width, height);
}

async function classifyPixels(rgb) {
  const meta = state.meta;
  const [h, w] = meta.input_size;
  const started = performance.now();
  const resized = resizeImage(rgb, h, w, meta.resize_policy, { verticalFirst: !!meta.pillow_vertical_first });
  const input = new ort.Tensor("float32", Float32Array.from(resized.data), [1, h, w, 3]);
  const outputs = await session.run({ [session.inputNames[0]]: input });
  const probabilities = toProbabilities(outputs[session.outputNames[0]].data);
  const order = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0] || a[1] - b[1]);
  const top = order.slice(0, Math.min(TOP_K, order.length)).map(([p, i]) => ({ label: meta.labels[i], probability: p }));
  const best = top[0];
  const unsure = meta.threshold != null && best.probability < meta.threshold;
  return {
    label: unsure ? "not sure" : best.label, best: best.label, probability: best.probability, unsure,
    probabilities, top, ms: performance.now() - started, resized,
  };
}

function show(result) {
  $("answer").textContent = result.label;
  $("answer").classList.toggle("unsure", result.unsure);
  $("answer-note").textContent = result.unsure
    ? `Best guess ${result.best} at ${percent(result.probability)}, under the ${percent(state.meta.threshold)} threshold`
    : `${percent(result.probability)} · ${result.ms.toFixed(0)} ms`;
  const list = $("top");
  list.replaceChildren();
  for (const { label, probability } of result.top) {
    const li = document.createElement("li");
    li.dataset.label = label;
    li.dataset.probability = String(probability);
    const row = document.createElement("div");
    row.className = "row";
    const name = document.createElement("span");
    name.textContent = label;
    const value = document.createElement("span");
    value.textContent = percent(probability);
    row.append(name, value);
    const bar = document.createElement("div");
    bar.className = "bar";
    const fill = document.createElement("span");
    fill.style.width = `${Math.max(0, Math.min(100, 100 * probability))}%`;
    bar.append(fill);
    li.append(row, bar);
    list.append(li);
  }
  const { data, width, height } = result.resized;
  const canvas = $("model-view");
  canvas.width = width;
  canvas.height = height;
  const image = new ImageData(width, height);
  for (let i = 0, j = 0; i < width * height * 3; i += 3, j += 4) {
    image.data[j] = data[i];
    image.data[j + 1] = data[i + 1];
    image.data[j + 2] = data[i + 2];
    image.data[j + 3] = 255;
  }
  canvas.getContext("2d").putImageData(image, 0, 0);
  $("seen-text").textContent = `What the model sees (${width} × ${height}, ${state.meta.resize_policy})`;
  $("seen").hidden = false;
}

function record(name, result, error) {
  state.last = error
    ? { name, error }
    : { name, label: result.label, probability: result.probability, probabilities: result.probabilities, top: result.top };
  // The model's input pixels, so tlstudio's check can compare them with the app's one by one.
  state.lastPixels = error ? null : result.resized.data;
  state.count += 1;
}

async function classifyFile(file) {
  if (!state.ready) return;
  stopWebcam();
  busy = true;
  const url = URL.createObjectURL(file);
  $("preview").src = url;
  $("preview").hidden = false;
  $("drop-hint").hidden = true;
  try {
    const rgb = await decodeBlob(file);
    const result = await classifyPixels(rgb);
    show(result);
    setStatus(`${file.name}: ${rgb.width} × ${rgb.height}`);
    record(file.name, result, null);
  } catch (err) {
    setStatus(`${file.name}: cannot be read as an image (${err.message || err})`, true);
    record(file.name, null, String(err.message || err));
  } finally {
    busy = false;
  }
}

async function startWebcam() {
  if (!navigator.mediaDevices || !navigator.mediaDevices.getUserMedia) {
    setStatus("The webcam needs the page served from localhost or over https.", true);
    return;
  }
  try {
    stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
  } catch (err) {
    setStatus(`No webcam: ${err.message || err}`, true);
    return;
  }
  const video = $("video");
  video.srcObject = stream;
  await video.play();
  video.hidden = false;
  $("preview").hidden = true;
  $("drop-hint").hidden = true;
  $("webcam").hidden = true;
  $("webcam-stop").hidden = false;
  setStatus("Webcam: classifying what it sees.");
  webcamTimer = setInterval(async () => {
    if (busy || !video.videoWidth) return;
    busy = true;
    try {
      show(await classifyPixels(pixelsOf(video, video.videoWidth, video.videoHeight)));
    } finally {
      busy = false;
    }
  }, WEBCAM_INTERVAL_MS);
}

function stopWebcam() {
  if (webcamTimer) clearInterval(webcamTimer);
  webcamTimer = null;
  if (stream) stream.getTracks().forEach((t) => t.stop());
  stream = null;
  $("video").hidden = true;
  $("webcam").hidden = false;
  $("webcam-stop").hidden = true;
}

function wire() {
  $("file").addEventListener("change", (event) => {
    const file = event.target.files && event.target.files[0];
    if (file) classifyFile(file);
    event.target.value = ""; // choosing the same file again classifies it again
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    const file = event.dataTransfer.files && event.dataTransfer.files[0];
    if (file) classifyFile(file);
  });
  $("webcam").addEventListener("click", startWebcam);
  $("webcam-stop").addEventListener("click", () => {
    stopWebcam();
    setStatus("Ready: choose or drop an image.");
  });
  if (!navigator.mediaDevices) $("webcam").title = "The webcam needs the page served from localhost or over https";
}

wire();
loadModel().catch((err) => {
  state.error = String(err.message || err);
  setStatus(`The model could not be loaded: ${state.error}`, true);
  if (location.protocol === "file:") {
    setStatus("Open this page through a web server: run  python -m http.server  in this folder, then open http://localhost:8000", true);
  }
});

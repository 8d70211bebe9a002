// Runs the served detect.tflite with MediaPipe Tasks Vision's ObjectDetector and draws what it finds.
import {FilesetResolver, ObjectDetector} from "/mediapipe/vision_bundle.mjs";

const $ = (id) => document.getElementById(id);
const threshold = Number(new URLSearchParams(location.search).get("threshold") ?? 0.3);
$("threshold").textContent = threshold;

function showContract(config) {
  $("title").textContent = config.name;
  const input = config.input;
  if (input) {
    const normalization = input.dtype === "uint8"
      ? "uint8 pixels"
      : `(pixel - ${input.mean.join("/")}) / ${input.std.join("/")}`;
    $("contract").textContent =
      `Input ${input.name}: ${input.dtype} [${input.shape.join(", ")}], ${normalization}; ${config.inference_type}.`;
  }
}

// The detections as JSON for scripts: label, score and box in pixels of the image.
function report(detections) {
  $("detections").textContent = JSON.stringify(detections.map((found) => ({
    label: found.categories[0].categoryName,
    score: found.categories[0].score,
    box: {x: found.boundingBox.originX, y: found.boundingBox.originY,
          width: found.boundingBox.width, height: found.boundingBox.height},
  })), null, 1);
  $("requests").textContent = JSON.stringify(
    [location.href, ...performance.getEntriesByType("resource").map((entry) => entry.name)], null, 1);
}

function draw(source, width, height, detections) {
  const canvas = $("overlay");
  const shown = source.getBoundingClientRect();
  canvas.width = shown.width;
  canvas.height = shown.height;
  const scale = shown.width / width;
  const context = canvas.getContext("2d");
  context.lineWidth = 2;
  context.font = "14px system-ui, sans-serif";
  for (const found of detections) {
    const box = found.boundingBox;
    const text = `${found.categories[0].categoryName} ${found.categories[0].score.toFixed(2)}`;
    context.strokeStyle = "#e0218a";
    context.strokeRect(box.originX * scale, box.originY * scale, box.width * scale, box.height * scale);
    context.fillStyle = "#e0218a";
    context.fillRect(box.originX * scale, box.originY * scale - 18, context.measureText(text).width + 6, 18);
    context.fillStyle = "#fff";
    context.fillText(text, box.originX * scale + 3, box.originY * scale - 4);
  }
}

async function detectPhoto(detector, url) {
  const photo = $("photo");
  $("video").hidden = true;
  photo.hidden = false;
  $("hint").hidden = true;
  photo.src = url;
  await photo.decode();
  await detector.setOptions({runningMode: "IMAGE"});
  const start = performance.now();
  const result = detector.detect(photo);
  const elapsed = performance.now() - start;
  draw(photo, photo.naturalWidth, photo.naturalHeight, result.detections);
  $("status").textContent = `${result.detections.length} detection(s) in ${elapsed.toFixed(0)} ms`;
  report(result.detections);
}

async function detectWebcam(detector) {
  const video = $("video");
  video.srcObject = await navigator.mediaDevices.getUserMedia({video: true});
  await video.play();
  $("photo").hidden = true;
  video.hidden = false;
  $("hint").hidden = true;
  await detector.setOptions({runningMode: "VIDEO"});
  const frame = () => {
    const start = performance.now();
    const result = detector.detectForVideo(video, start);
    draw(video, video.videoWidth, video.videoHeight, result.detections);
    $("status").textContent = `${result.detections.length} detection(s) in ${(performance.now() - start).toFixed(0)} ms`;
    requestAnimationFrame(frame);
  };
  requestAnimationFrame(frame);
}

async function main() {
  const config = await (await fetch("/config.json")).json();
  showContract(config);
  // WebAssembly from this server, not a CDN. The CPU delegate: TFLite_Detection_PostProcess is no GPU op.
  const vision = await FilesetResolver.forVisionTasks("/mediapipe/wasm");
  const detector = await ObjectDetector.createFromOptions(vision, {
    baseOptions: {modelAssetPath: "/model.tflite", delegate: "CPU"},
    scoreThreshold: threshold,
    maxResults: -1,
    runningMode: "IMAGE",
  });
  $("status").textContent = "Ready: choose or drop a photo.";
  $("file").addEventListener("change", (event) => {
    if (event.target.files[0]) detectPhoto(detector, URL.createObjectURL(event.target.files[0]));
  });
  const drop = $("drop");
  drop.addEventListener("dragover", (event) => { event.preventDefault(); drop.classList.add("over"); });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer.files[0]) detectPhoto(detector, URL.createObjectURL(event.dataTransfer.files[0]));
  });
  const webcam = $("webcam");
  webcam.disabled = !navigator.mediaDevices?.getUserMedia;
  webcam.addEventListener("click", () => detectWebcam(detector).catch((error) => {
    $("status").textContent = `Webcam: ${error.message}`;
  }));
  if (config.image) await detectPhoto(detector, config.image);
}

main().catch((error) => { $("status").textContent = `Error: ${error.message}`; console.error(error); });

// agegender web page: plain JavaScript, no build step, no third-party code. Works offline.
"use strict";

(() => {
  const $ = (sel) => document.querySelector(sel);
  const filesInput = $("#files");
  const drop = $("#drop");
  const statusEl = $("#status");
  const errorsEl = $("#errors");
  const errorsSection = $("#errors-section");
  const results = $("#results");
  const modelSelect = $("#model");
  let queue = Promise.resolve();
  let pending = 0;
  let counter = 0;

  function headers() {
    const key = $("#api-key").value.trim();
    return key ? { Authorization: `Bearer ${key}` } : {};
  }

  function el(tag, attrs = {}, ...children) {
    const node = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) {
      if (k === "class") node.className = v;
      else if (k === "text") node.textContent = v;
      else node.setAttribute(k, v);
    }
    for (const c of children) node.append(c);
    return node;
  }

  const SVG = "http://www.w3.org/2000/svg";
  const MAX_SIDE = 4096; // photos with a longer side are shrunk in this browser before upload
  const SHRINK_BYTES = 1.5 * 1024 * 1024; // smaller files go as they are (a decompression bomb is small too)
  const pct = (p) => `${Math.round(100 * p)}%`;
  const wholeYears = (age) => Math.floor(age + 0.5);
  // as agegender.types.group_text: an age in one of Adience's gaps (e.g. 57) is shown with its nearest group
  function groupText(f) {
    const m = /^(\d+)(?:-(\d+)|\+)$/.exec(f.age_group);
    const y = wholeYears(f.age);
    const holds = !m || (y >= Number(m[1]) && (m[2] === undefined || y <= Number(m[2])));
    return holds ? `group ${f.age_group}` : `nearest group ${f.age_group}`;
  }
  const faceLabel = (f, i) =>
    `${i}: ${f.gender} ${pct(f.gender_probability)}, age ${wholeYears(f.age)} ` +
    `(${Math.round(f.age_low)}–${Math.round(f.age_high)}), ${groupText(f)}`;

  function setStatus() {
    statusEl.textContent = pending ? `Analysing ${pending} photo${pending > 1 ? "s" : ""}…` : "";
  }

  function reject(name, message) {
    errorsSection.hidden = false;
    errorsEl.prepend(el("li", {}, el("strong", { text: name }), `: ${message}`));
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      if (body && body.error && body.error.message) return body.error.message;
    } catch (_) { /* not JSON */ }
    return `${response.status} ${response.statusText}`;
  }

  // A large photo is sent shrunk to MAX_SIDE (JPEG, EXIF orientation applied as the browser shows it):
  // faster uploads, and the server never sees more pixels than it needs. Returns {blob, scale}.
  async function shrink(file) {
    if (file.size <= SHRINK_BYTES || typeof createImageBitmap !== "function") return { blob: file, scale: 1 };
    let bitmap;
    try {
      bitmap = await createImageBitmap(file);
    } catch (_) {
      return { blob: file, scale: 1 }; // e.g. TIFF: this browser cannot read it, the server can
    }
    const long = Math.max(bitmap.width, bitmap.height);
    if (long <= MAX_SIDE) { bitmap.close(); return { blob: file, scale: 1 }; }
    const scale = MAX_SIDE / long;
    const fullWidth = bitmap.width;
    const canvas = document.createElement("canvas");
    canvas.width = Math.max(1, Math.round(bitmap.width * scale));
    canvas.height = Math.max(1, Math.round(bitmap.height * scale));
    const ctx = canvas.getContext("2d");
    ctx.fillStyle = "#fff"; // transparency on white, as the server does
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.imageSmoothingQuality = "high";
    ctx.drawImage(bitmap, 0, 0, canvas.width, canvas.height);
    bitmap.close();
    const blob = await new Promise((resolve) => canvas.toBlob(resolve, "image/jpeg", 0.92));
    return blob ? { blob, scale: canvas.width / fullWidth } : { blob: file, scale: 1 };
  }

  async function predict(upload, name, explain) {
    const params = new URLSearchParams({ labels: "true" });
    const maxFaces = $("#max-faces").value.trim();
    if (maxFaces) params.set("max_faces", maxFaces);
    if (modelSelect.value) params.set("model", modelSelect.value);
    if (explain) params.set("explain", "true");
    const form = new FormData();
    form.append("file", upload.blob, name);
    return fetch(`/v1/predict?${params}`, { method: "POST", body: form, headers: headers() });
  }

  function svg(tag, attrs) {
    const node = document.createElementNS(SVG, tag);
    for (const [k, v] of Object.entries(attrs)) node.setAttribute(k, String(v));
    return node;
  }

  // The labels where the server placed them (as on its annotated images: inside the photo, never over
  // each other), drawn in image pixels on an SVG laid over the photo, so they scale with it.
  function labelLayer(data) {
    const layer = svg("svg", { class: "labels", viewBox: `0 0 ${data.width} ${data.height}`,
      preserveAspectRatio: "none", "aria-hidden": "true" });
    data.faces.forEach((f) => {
      if (!f.label) return;
      const [x1, y1, x2, y2] = f.label.box;
      const g = svg("g", { class: `face-label ${f.gender}` });
      g.append(svg("rect", { x: x1, y: y1, width: x2 - x1, height: y2 - y1 }));
      for (const line of f.label.lines) {
        const t = svg("text", { x: line.x, y: line.y, "font-size": f.label.font_size,
          textLength: line.width, lengthAdjust: "spacingAndGlyphs" });
        t.textContent = line.text;
        g.append(t);
      }
      layer.append(g);
    });
    return layer;
  }

  function renderPhoto(file, data) {
    const url = URL.createObjectURL(file);
    const photo = el("div", { class: "photo" });
    const img = el("img", { src: url, alt: `${file.name}, ${data.faces.length} face(s) found` });
    img.addEventListener("error", () => {
      // e.g. TIFF: the server reads it, this browser cannot show it; the table still has every face
      photo.replaceChildren(el("p", { class: "model", text: "This browser cannot display this image format." }));
    });
    photo.append(img);
    data.faces.forEach((f, i) => {
      const [x1, y1, x2, y2] = f.box;
      const box = el("div", { class: `box ${f.gender}`, role: "img", "aria-label": faceLabel(f, i) });
      box.style.left = `${(100 * x1) / data.width}%`;
      box.style.top = `${(100 * y1) / data.height}%`;
      box.style.width = `${(100 * (x2 - x1)) / data.width}%`;
      box.style.height = `${(100 * (y2 - y1)) / data.height}%`;
      photo.append(box);
    });
    photo.append(labelLayer(data));
    return photo;
  }

  function renderTable(name, data, scale) {
    const table = el("table", { class: "faces" });
    table.append(el("caption", { text: `Faces in ${name}` }));
    const head = el("tr");
    for (const h of ["#", "Gender", "Probability", "Age", "Interval (10–90 %)", "Age group", "Box (x1, y1, x2, y2)"]) {
      head.append(el("th", { scope: "col", text: h }));
    }
    table.append(el("thead", {}, head));
    const body = el("tbody");
    data.faces.forEach((f, i) => {
      const row = el("tr");
      const group = groupText(f).startsWith("nearest") ? `${f.age_group} (nearest)` : f.age_group;
      const cells = [String(i), f.gender, pct(f.gender_probability), String(wholeYears(f.age)),
        `${f.age_low.toFixed(0)}–${f.age_high.toFixed(0)}`, group, f.box.map((v) => Math.round(v / scale)).join(", ")];
      cells.forEach((c, k) => row.append(el(k === 0 ? "th" : "td", k === 0 ? { scope: "row", text: c } : { text: c })));
      body.append(row);
    });
    table.append(body);
    return el("div", { class: "table-wrap", tabindex: "0", role: "region", "aria-label": `Faces in ${name}` }, table);
  }

  function renderAttention(container, data) {
    container.replaceChildren();
    data.faces.forEach((f, i) => {
      if (!f.attention_overlay) return;
      container.append(el("figure", {},
        el("img", { src: f.attention_overlay, alt: `Attention of the network on face ${i}` }),
        el("figcaption", { text: `face ${i}: red = more attention, blue = less` })));
    });
    if (!container.childElementCount) container.append(el("p", { text: "This model gives no attention map." }));
  }

  function renderResult(file, upload, data) {
    const id = `result-${++counter}`;
    const article = el("article", { class: "result", "aria-labelledby": `${id}-title` });
    const n = data.faces.length;
    article.append(el("h3", { id: `${id}-title`, text: `${file.name}: ${n ? `${n} face${n > 1 ? "s" : ""}` : "no face found"}` }));
    article.append(renderPhoto(file, data));
    if (n) {
      article.append(renderTable(file.name, data, upload.scale));
      const attention = el("div", { class: "attention", "aria-live": "polite" });
      const button = el("button", { type: "button", class: "explain", text: "Show attention overlay" });
      button.addEventListener("click", async () => {
        if (!attention.hidden && attention.childElementCount) { attention.hidden = true; button.textContent = "Show attention overlay"; return; }
        button.disabled = true;
        button.textContent = "Computing…";
        try {
          const r = await predict(upload, file.name, true);
          if (!r.ok) throw new Error(await errorMessage(r));
          renderAttention(attention, await r.json());
          attention.hidden = false;
          button.textContent = "Hide attention overlay";
        } catch (e) {
          reject(file.name, e.message);
          button.textContent = "Show attention overlay";
        } finally {
          button.disabled = false;
        }
      });
      article.append(button, attention);
      if (data.faces.some((f) => f.attention_overlay)) { renderAttention(attention, data); button.textContent = "Hide attention overlay"; }
    }
    const reduced = upload.scale < 1 ? `; analysed at ${data.width}×${data.height}, shrunk in this browser` : "";
    article.append(el("p", { class: "model", text: `model ${data.model.name} ${data.model.version}${reduced}` }));
    results.prepend(article);
  }

  async function analyse(file) {
    try {
      const upload = await shrink(file);
      const r = await predict(upload, file.name, $("#explain").checked);
      if (!r.ok) {
        reject(file.name, await errorMessage(r));
        return;
      }
      renderResult(file, upload, await r.json());
    } catch (e) {
      reject(file.name, `could not reach the server (${e.message})`);
    }
  }

  function clearMessages() {
    errorsEl.replaceChildren();
    errorsSection.hidden = true;
  }

  function enqueue(files) {
    if (!files.length) return;
    clearMessages(); // the rejections shown were about the previous photos
    for (const file of files) {
      pending += 1;
      setStatus();
      // one request at a time from this page: the server's queue is shared with everyone else
      queue = queue.then(() => analyse(file)).finally(() => { pending -= 1; setStatus(); });
    }
  }

  filesInput.addEventListener("change", () => {
    enqueue(Array.from(filesInput.files));
    filesInput.value = "";
  });
  for (const ev of ["dragenter", "dragover"]) {
    drop.addEventListener(ev, (e) => { e.preventDefault(); drop.classList.add("over"); });
  }
  for (const ev of ["dragleave", "drop"]) {
    drop.addEventListener(ev, () => drop.classList.remove("over"));
  }
  drop.addEventListener("drop", (e) => {
    e.preventDefault();
    enqueue(Array.from(e.dataTransfer.files));
  });

  // webcam snapshot, where the browser allows it (a secure context: https or localhost)
  const camOpen = $("#camera-open");
  const camPanel = $("#camera-panel");
  const video = $("#camera-video");
  let stream = null;
  if (navigator.mediaDevices && navigator.mediaDevices.getUserMedia) camOpen.hidden = false;
  function closeCamera() {
    if (stream) stream.getTracks().forEach((t) => t.stop());
    stream = null;
    camPanel.hidden = true;
    camOpen.hidden = false;
    camOpen.focus();
  }
  camOpen.addEventListener("click", async () => {
    try {
      stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: false });
      video.srcObject = stream;
      await video.play();
      camPanel.hidden = false;
      camOpen.hidden = true;
      $("#camera-snap").focus();
    } catch (e) {
      reject("camera", `not available (${e.message})`);
    }
  });
  $("#camera-close").addEventListener("click", closeCamera);
  $("#camera-snap").addEventListener("click", () => {
    const canvas = document.createElement("canvas");
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    canvas.getContext("2d").drawImage(video, 0, 0);
    canvas.toBlob((blob) => {
      if (blob) enqueue([new File([blob], `camera-${new Date().toISOString().slice(11, 19)}.jpg`, { type: "image/jpeg" })]);
    }, "image/jpeg", 0.92);
  });

  async function loadModels() {
    try {
      const r = await fetch("/v1/models", { headers: headers() });
      if (!r.ok) {
        modelSelect.append(el("option", { value: "", text: "server default" }));
        return;
      }
      for (const m of (await r.json()).models) {
        modelSelect.append(el("option", { value: m.key, text: `${m.key} (${m.name} ${m.version})` }));
      }
    } catch (_) {
      modelSelect.append(el("option", { value: "", text: "server default" }));
    }
  }
  loadModels();
  $("#api-key").addEventListener("change", () => { modelSelect.replaceChildren(); loadModels(); });
})();

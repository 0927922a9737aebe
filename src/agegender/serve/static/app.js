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

  const pct = (p) => `${Math.round(100 * p)}%`;
  const faceLabel = (f, i) =>
    `${i}: ${f.gender} ${pct(f.gender_probability)}, age ${Math.round(f.age)} ` +
    `(${Math.round(f.age_low)}–${Math.round(f.age_high)}), group ${f.age_group}`;

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

  async function predict(file, explain) {
    const params = new URLSearchParams();
    const maxFaces = $("#max-faces").value.trim();
    if (maxFaces) params.set("max_faces", maxFaces);
    if (modelSelect.value) params.set("model", modelSelect.value);
    if (explain) params.set("explain", "true");
    const form = new FormData();
    form.append("file", file, file.name);
    return fetch(`/v1/predict?${params}`, { method: "POST", body: form, headers: headers() });
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
      box.append(el("span", { class: `face-label ${y1 / data.height < 0.08 ? "below" : ""}`, text: faceLabel(f, i) }));
      photo.append(box);
    });
    return photo;
  }

  function renderTable(name, data) {
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
      const cells = [String(i), f.gender, pct(f.gender_probability), f.age.toFixed(1),
        `${f.age_low.toFixed(0)}–${f.age_high.toFixed(0)}`, f.age_group, f.box.map((v) => Math.round(v)).join(", ")];
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

  function renderResult(file, data) {
    const id = `result-${++counter}`;
    const article = el("article", { class: "result", "aria-labelledby": `${id}-title` });
    const n = data.faces.length;
    article.append(el("h3", { id: `${id}-title`, text: `${file.name}: ${n ? `${n} face${n > 1 ? "s" : ""}` : "no face found"}` }));
    article.append(renderPhoto(file, data));
    if (n) {
      article.append(renderTable(file.name, data));
      const attention = el("div", { class: "attention", "aria-live": "polite" });
      const button = el("button", { type: "button", class: "explain", text: "Show attention overlay" });
      button.addEventListener("click", async () => {
        if (!attention.hidden && attention.childElementCount) { attention.hidden = true; button.textContent = "Show attention overlay"; return; }
        button.disabled = true;
        button.textContent = "Computing…";
        try {
          const r = await predict(file, true);
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
    article.append(el("p", { class: "model", text: `model ${data.model.name} ${data.model.version}` }));
    results.prepend(article);
  }

  async function analyse(file) {
    try {
      const r = await predict(file, $("#explain").checked);
      if (!r.ok) {
        reject(file.name, await errorMessage(r));
        return;
      }
      renderResult(file, await r.json());
    } catch (e) {
      reject(file.name, `could not reach the server (${e.message})`);
    }
  }

  function enqueue(files) {
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

// Renders /openapi.json as a plain page (no CDN, no third-party code).
"use strict";

(async () => {
  const main = document.querySelector("#api");
  const el = (tag, text, cls) => { const n = document.createElement(tag); if (text) n.textContent = text; if (cls) n.className = cls; return n; };
  let spec;
  try {
    spec = await (await fetch("/openapi.json")).json();
  } catch (e) {
    main.replaceChildren(el("p", `Cannot load /openapi.json (${e.message})`));
    return;
  }
  const ref = (s) => (s && s.$ref ? s.$ref.split("/").pop() : null);
  const typeOf = (s) => {
    if (!s) return "";
    if (s.$ref) return ref(s);
    if (s.anyOf) return s.anyOf.map(typeOf).join(" | ");
    if (s.type === "array") return `${typeOf(s.items)}[]`;
    return s.format ? `${s.type} (${s.format})` : s.type || "object";
  };
  main.replaceChildren(el("p", spec.info.description || ""));
  for (const [path, ops] of Object.entries(spec.paths)) {
    for (const [method, op] of Object.entries(ops)) {
      const sec = el("section", null, "result");
      sec.append(el("h2", `${method.toUpperCase()} ${path}`));
      if (op.summary) sec.append(el("p", op.summary));
      if (op.description) sec.append(el("p", op.description));
      const params = op.parameters || [];
      if (params.length) {
        const t = el("table", null, "faces");
        t.append(el("caption", "Parameters"));
        const head = el("tr");
        ["name", "in", "type", "description"].forEach((h) => head.append(el("th", h)));
        t.append(head);
        for (const p of params) {
          const row = el("tr");
          [p.name, p.in, typeOf(p.schema), p.description || (p.schema && p.schema.description) || ""].forEach((c) => row.append(el("td", c)));
          t.append(row);
        }
        const wrap = el("div", null, "table-wrap");
        wrap.append(t);
        sec.append(wrap);
      }
      if (op.requestBody) sec.append(el("p", `Body: ${Object.keys(op.requestBody.content).join(", ")}`));
      const codes = Object.entries(op.responses || {}).map(([code, r]) => {
        const schema = r.content && r.content["application/json"] && r.content["application/json"].schema;
        return `${code}${schema ? ` ${typeOf(schema)}` : ""}`;
      });
      sec.append(el("p", `Responses: ${codes.join("; ")}`));
      main.append(sec);
    }
  }
  const schemas = (spec.components && spec.components.schemas) || {};
  main.append(el("h2", "Schemas"));
  for (const [name, s] of Object.entries(schemas)) {
    const sec = el("section", null, "result");
    sec.append(el("h3", name));
    if (s.description) sec.append(el("p", s.description));
    const ul = el("ul");
    for (const [field, f] of Object.entries(s.properties || {})) {
      ul.append(el("li", `${field}: ${typeOf(f)}${f.description ? ` (${f.description})` : ""}`));
    }
    sec.append(ul);
    main.append(sec);
  }
})();

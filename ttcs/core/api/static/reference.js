// Renders /api/v1/openapi.json as a readable reference. No dependencies, nothing from the
// internet: the hub serves this file and the document.
"use strict";

const el = (tag, attrs = {}, ...children) => {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (k === "class") node.className = v; else node.setAttribute(k, v);
  }
  for (const c of children) node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  return node;
};

let components = {};

function resolve(schema) {
  let seen = 0;
  while (schema && schema.$ref && seen++ < 20) {
    schema = components[schema.$ref.split("/").pop()] || {};
  }
  return schema || {};
}

function typeName(schema) {
  if (!schema) return "any";
  if (schema.$ref) return schema.$ref.split("/").pop();
  if (schema.enum) return schema.enum.map(v => JSON.stringify(v)).join(" | ");
  if (schema.const !== undefined) return JSON.stringify(schema.const);
  const union = schema.anyOf || schema.oneOf;
  if (union) return union.map(typeName).join(" | ");
  if (schema.type === "array") return typeName(schema.items) + "[]";
  if (schema.type === "object" && schema.additionalProperties) {
    return "map of " + typeName(schema.additionalProperties);
  }
  return schema.format ? `${schema.type} (${schema.format})` : (schema.type || "any");
}

function schemaTree(schema, depth = 0, seen = new Set()) {
  const box = el("div", { class: "schema" });
  const name = schema && schema.$ref ? schema.$ref.split("/").pop() : null;
  const target = resolve(schema);
  if (name) {
    if (seen.has(name) || depth > 4) { box.append(el("span", { class: "type" }, name)); return box; }
    seen = new Set(seen); seen.add(name);
  }
  const union = target.oneOf || target.anyOf;
  if (union && !target.properties) {
    box.append(el("span", { class: "type" }, "one of:"));
    for (const option of union) box.append(schemaTree(option, depth + 1, seen));
    return box;
  }
  if (target.type === "array" && target.items) {
    box.append(el("span", { class: "type" }, "array of"), schemaTree(target.items, depth + 1, seen));
    return box;
  }
  const props = target.properties || {};
  if (!Object.keys(props).length) {
    box.append(el("span", { class: "type" }, typeName(schema)));
    return box;
  }
  if (name) box.append(el("span", { class: "type" }, name));
  const required = new Set(target.required || []);
  const table = el("table");
  for (const [prop, sub] of Object.entries(props)) {
    const cell = el("td", {}, el("span", { class: "type" }, typeName(sub)));
    if (sub.description) cell.append(" — ", sub.description);
    const inner = resolve(sub.anyOf ? sub.anyOf.find(s => s.$ref) || sub : sub);
    if ((sub.$ref || (sub.anyOf && sub.anyOf.some(s => s.$ref))) && inner.properties && depth < 3) {
      cell.append(schemaTree(sub.$ref ? sub : sub.anyOf.find(s => s.$ref), depth + 1, seen));
    }
    table.append(el("tr", {}, el("td", {}, el("code", {}, prop),
      required.has(prop) ? el("span", { class: "req" }, " required") : ""), cell));
  }
  box.append(table);
  return box;
}

function operation(path, method, op) {
  const id = op.operationId || `${method}-${path}`;
  const box = el("section", { class: "op", id });
  box.append(el("h3", {}, el("span", { class: `method ${method.toUpperCase()}` }, method.toUpperCase()),
    el("span", { class: "path" }, path)));
  box.append(el("p", {}, op.summary || ""));
  if (op.description) box.append(el("p", { class: "desc" }, op.description));
  if (op.security && op.security.length === 0) box.append(el("p", { class: "needs" }, "No token needed."));
  if (op.parameters && op.parameters.length) {
    const table = el("table", {}, el("tr", {}, el("th", {}, "parameter"), el("th", {}, "in"),
      el("th", {}, "type"), el("th", {}, "description")));
    for (const p of op.parameters) {
      table.append(el("tr", {}, el("td", {}, el("code", {}, p.name), p.required ? el("span", { class: "req" }, " required") : ""),
        el("td", {}, p.in), el("td", {}, el("span", { class: "type" }, typeName(p.schema))),
        el("td", {}, p.description || "")));
    }
    box.append(el("h4", {}, "Parameters"), table);
  }
  if (op.requestBody) {
    box.append(el("h4", {}, "Body"));
    for (const [media, content] of Object.entries(op.requestBody.content || {})) {
      box.append(el("p", {}, el("code", {}, media)), schemaTree(content.schema));
    }
  }
  box.append(el("h4", {}, "Responses"));
  const table = el("table");
  for (const [status, response] of Object.entries(op.responses || {})) {
    const cell = el("td", {}, response.description || "");
    const content = response.content || {};
    const first = Object.entries(content)[0];
    if (first && status.startsWith("2")) {
      cell.append(" ", el("code", {}, Object.keys(content).join(", ")), schemaTree(first[1].schema));
    } else if (first) {
      cell.append(" ", el("code", {}, first[0]));
    }
    table.append(el("tr", {}, el("td", {}, el("code", {}, status)), cell));
  }
  box.append(table);
  return box;
}

async function main() {
  const response = await fetch("/api/v1/openapi.json");
  const doc = await response.json();
  components = (doc.components && doc.components.schemas) || {};
  document.getElementById("version").textContent = `${doc.info.title} ${doc.info.version} — OpenAPI ${doc.openapi}`;
  const main = document.getElementById("doc");
  const toc = document.getElementById("toc");
  main.replaceChildren(el("div", { class: "desc" }, doc.info.description || ""));
  const byTag = new Map();
  for (const [path, methods] of Object.entries(doc.paths)) {
    for (const [method, op] of Object.entries(methods)) {
      const tag = (op.tags && op.tags[0]) || "other";
      if (!byTag.has(tag)) byTag.set(tag, []);
      byTag.get(tag).push([path, method, op]);
    }
  }
  for (const [tag, ops] of byTag) {
    toc.append(el("h3", {}, tag));
    main.append(el("h2", { id: `tag-${tag}` }, tag));
    for (const [path, method, op] of ops) {
      const id = op.operationId || `${method}-${path}`;
      toc.append(el("a", { href: `#${id}` }, `${method.toUpperCase()} ${path.replace("/api/v1", "")}`));
      main.append(operation(path, method, op));
    }
  }
}

main().catch(err => {
  document.getElementById("doc").replaceChildren(el("p", {}, `Could not load the API document: ${err}`));
});

//! `report.html` of a recipe: one self-contained file (no CDN, no network) — the recipe's data
//! embedded as JSON and a small script that draws, as SVG: size × KLD with each method's Pareto
//! front and the reference presets, speed × size, and a per-tensor type map (layers × roles,
//! coloured by bits per weight) for a chosen file.

use crate::recipe::Recipe;

/// The page for `recipe`.
pub fn render(recipe: &Recipe) -> String {
    let json = serde_json::to_string(recipe).expect("serialisable");
    // Inside <script>, "</" would end the element: no '<' at all (JSON's \u003c is the same).
    let json = json.replace('<', "\\u003c");
    TEMPLATE.replace("__DATA__", &json)
}

const TEMPLATE: &str = r##"<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>lowbit recipe</title>
<style>
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1100px; }
h1 { font-size: 20px; } h2 { font-size: 16px; margin-top: 28px; }
svg { background: #fafafa; border: 1px solid #ddd; }
.axis { stroke: #888; } .grid { stroke: #e4e4e4; } text { font-size: 11px; fill: #444; }
table { border-collapse: collapse; font-size: 12px; } td, th { padding: 3px 8px; border-bottom: 1px solid #eee; text-align: right; }
th { background: #f3f3f3; } td.l, th.l { text-align: left; }
.legend span { display: inline-block; margin-right: 14px; } .sw { display: inline-block; width: 10px; height: 10px; margin-right: 4px; vertical-align: middle; }
</style>
</head>
<body>
<h1>lowbit recipe</h1>
<p id="meta"></p>
<h2>Size × KLD (held-out calibration windows; lower left is better)</h2>
<div class="legend" id="legend"></div>
<svg id="kld" width="860" height="420"></svg>
<h2>Speed × size (generation tokens/s, 2 threads)</h2>
<svg id="speed" width="860" height="320"></svg>
<h2>Per-tensor types</h2>
<p><select id="pick"></select></p>
<svg id="map" width="860" height="200"></svg>
<h2>Files</h2>
<table id="files"></table>
<script>
const R = __DATA__;
const NS = "http://www.w3.org/2000/svg";
const COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"];
const methods = [...new Set(R.points.map(p => p.method))];
const esc = s => String(s).replace(/[&<>"']/g, c => ({"&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;"})[c]);
const color = m => COLORS[methods.indexOf(m) % COLORS.length];
const BPW = {Q2_K: 2.625, Q3_K: 3.4375, IQ4_XS: 4.25, Q4_0: 4.5, IQ4_NL: 4.5, Q4_K: 4.5, Q4_1: 5, Q5_0: 5.5, Q5_K: 5.5, Q5_1: 6, Q6_K: 6.5625, Q8_0: 8.5, F16: 16, F32: 32};
function el(name, attrs, parent, text) {
  const e = document.createElementNS(NS, name);
  for (const k in attrs) e.setAttribute(k, attrs[k]);
  if (text !== undefined) e.textContent = text;
  if (parent) parent.appendChild(e);
  return e;
}
function scatter(svg, pts, refs, xf, yf, ylog, xlabel, ylabel, cls) {
  const W = +svg.getAttribute("width"), H = +svg.getAttribute("height"), L = 70, B = 40, T = 14, Rm = 16;
  const all = pts.map(xf).concat(refs.map(r => r.bytes / 1e6));
  const ys = pts.map(yf).concat(refs.map(r => r.kld)).filter(v => v > 0 || !ylog);
  let x0 = Math.min(...all), x1 = Math.max(...all); const dx = (x1 - x0) * 0.08 || 1; x0 -= dx; x1 += dx;
  const ty = v => ylog ? Math.log10(Math.max(v, 1e-6)) : v;
  let y0 = Math.min(...ys.map(ty)), y1 = Math.max(...ys.map(ty)); const dy = (y1 - y0) * 0.1 || 0.5; y0 -= dy; y1 += dy;
  const X = v => L + (v - x0) / (x1 - x0) * (W - L - Rm), Y = v => H - B - (ty(v) - y0) / (y1 - y0) * (H - B - T);
  for (let i = 0; i <= 5; i++) {
    const xv = x0 + (x1 - x0) * i / 5, yv = y0 + (y1 - y0) * i / 5;
    el("line", {x1: X(xv), x2: X(xv), y1: T, y2: H - B, class: "grid"}, svg);
    el("text", {x: X(xv), y: H - B + 14, "text-anchor": "middle"}, svg, xv.toFixed(1));
    const yy = H - B - (yv - y0) / (y1 - y0) * (H - B - T);
    el("line", {x1: L, x2: W - Rm, y1: yy, y2: yy, class: "grid"}, svg);
    el("text", {x: L - 6, y: yy + 4, "text-anchor": "end"}, svg, ylog ? Math.pow(10, yv).toPrecision(2) : yv.toFixed(0));
  }
  el("line", {x1: L, x2: W - Rm, y1: H - B, y2: H - B, class: "axis"}, svg);
  el("line", {x1: L, x2: L, y1: T, y2: H - B, class: "axis"}, svg);
  el("text", {x: (L + W) / 2, y: H - 6, "text-anchor": "middle"}, svg, xlabel);
  el("text", {x: 14, y: (T + H - B) / 2, transform: `rotate(-90 14 ${(T + H - B) / 2})`, "text-anchor": "middle"}, svg, ylabel);
  if (cls === "mark") {
    for (const m of methods) {
      const front = pts.filter(p => p.method === m && p.pareto).sort((a, b) => a.bytes - b.bytes);
      if (front.length > 1) el("polyline", {points: front.map(p => `${X(xf(p))},${Y(yf(p))}`).join(" "), fill: "none", stroke: color(m), "stroke-width": 1.5, "stroke-dasharray": "4 3"}, svg);
    }
    for (const r of refs) {
      const g = el("rect", {x: X(r.bytes / 1e6) - 5, y: Y(r.kld) - 5, width: 10, height: 10, fill: "none", stroke: "#555", class: "ref"}, svg);
      el("title", {}, g, `${r.name}: ${(r.bytes / 1e6).toFixed(2)} MB, KLD ${r.kld}`);
      el("text", {x: X(r.bytes / 1e6) + 7, y: Y(r.kld) - 6}, svg, r.name);
    }
  }
  for (const p of pts) {
    const c = el("circle", {cx: X(xf(p)), cy: Y(yf(p)), r: 6, fill: color(p.method), "fill-opacity": p.pareto ? 0.95 : 0.45, class: cls, "data-file": p.file}, svg);
    el("title", {}, c, `${p.file}: ${(p.bytes / 1e6).toFixed(2)} MB, ${p.bpw.toFixed(3)} bpw, KLD ${p.kld.toFixed(4)}, PPL ×${p.ppl_ratio.toFixed(4)}, top-1 ${(100 * p.top1).toFixed(1)}%, ${p.gen_tps.toFixed(0)} tok/s`);
  }
}
function typemap(p) {
  const svg = document.getElementById("map");
  while (svg.firstChild) svg.removeChild(svg.firstChild);
  const roles = ["attn_q", "attn_k", "attn_v", "attn_output", "ffn_gate", "ffn_up", "ffn_down"];
  const n = R.n_layer, cw = Math.min(24, 760 / (n + 1)), ch = 18, L = 90, T = 10;
  svg.setAttribute("height", T + (roles.length + 1) * ch + 44);
  const types = Object.fromEntries(p.types);
  // One colour per type, ordered from few bits (blue) to many (red).
  const order = Object.keys(BPW).sort((a, b) => BPW[a] - BPW[b]);
  const hue = ty => Math.round(240 - order.indexOf(ty) / Math.max(1, order.length - 1) * 240);
  const shade = ty => `hsl(${hue(ty)}, 70%, ${ty.startsWith("IQ") ? 40 : 55}%)`;
  roles.forEach((r, i) => {
    el("text", {x: L - 6, y: T + i * ch + 13, "text-anchor": "end"}, svg, r);
    for (let l = 0; l < n; l++) {
      const ty = types[`blk.${l}.${r}.weight`];
      const c = el("rect", {x: L + l * cw, y: T + i * ch, width: cw - 1, height: ch - 1, fill: ty ? shade(ty) : "#eee", class: "cell"}, svg);
      el("title", {}, c, `blk.${l}.${r}: ${ty || "kept"}`);
    }
  });
  const head = types["output.weight"] || types["token_embd.weight"];
  el("text", {x: L - 6, y: T + roles.length * ch + 13, "text-anchor": "end"}, svg, "head");
  const hc = el("rect", {x: L, y: T + roles.length * ch, width: cw * 3, height: ch - 1, fill: head ? shade(head) : "#eee", class: "cell"}, svg);
  el("title", {}, hc, `LM head / tied embedding: ${head || "kept"}`);
  for (let l = 0; l < n; l += Math.max(1, Math.round(n / 10))) el("text", {x: L + l * cw + cw / 2, y: T + (roles.length + 1) * ch + 12, "text-anchor": "middle"}, svg, l);
  const used = [...new Set(Object.values(types))].sort((a, b) => (BPW[a] || 0) - (BPW[b] || 0));
  used.forEach((ty, i) => {
    el("rect", {x: L + i * 125, y: T + (roles.length + 1) * ch + 18, width: 12, height: 12, fill: shade(ty)}, svg);
    el("text", {x: L + 16 + i * 125, y: T + (roles.length + 1) * ch + 28}, svg, `${ty} (${BPW[ty] || "?"} bpw)`);
  });
}
document.getElementById("meta").textContent = `${R.model} — calibrated on ${R.calib}; ${R.points.length} files measured on held-out windows of the calibration text.`;
document.getElementById("legend").innerHTML = methods.map(m => `<span><i class="sw" style="background:${color(m)}"></i>${esc(m)}</span>`).join("") + (R.references.length ? `<span><i class="sw" style="border:1px solid #555"></i>references</span>` : "");
scatter(document.getElementById("kld"), R.points, R.references, p => p.bytes / 1e6, p => p.kld, true, "file size (MB)", "KLD", "mark");
scatter(document.getElementById("speed"), R.points, [], p => p.bytes / 1e6, p => p.gen_tps, false, "file size (MB)", "generation tokens/s", "speed-mark");
const pick = document.getElementById("pick");
R.points.forEach((p, i) => { const o = document.createElement("option"); o.value = i; o.textContent = p.file; pick.appendChild(o); });
pick.addEventListener("change", () => typemap(R.points[+pick.value]));
if (R.points.length) typemap(R.points[0]);
const t = document.getElementById("files");
t.innerHTML = "<tr><th class='l'>file</th><th class='l'>method</th><th>budget</th><th>MB</th><th>bpw</th><th>KLD</th><th>predicted</th><th>PPL ×</th><th>top-1 %</th><th>pp t/s</th><th>tg t/s</th><th>Pareto</th></tr>" +
  R.points.map(p => `<tr><td class="l">${esc(p.file)}</td><td class="l">${esc(p.method)}</td><td>${esc(p.budget)}</td><td>${(p.bytes / 1e6).toFixed(2)}</td><td>${p.bpw.toFixed(3)}</td><td>${p.kld.toFixed(4)}</td><td>${p.predicted_kld.toFixed(4)}</td><td>${p.ppl_ratio.toFixed(4)}</td><td>${(100 * p.top1).toFixed(1)}</td><td>${p.prompt_tps.toFixed(0)}</td><td>${p.gen_tps.toFixed(0)}</td><td>${p.pareto ? "●" : ""}</td></tr>`).join("");
</script>
</body>
</html>
"##;

// instruction-anchors explorer: the sample browser and one sample's panels. Data arrive as JSON
// through ANCHORS.index (index.js) and ANCHORS.chunk (chunk-NNNN.js, loaded when first needed);
// every text from data is shown with textContent, and Plotly receives numbers and our own labels.
"use strict";

const ANCHORS = (() => {
  const IMAGE = new Set(["visual", "region", "off_region"]);
  const state = { index: null, chunks: {}, pending: {}, visible: [], current: null, layer: 0, pathway: 0,
                  head: null, plotly: false, tableGeneration: 0, timings: { start: performance.now() } };
  const $ = (id) => document.getElementById(id);
  const fmt = (x) => (x === null || x === undefined) ? "—" : Number(x).toPrecision(4);
  const element = (tag, text, cls) => {
    const node = document.createElement(tag);
    if (text !== undefined) node.textContent = String(text);
    if (cls) node.className = cls;
    return node;
  };
  const FILTERS = ["instructed", "followed", "task", "style", "variant"];
  const SORTS = {
    "data order": null,
    "final margin (lowest first)": (r) => r.final_margin,
    "final margin (highest first)": (r) => r.final_margin === null ? null : -r.final_margin,
    "largest knockout effect": (r) => r.knockout_max === null ? null : -r.knockout_max,
    "largest change under head intervention": (r) => r.head_change === null ? null : -r.head_change,
  };
  const followedText = (f) => f === null || f === undefined ? "" : (f ? "followed" : "failed");

  function select(label, options, onChange, id) {
    const wrap = element("label", label);
    const box = element("select");
    box.id = id;
    for (const option of options) box.appendChild(element("option", option));
    box.addEventListener("change", onChange);
    wrap.appendChild(box);
    return wrap;
  }

  function buildFilters() {
    const rows = state.index.rows, filters = $("filters");
    for (const name of FILTERS) {
      const values = [...new Set(rows.map((r) => name === "followed" ? followedText(r.followed) : r[name]))]
        .filter((v) => v !== "" && v !== null && v !== undefined).sort();
      if (values.length > 1) filters.appendChild(select(name, ["all", ...values], refreshTable, `filter-${name}`));
    }
    const sorts = Object.keys(SORTS).filter((name) => SORTS[name] === null || rows.some((r) => SORTS[name](r) !== null));
    filters.appendChild(select("sort", sorts, refreshTable, "sort"));
  }

  function refreshTable() {
    const rows = state.index.rows;
    let visible = rows.map((_, i) => i).filter((i) => FILTERS.every((name) => {
      const box = $(`filter-${name}`);
      if (!box || box.value === "all") return true;
      const value = name === "followed" ? followedText(rows[i].followed) : rows[i][name];
      return String(value) === box.value;
    }));
    const key = SORTS[$("sort").value];
    if (key) visible.sort((a, b) => {
      const x = key(rows[a]), y = key(rows[b]);
      return (x === null) - (y === null) || (x === null ? 0 : x - y) || a - b;
    });
    state.visible = visible;
    const body = $("samples").tBodies[0];
    body.replaceChildren();
    const generation = ++state.tableGeneration;
    const addRows = (from, to) => {
      if (generation !== state.tableGeneration) return;  // a newer filter or sort replaced this table
      const fragment = document.createDocumentFragment();
      for (const i of visible.slice(from, to)) fragment.appendChild(tableRow(rows[i], i));
      body.appendChild(fragment);
      // the rest when the page is idle: after the first sample's chunk and plotly.js are parsed
      if (to < visible.length) requestIdleCallback(() => addRows(to, to + 500), { timeout: 2000 });
      else markSelected();
    };
    addRows(0, 100);  // the first screenful now, the rest in the background
    $("count").textContent = `${visible.length} of ${rows.length} samples`;
    if (visible.length && !visible.includes(state.current)) show(visible[0]);
    else markSelected();
  }

  function tableRow(r, i) {
    const tr = element("tr");
    tr.dataset.index = i;
    const cell = (column, text, cls) => { const td = element("td", text, cls); td.dataset.column = column; tr.appendChild(td); };
    for (const name of state.columns) cell(name, r[name] ?? "");
    cell("followed", followedText(r.followed), r.followed === false ? "followed-no" : "");
    for (const [name] of state.numbers) cell(name, fmt(r[name]));
    tr.addEventListener("click", () => show(i));
    return tr;
  }

  function markSelected() {
    const wrap = $("table-wrap");
    for (const tr of $("samples").tBodies[0].rows) {
      const selected = Number(tr.dataset.index) === state.current;
      tr.classList.toggle("selected", selected);
      if (!selected) continue;
      const row = tr.getBoundingClientRect(), box = wrap.getBoundingClientRect(), header = $("samples").tHead.offsetHeight;
      if (row.top < box.top + header || row.bottom > box.bottom) wrap.scrollTop += row.top - box.top - box.height / 2;
    }
  }

  function show(i) {
    state.current = i;
    markSelected();
    const c = state.index.rows[i].chunk;
    if (state.chunks[c]) return render();
    $("sample-title").textContent = `loading ${state.index.rows[i].id} …`;
    if (state.pending[c]) return;
    const tag = document.createElement("script");
    tag.src = `explore/chunk-${String(c).padStart(4, "0")}.js`;
    tag.onerror = () => { $("sample-title").textContent = `could not load ${tag.src}`; };
    state.pending[c] = tag;
    document.head.appendChild(tag);
  }

  function sample() {
    const row = state.index.rows[state.current];
    return [row, state.chunks[row.chunk][state.current % state.index.chunk_size]];
  }

  function renderFacts(row, s) {
    $("sample-title").textContent = `sample ${row.id}`;
    const facts = $("facts");
    facts.replaceChildren();
    const entries = [["instructed to follow", row.instructed], ["task", row.task], ["wording", row.style],
      ["variant", row.variant], ["answer (greedy)", row.answer], ["followed", followedText(row.followed)],
      ["compliant dictionary", s.compliant_forms.join(", ")], ["competing dictionary", s.competing_forms.join(", ")],
      ["final margin", fmt(row.final_margin)]];
    for (const [k, v] of entries) { facts.appendChild(element("dt", k)); facts.appendChild(element("dd", v ?? "")); }
    const image = $("image");
    image.classList.toggle("missing", !s.image);
    if (s.image) image.src = `explore/${s.image}`; else image.removeAttribute("src");
    renderOverlay(s, false);
  }

  // the region box (orange) over the image and, while the image tokens' chip is hovered, each image
  // token's rectangle in the original image's pixels (those in the region shaded)
  function renderOverlay(s, tokens) {
    const svg = $("overlay"), caption = $("picture-caption");
    svg.replaceChildren();
    const size = s.image_size;
    if (!s.image || !size || size[0] < 0) { caption.textContent = ""; return; }
    svg.setAttribute("viewBox", `0 0 ${size[1]} ${size[0]}`);
    svg.style.height = `${240 * size[0] / size[1]}px`;
    const draw = (box, cls) => {
      const node = document.createElementNS("http://www.w3.org/2000/svg", "rect");
      [["x", box[0]], ["y", box[1]], ["width", box[2] - box[0]], ["height", box[3] - box[1]]].forEach(([k, v]) => node.setAttribute(k, v));
      node.setAttribute("class", cls);
      svg.appendChild(node);
    };
    const boxes = s.boxes || [];
    if (tokens) boxes.forEach((box, k) => { if (box[0] !== null) draw(box, s.in_region[k] ? "token-box in-region" : "token-box"); });
    const region = s.region && s.region[0] !== null ? s.region : null;
    if (region) draw(region, "region-box");
    const inside = (s.in_region || []).filter(Boolean).length;
    caption.textContent = (region ? `region box (orange): ${inside} of ${boxes.length} image tokens overlap it. ` : "") +
      (boxes.length ? "Hover the image tokens in the prompt to see each one's rectangle." : "");
  }

  function renderTokens(s) {
    // runs of one repeated (token, role); consecutive visual runs make one chip
    const strip = $("tokens"), roles = state.index.meta.roles;
    strip.replaceChildren();
    if (!s.tokens.length) strip.appendChild(element("span", "no tokens recorded: these results were written before results carried them; run the analysis again to see the prompt", "hint"));
    let position = 0;
    for (let r = 0; r < s.tokens.length; r++) {
      const [text, code] = s.tokens[r], role = roles[code];
      let count = s.tokens[r][2], last = r;
      // the image's tokens (visual, or region and off_region where the sample has a region box) make one chip
      let inRegion = role === "region" ? count : 0;
      if (IMAGE.has(role)) while (last + 1 < s.tokens.length && IMAGE.has(roles[s.tokens[last + 1][1]])) {
        last++;
        count += s.tokens[last][2];
        if (roles[s.tokens[last][1]] === "region") inRegion += s.tokens[last][2];
      }
      const shown = text.replace(/\n/g, "⏎");
      if (!IMAGE.has(role)) {
        for (let k = 0; k < count; k++) strip.appendChild(chip(shown, role, `position ${position + k}: ${role}`));
      } else {
        const end = position + count - 1, regionNote = inRegion ? `, ${inRegion} in the region` : "";
        const node = chip(count > 1 ? `${shown} × ${count}` : shown, inRegion ? "region" : "visual",
                          count > 1 ? `positions ${position}–${end}: ${count} image tokens${regionNote}` : `position ${position}: ${role}`);
        node.classList.add("image-tokens");
        node.addEventListener("mouseenter", () => renderOverlay(s, true));
        node.addEventListener("mouseleave", () => renderOverlay(s, false));
        strip.appendChild(node);
      }
      position += count;
      r = last;
    }
  }

  function chip(text, role, title) {
    const node = element("span", text, `token role-${role}`);
    node.title = title;
    node.dataset.role = role;
    return node;
  }

  function readout(key, label, value) {
    const dl = $("readouts");
    dl.appendChild(element("dt", label));
    const dd = element("dd", fmt(value));
    dd.dataset.key = key;
    dl.appendChild(dd);
  }

  function renderReadouts(row, s) {
    const meta = state.index.meta;
    $("readouts").replaceChildren();
    const layer = meta.layers ? meta.layers[state.layer] : undefined;
    for (const name of meta.lens) readout(`lens:${name}`, `margin at the ${name}, after layer ${layer}`, s[`lens:${name}`][state.layer]);
    if (s.knockout) {
      const centre = meta.knockout_layers[state.layer];
      readout("knockout", `NSSD, ${meta.pathways[state.pathway]} cut at layers centred on ${centre} (window ${meta.window})`,
              s.knockout[state.pathway][state.layer]);
    }
    if (s.heads && state.head) {
      const [l, h] = state.head;
      readout("head", `attribution of head ${h} in layer ${meta.layers[l]}`, s.heads[l][h]);
    }
  }

  const PLOT = { displayModeBar: false, responsive: true };
  const margin = { l: 150, r: 10, t: 30, b: 40 };

  function onPlotClick(panel, handler) {
    // one handler per plot: Plotly.react keeps the listeners of the sample drawn before
    panel.removeAllListeners("plotly_click");
    panel.on("plotly_click", handler);
  }

  function renderLens(row, s) {
    const meta = state.index.meta, panel = $("panel-lens");
    if (!meta.lens.length) return panel.replaceChildren();
    const band = ((meta.population || {})[row.instructed]) || {};
    const traces = [];
    meta.lens.forEach((name, j) => {
      const axis = j ? `${j + 1}` : "";
      const pop = band[name];
      if (pop) {
        traces.push({ x: meta.layers, y: pop.high, mode: "lines", line: { width: 0 }, showlegend: false, hoverinfo: "skip", xaxis: `x${axis}`, yaxis: `y${axis}` });
        traces.push({ x: meta.layers, y: pop.low, mode: "lines", line: { width: 0 }, fill: "tonexty", fillcolor: "rgba(120,120,120,0.2)",
                      name: `${meta.band[0]}–${meta.band[1]}th percentile, ${row.instructed}-instructed`, showlegend: j === 0, xaxis: `x${axis}`, yaxis: `y${axis}` });
        traces.push({ x: meta.layers, y: pop.mean, mode: "lines", line: { dash: "dash", color: "#555" }, name: "population mean",
                      showlegend: j === 0, xaxis: `x${axis}`, yaxis: `y${axis}` });
      }
      traces.push({ x: meta.layers, y: s[`lens:${name}`], mode: "lines+markers", line: { color: "#1f5fbf" }, name: "this sample",
                    showlegend: j === 0, xaxis: `x${axis}`, yaxis: `y${axis}` });
    });
    const n = meta.lens.length, layout = { height: 280, margin: { l: 50, r: 10, t: 40, b: 40 }, legend: { orientation: "h", y: -0.25 }, annotations: [] };
    meta.lens.forEach((name, j) => {
      const axis = j ? `${j + 1}` : "";
      layout[`xaxis${axis}`] = { domain: [j / n + 0.02, (j + 1) / n - 0.04], title: { text: "layer" }, dtick: 1 };
      layout[`yaxis${axis}`] = { anchor: `x${axis}`, title: { text: j === 0 ? "lens margin (logit)" : "" } };
      layout.annotations.push({ text: `at the ${name}`, xref: "paper", yref: "paper", x: (j + 0.5) / n, y: 1.12, showarrow: false });
    });
    layout.shapes = meta.lens.map((_, j) => ({ type: "line", xref: `x${j ? j + 1 : ""}`, yref: `y${j ? j + 1 : ""} domain`,
      x0: meta.layers[state.layer], x1: meta.layers[state.layer], y0: 0, y1: 1, line: { color: "#c33", width: 1 } }));
    Plotly.react(panel, traces, layout, PLOT);
    onPlotClick(panel, (event) => { state.layer = meta.layers.indexOf(event.points[0].x); syncPickers(); render(); });
  }

  function renderKnockout(row, s) {
    const meta = state.index.meta, panel = $("panel-knockout");
    if (!s.knockout) return panel.replaceChildren();
    if (s.knockout.every((r) => r.every((v) => v === null))) {
      Plotly.purge(panel);
      return panel.replaceChildren(element("p", "knockout: this sample is not in the knockout result", "hint"));
    }
    Plotly.react(panel, [{ type: "heatmap", z: s.knockout, x: meta.knockout_layers, y: meta.pathways, colorscale: "RdBu",
                          zmid: 0, colorbar: { title: { text: "NSSD" } }, hovertemplate: "%{y}, layer %{x}: %{z:.4g}<extra></extra>" }],
                 { height: 60 + 28 * meta.pathways.length, margin, title: { text: `knockout NSSD of this sample (window ${meta.window})`, font: { size: 13 } },
                   xaxis: { title: { text: "centre layer" }, dtick: 1 },
                   shapes: [{ type: "rect", x0: meta.knockout_layers[state.layer] - 0.5, x1: meta.knockout_layers[state.layer] + 0.5,
                     y0: state.pathway - 0.5, y1: state.pathway + 0.5, line: { color: "#000", width: 2 } }] }, PLOT);
    onPlotClick(panel, (event) => {
      state.pathway = meta.pathways.indexOf(event.points[0].y);
      state.layer = meta.knockout_layers.indexOf(event.points[0].x);
      syncPickers(); render();
    });
  }

  function renderHeads(row, s) {
    const meta = state.index.meta, panel = $("panel-heads");
    if (!s.heads) return panel.replaceChildren();
    Plotly.react(panel, [{ type: "heatmap", z: s.heads, x: meta.heads, y: meta.layers, colorscale: "RdBu", zmid: 0,
                          colorbar: { title: { text: "logit" } }, hovertemplate: "layer %{y}, head %{x}: %{z:.4g}<extra></extra>" }],
                 { height: 120 + 22 * meta.layers.length, margin: { l: 50, r: 10, t: 30, b: 40 },
                   title: { text: "head attributions of this sample (Eq 9): click a head", font: { size: 13 } },
                   xaxis: { title: { text: "head" }, dtick: 1 }, yaxis: { title: { text: "layer" }, dtick: 1 },
                   shapes: state.head ? [{ type: "rect", x0: meta.heads[state.head[1]] - 0.5, x1: meta.heads[state.head[1]] + 0.5,
                     y0: meta.layers[state.head[0]] - 0.5, y1: meta.layers[state.head[0]] + 0.5, line: { color: "#000", width: 2 } }] : [] }, PLOT);
    onPlotClick(panel, (event) => {
      state.head = [meta.layers.indexOf(event.points[0].y), meta.heads.indexOf(event.points[0].x)];
      render();
    });
  }

  function renderHeadDetail(row, s) {
    const meta = state.index.meta, detail = $("head-detail");
    if (!state.head || !s.heads) return detail.replaceChildren();
    const [l, h] = state.head, mean = ((meta.head_mean || {})[row.instructed] || [])[l];
    const parts = [`head ${h} of layer ${meta.layers[l]}: attribution ${fmt(s.heads[l][h])} for this sample`,
                   `mean ${fmt(mean ? mean[h] : null)} over ${row.instructed}-instructed samples`];
    for (const result of meta.interventions) {
      const ranking = result.ranking[row.instructed];
      if (ranking) parts.push(`rank ${ranking.indexOf(meta.layers[l] * result.heads_per_layer + meta.heads[h]) + 1} of ${ranking.length} in ${result.name}'s ${row.instructed} ranking`);
    }
    parts.push("attention to the image: no attention result in this run");
    detail.textContent = parts.join("; ");
  }

  function renderInterventions(row, s) {
    const panel = $("panel-interventions");
    panel.replaceChildren();
    const said = (v) => v === null ? "—" : v === 1 ? "follows" : v === 0 ? "fails" : `${Math.round(100 * v)}% of draws follow`;
    for (const result of state.index.meta.interventions) {
      const values = s[`interventions:${result.name}`];
      if (!values) continue;
      panel.appendChild(element("h3", `Head interventions (${result.name}): does this sample follow under each setting?`));
      const table = element("table"), rows = new Map();
      result.settings.forEach(([rowLabel, column], j) => {
        if (!rows.has(rowLabel)) rows.set(rowLabel, []);
        rows.get(rowLabel).push([column, values[j]]);
      });
      for (const [rowLabel, cells] of rows) {
        const tr = element("tr");
        tr.appendChild(element("th", rowLabel));
        for (const [column, v] of cells) {
          const td = element("td", `${column}: ${said(v)}`, v === 0 ? "followed-no" : "");
          td.dataset.setting = `${rowLabel} ${column}`;
          tr.appendChild(td);
        }
        table.appendChild(tr);
      }
      panel.appendChild(table);
      panel.appendChild(element("p", "—: not evaluated (blocking runs on followed samples, amplifying on failed ones); random heads: share of draws.", "hint"));
    }
  }

  function syncPickers() {
    const layer = $("pick-layer"), pathway = $("pick-pathway");
    if (layer) layer.selectedIndex = state.layer;
    if (pathway) pathway.selectedIndex = state.pathway;
  }

  function buildPickers() {
    const meta = state.index.meta, pickers = $("pickers");
    const layers = meta.layers || meta.knockout_layers;
    if (layers) pickers.appendChild(select("layer", layers.map(String), (e) => { state.layer = e.target.selectedIndex; render(); }, "pick-layer"));
    if (meta.pathways) pickers.appendChild(select("pathway", meta.pathways, (e) => { state.pathway = e.target.selectedIndex; render(); }, "pick-pathway"));
    const legend = $("legend");
    for (const role of meta.roles.slice(1)) legend.appendChild(element("span", role, `token role-${role}`));
  }

  function render() {
    const [row, s] = sample();
    renderFacts(row, s); renderTokens(s); renderReadouts(row, s); renderHeadDetail(row, s); renderInterventions(row, s);
    if (!state.timings.firstPanel) state.timings.firstPanel = performance.now();
    if (state.plotly) {
      renderLens(row, s); renderKnockout(row, s); renderHeads(row, s);
      if (!state.timings.firstPlots) state.timings.firstPlots = performance.now();
    } else if (state.plotlyFailed) {
      $("panel-lens").textContent = "explore/plotly.min.js could not be loaded: the plots are missing";
    }
    state.timings.lastSample = performance.now();
    document.body.dataset.shown = row.id;
    document.body.dataset.plotted = state.plotly ? row.id : "";
  }

  function loadPlotly() {
    // not in the page's head: the table and the first sample's text panels need no plots, and
    // compiling plotly.js takes a second or two
    const tag = document.createElement("script");
    tag.src = "explore/plotly.min.js";
    tag.onload = () => { state.plotly = true; if (state.current !== null && state.chunks[state.index.rows[state.current].chunk]) render(); };
    tag.onerror = () => { state.plotlyFailed = true; if (state.current !== null && state.chunks[state.index.rows[state.current].chunk]) render(); };
    document.head.appendChild(tag);
  }

  function step(delta) {
    const at = state.visible.indexOf(state.current);
    const next = state.visible[Math.min(state.visible.length - 1, Math.max(0, at + delta))];
    if (next !== undefined) show(next);
  }

  function start() {
    const meta = state.index.meta;
    $("model").textContent = `model ${meta.model} · ${state.index.rows.length} samples`;
    const head = element("tr");
    // the text columns that tell samples apart (a task or variant shared by all is left out), then the outcome and sort keys
    state.columns = ["id", "instructed", "task", "style", "variant", "answer"].filter(
      (name) => ["id", "answer"].includes(name) || new Set(state.index.rows.map((r) => r[name])).size > 1);
    // the numbers a run has: a column whose result is missing is left out
    state.numbers = [["final_margin", "final margin"], ["knockout_max", "max |NSSD|"], ["head_change", "head change"]]
      .filter(([name]) => state.index.rows.some((r) => r[name] !== null && r[name] !== undefined));
    for (const name of [...state.columns.map((c) => c === "style" ? "wording" : c), "followed", ...state.numbers.map(([, label]) => label)])
      head.appendChild(element("th", name));
    $("values-heading").hidden = !(meta.lens.length || meta.pathways);
    $("samples").tHead.appendChild(head);
    buildFilters(); buildPickers();
    document.addEventListener("keydown", (e) => {
      if (["SELECT", "INPUT", "TEXTAREA"].includes(e.target.tagName)) return;
      if (e.key === "ArrowDown" || e.key === "j") { step(1); e.preventDefault(); }
      if (e.key === "ArrowUp" || e.key === "k") { step(-1); e.preventDefault(); }
    });
    refreshTable();
    state.timings.table = performance.now();
  }

  return {
    state,
    index(data) {
      state.index = data;
      loadPlotly();  // an async script: the browser compiles it off the main thread while the table renders
      if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start); else start();
    },
    chunk(data) {
      state.chunks[data.chunk] = data.samples;
      if (state.current !== null && state.index.rows[state.current].chunk === data.chunk) render();
    },
    show(id) {
      const i = state.index.rows.findIndex((r) => r.id === id);
      if (i >= 0) show(i);
      return i;
    },
  };
})();
window.ANCHORS = ANCHORS;

// instructrec web page: ask for recommendations, give feedback. Plain JS, no build step.
"use strict";
const $ = (id) => document.getElementById(id);
const history = [];  // [{item_id, title}] built from item search
let lastRequest = null;

function headers() {
  const h = { "Content-Type": "application/json" };
  const key = $("api-key").value.trim();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function call(method, url, body) {
  const res = await fetch(url, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  const data = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${res.status}: ${data.detail || res.statusText}`);
  return data;
}

function showError(msg) { $("error").textContent = msg || ""; }

function renderHistory() {
  const ul = $("history");
  ul.innerHTML = "";
  history.forEach((it, i) => {
    const li = document.createElement("li");
    li.textContent = it.title + " \u2715";
    li.title = "remove";
    li.onclick = () => { history.splice(i, 1); renderHistory(); };
    ul.appendChild(li);
  });
}

let searchTimer = null;
$("item-search").addEventListener("input", () => {
  clearTimeout(searchTimer);
  searchTimer = setTimeout(async () => {
    const q = $("item-search").value.trim();
    const ul = $("search-results");
    ul.innerHTML = "";
    if (!q) return;
    try {
      const data = await call("GET", `/v1/items?limit=8&query=${encodeURIComponent(q)}`);
      data.items.forEach((it) => {
        const li = document.createElement("li");
        li.textContent = "+ " + it.title;
        li.onclick = () => { history.push(it); renderHistory(); };
        ul.appendChild(li);
      });
    } catch (e) { showError(e.message); }
  }, 200);
});

async function loadUsers() {
  try {
    const data = await call("GET", "/v1/users?limit=50");
    const dl = $("user-list");
    data.users.forEach((u) => { const o = document.createElement("option"); o.value = u; dl.appendChild(o); });
    const m = await call("GET", "/v1/model");
    $("model").textContent = "model " + m.version;
  } catch (e) { showError(e.message); }
}

async function sendFeedback(itemId, signal, rating, button) {
  const body = { request_id: lastRequest, item_id: itemId, signal,
                 idempotency_key: `${lastRequest}:${itemId}:${signal}:${rating || ""}` };
  if (signal === "rating") body.rating = rating;
  try {
    await call("POST", "/v1/feedback", body);
    if (button) button.classList.add("done");
    $("status").textContent = `feedback '${signal}' saved for item ${itemId}`;
  } catch (e) { showError(e.message); }
}

function renderResults(data) {
  const ol = $("results");
  ol.innerHTML = "";
  $("template").textContent = data.template_id ? `(template ${data.template_id})` : "";
  data.items.forEach((it) => {
    const li = document.createElement("li");
    li.dataset.itemId = it.item_id;
    const t = document.createElement("span"); t.className = "title"; t.textContent = it.title;
    const s = document.createElement("span"); s.className = "score"; s.textContent = it.score.toFixed(3);
    const fb = document.createElement("div"); fb.className = "fb";
    for (const [sig, label] of [["like", "\u2665 like"], ["dislike", "\u2715 dislike"], ["click", "open"]]) {
      const b = document.createElement("button");
      b.textContent = label; b.className = "fb-" + sig;
      b.onclick = () => sendFeedback(it.item_id, sig, null, b);
      fb.appendChild(b);
    }
    const sel = document.createElement("select");
    sel.className = "fb-rating";
    sel.innerHTML = '<option value="">rate…</option>' + [1, 2, 3, 4, 5].map((r) => `<option>${r}</option>`).join("");
    sel.onchange = () => { if (sel.value) sendFeedback(it.item_id, "rating", Number(sel.value), null); };
    fb.appendChild(sel);
    li.append(t, s, fb);
    ol.appendChild(li);
  });
  $("status").textContent = `request ${data.request_id}`;
}

$("go").addEventListener("click", async () => {
  showError("");
  const body = { n: Number($("n").value) || 10 };
  const user = $("user").value.trim();
  if (user) body.user_id = user;
  if (history.length) body.history = history.map((h) => h.item_id);
  if (!user && !history.length) { showError("choose a user or add items to the history"); return; }
  const instr = $("instruction").value.trim();
  if (instr) body.instruction = instr;
  try {
    const data = await call("POST", "/v1/recommendations", body);
    lastRequest = data.request_id;
    renderResults(data);
  } catch (e) { showError(e.message); }
});

loadUsers();

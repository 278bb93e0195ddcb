// instructrec web page: ask for recommendations, give feedback. Plain JS, no build step.
"use strict";
const $ = (id) => document.getElementById(id);
const KEY_STORE = "instructrec-api-key";
const history = [];  // [{item_id, title}] built from item search, no duplicates
const verdicts = new Map();  // item_id -> "like" | "dislike" for the shown list
let lastRequest = null;

// ------------------------------------------------------------------ sign in (the API key)
function apiKey() { return localStorage.getItem(KEY_STORE) || ""; }

function showSignedIn() {
  const on = Boolean(apiKey());
  $("signed-in").hidden = !on;
  $("signin").hidden = on;
}

function keyFromLink() {
  // `instructrec serve` prints a link ending in #key=...: the fragment never reaches a server
  const m = /(?:^#|&)key=([^&]+)/.exec(location.hash);
  if (m) {
    localStorage.setItem(KEY_STORE, decodeURIComponent(m[1]));
    window.history.replaceState(null, "", location.pathname + location.search);
  }
}

function askForKey(message) {
  const dlg = $("signin-dialog");
  $("api-key").value = "";
  if (message) showError(message);
  if (typeof dlg.showModal === "function") dlg.showModal(); else dlg.setAttribute("open", "");
  $("api-key").focus();
}

$("signin").addEventListener("click", () => askForKey());
$("signout").addEventListener("click", () => { localStorage.removeItem(KEY_STORE); showSignedIn(); });
$("signin-form").addEventListener("submit", (ev) => {
  const ok = ev.submitter ? ev.submitter.value === "ok" : true;
  const key = $("api-key").value.trim();
  if (ok && key) { localStorage.setItem(KEY_STORE, key); showError(""); }
  if (!ev.submitter || ok) {
    $("signin-dialog").close ? $("signin-dialog").close() : $("signin-dialog").removeAttribute("open");
  }
  showSignedIn();
});

// ------------------------------------------------------------------ calls
function headers() {
  const h = { "Content-Type": "application/json" };
  const key = apiKey();
  if (key) h["X-API-Key"] = key;
  return h;
}

async function call(method, url, body) {
  const res = await fetch(url, { method, headers: headers(), body: body ? JSON.stringify(body) : undefined });
  const data = await res.json().catch(() => ({}));
  if (res.status === 401) {
    const msg = apiKey() ? "the API key was refused: sign in again" : "sign in first (the service needs its API key)";
    askForKey(msg);
    throw new Error(msg);
  }
  if (!res.ok) {
    const detail = typeof data.detail === "string" ? data.detail
      : Array.isArray(data.detail) ? data.detail.map((d) => d.msg || d).join("; ") : res.statusText;
    throw new Error(`${res.status}: ${detail}`);
  }
  return data;
}

function showError(msg) { $("error").textContent = msg || ""; }

// ------------------------------------------------------------------ history
function renderHistory() {
  const ul = $("history");
  ul.innerHTML = "";
  history.forEach((it, i) => {
    const li = document.createElement("li");
    li.textContent = it.title + " \u2715";
    li.title = "remove";
    li.dataset.itemId = it.item_id;
    li.onclick = () => { history.splice(i, 1); renderHistory(); };
    ul.appendChild(li);
  });
}

function addToHistory(it) {
  if (history.some((h) => h.item_id === it.item_id)) {
    $("history-note").textContent = `"${it.title}" is already in the history`;
    return;
  }
  $("history-note").textContent = "";
  history.push(it);
  renderHistory();
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
        li.onclick = () => addToHistory(it);
        ul.appendChild(li);
      });
    } catch (e) { showError(e.message); }
  }, 200);
});

// ------------------------------------------------------------------ model and users
async function loadModel() {
  try {
    const m = await call("GET", "/v1/model");
    const parts = [`model ${m.version}`];
    if (m.dataset) parts.push(`trained on ${m.dataset}` + (m.items ? ` (${m.items.toLocaleString()} items)` : ""));
    $("model").textContent = parts.join(" \u00b7 ");
    const data = await call("GET", "/v1/users?limit=50");
    const dl = $("user-list");
    data.users.forEach((u) => { const o = document.createElement("option"); o.value = u; dl.appendChild(o); });
  } catch (e) { showError(e.message); }
}

// ------------------------------------------------------------------ feedback
const SAVED = { like: "liked", dislike: "disliked", click: "opened", skip: "hidden", rating: "rated" };

async function sendFeedback(itemId, signal, rating) {
  const body = { request_id: lastRequest, item_id: itemId, signal,
                 idempotency_key: `${lastRequest}:${itemId}:${signal}:${rating || ""}` };
  if (signal === "rating") body.rating = rating;
  await call("POST", "/v1/feedback", body);
  $("status").textContent = `saved: ${SAVED[signal]}${rating ? " " + rating + "/5" : ""} (item ${itemId})`;
}

function setVerdict(li, itemId, signal) {
  // like and dislike are one toggle: choosing one releases the other
  verdicts.set(itemId, signal);
  for (const sig of ["like", "dislike"]) {
    const b = li.querySelector(".fb-" + sig);
    const on = sig === signal;
    b.setAttribute("aria-pressed", String(on));
    b.classList.toggle("done", on);
  }
}

function feedbackButtons(li, it) {
  const fb = document.createElement("div"); fb.className = "fb";
  const mk = (sig, label, title) => {
    const b = document.createElement("button");
    b.textContent = label; b.className = "fb-" + sig; b.title = title; b.type = "button";
    fb.appendChild(b); return b;
  };
  const like = mk("like", "\u2665 like", "I like this");
  const dislike = mk("dislike", "\u2715 dislike", "Not for me");
  like.setAttribute("aria-pressed", "false"); dislike.setAttribute("aria-pressed", "false");
  for (const [b, sig] of [[like, "like"], [dislike, "dislike"]]) {
    b.onclick = async () => {
      if (verdicts.get(it.item_id) === sig) return;  // already chosen
      try { await sendFeedback(it.item_id, sig, null); setVerdict(li, it.item_id, sig); }
      catch (e) { showError(e.message); }
    };
  }
  const open = mk("click", "open", "Opened / looked at it");
  open.onclick = async () => {
    try { await sendFeedback(it.item_id, "click", null); open.classList.add("done"); }
    catch (e) { showError(e.message); }
  };
  const skip = mk("skip", "hide", "Skip: hide this one");
  skip.onclick = async () => {
    try { await sendFeedback(it.item_id, "skip", null); li.classList.add("skipped"); skip.classList.add("done"); }
    catch (e) { showError(e.message); }
  };
  const sel = document.createElement("select");
  sel.className = "fb-rating"; sel.title = "rate it";
  sel.innerHTML = '<option value="">rate\u2026</option>' + [1, 2, 3, 4, 5].map((r) => `<option value="${r}">${r} \u2605</option>`).join("");
  sel.onchange = async () => {
    if (!sel.value) return;
    try { await sendFeedback(it.item_id, "rating", Number(sel.value)); sel.classList.add("done"); }
    catch (e) { showError(e.message); }
  };
  fb.appendChild(sel);
  return fb;
}

// ------------------------------------------------------------------ results
function describeRequest(body) {
  const n = body.history ? body.history.length : 0;
  const who = body.user_id ? `for user ${body.user_id}` : n ? `from a history of ${n} title${n > 1 ? "s" : ""}` : "for a new visitor";
  return body.instruction ? `${who}, following \u201c${body.instruction}\u201d` : `${who} (no instruction: more of what they like)`;
}

function renderResults(data, body) {
  const ol = $("results");
  ol.innerHTML = "";
  verdicts.clear();
  $("request-info").textContent = describeRequest(body);
  $("request-info").title = data.template_id ? `instruction template: ${data.template_id}` : "";
  const understood = data.understood;
  $("understood").hidden = !body.instruction || understood === undefined || understood === null;
  if (!$("understood").hidden) {
    $("understood").textContent = "Understood as: " + (Array.isArray(understood) ? understood.join(", ") : String(understood) || "nothing understood");
  }
  if (data.note || data.message) $("status").textContent = data.note || data.message;
  data.items.forEach((it) => {
    const li = document.createElement("li");
    li.dataset.itemId = it.item_id;
    const head = document.createElement("div");
    const t = document.createElement("span"); t.className = "title"; t.textContent = it.title;
    head.appendChild(t);
    if (it.year) { const y = document.createElement("span"); y.className = "year"; y.textContent = `(${it.year})`; head.appendChild(y); }
    if (Array.isArray(it.genres) && it.genres.length) {
      const g = document.createElement("span"); g.className = "genres";
      it.genres.forEach((x) => { const s = document.createElement("span"); s.textContent = x; g.appendChild(s); });
      head.appendChild(g);
    }
    if (typeof it.score === "number" && it.score >= 0 && it.score <= 1) {
      const m = document.createElement("span"); m.className = "match"; m.textContent = `${Math.round(it.score * 100)}% match`; head.appendChild(m);
    } else if (typeof it.score === "number") {
      head.title = `score ${it.score.toFixed(3)}`;
    }
    li.appendChild(head);
    if (it.reason) { const r = document.createElement("div"); r.className = "reason"; r.textContent = it.reason; li.appendChild(r); }
    li.appendChild(feedbackButtons(li, it));
    ol.appendChild(li);
  });
  if (!data.items.length) $("status").textContent = "no recommendations for this request";
}

function setLoading(on) {
  $("go").disabled = on;
  $("go").textContent = on ? "Recommending\u2026" : "Recommend";
  $("loading").hidden = !on;
  $("results").setAttribute("aria-busy", String(on));
}

$("go").addEventListener("click", async () => {
  showError("");
  const body = { n: Number($("n").value) || 10 };
  const user = $("user").value.trim();
  if (user) body.user_id = user;
  if (history.length) body.history = history.map((h) => h.item_id);
  const instr = $("instruction").value.trim();
  if (instr) body.instruction = instr;
  if (!user && !history.length && !instr) { showError("choose a user, add items to the history, or write an instruction"); return; }
  setLoading(true);
  try {
    const data = await call("POST", "/v1/recommendations", body);
    lastRequest = data.request_id;
    $("status").textContent = "";
    renderResults(data, body);
  } catch (e) { showError(e.message); }
  finally { setLoading(false); }
});

keyFromLink();
showSignedIn();
loadModel();

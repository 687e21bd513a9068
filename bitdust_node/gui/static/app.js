// The bitdust-node web interface in the browser: forms, uploads in pieces, live panels.
// A plain ES module written for this project (no library, no build step); AGPL-3.0-or-later like the node.
// Every change is sent with the session's CSRF token in a header; the server draws every panel.

const csrf = document.querySelector('meta[name="csrf-token"]')?.content ?? "";
const body = document.body;
const live = document.getElementById("live");

async function send(method, path, payload, raw = false) {
  const headers = { "X-CSRF-Token": csrf };
  if (!raw) headers["Content-Type"] = "application/json";
  let reply;
  try {
    reply = await fetch(path, {
      method, headers, credentials: "same-origin",
      body: raw ? payload : JSON.stringify(payload ?? {}),
    });
  } catch (err) {
    return { ok: false, error: `the node cannot be reached (${err.message})` };
  }
  try {
    return await reply.json();
  } catch {
    return { ok: false, error: `the node answered HTTP ${reply.status}` };
  }
}

function say(element, text, kind = "") {
  if (!element) return;
  element.textContent = text;
  element.className = kind;
}

// -- live panels (Server-Sent Events)

function replacePanel(id, html) {
  const old = document.getElementById(id);
  if (!old) return;
  const focused = document.activeElement?.id;
  const openDetails = [...old.querySelectorAll("details[open] summary")].map((s) => s.textContent);
  const holder = document.createElement("div");
  holder.innerHTML = html;
  const fresh = holder.firstElementChild;
  if (!fresh) return;
  fresh.querySelectorAll("details summary").forEach((s) => {
    if (openDetails.includes(s.textContent)) s.parentElement.open = true;
  });
  old.replaceWith(fresh);
  if (focused && !document.activeElement?.id) document.getElementById(focused)?.focus();
}

function watch() {
  const page = body.dataset.page;
  if (!page || !body.dataset.view) return;
  const query = new URLSearchParams(body.dataset.args || "");
  query.set("page", page);
  query.set("view", body.dataset.view);
  const events = new EventSource(`/gui/events?${query}`);
  events.addEventListener("open", () => say(live, "Live: this page updates by itself.", "muted"));
  events.addEventListener("panel", (e) => {
    const { id, html } = JSON.parse(e.data);
    replacePanel(id, html);
  });
  events.addEventListener("end", () => {
    events.close();
    say(live, "Your session has ended: run `bitdust gui` again.", "error");
  });
  events.addEventListener("error", () => {
    if (events.readyState === EventSource.CLOSED) {
      say(live, "Live updates are off (too many open tabs of this interface, or the node stopped). Reload to retry.", "error");
    } else {
      say(live, "Live updates: reconnecting…", "warn");
    }
  });
}

// -- settings: each applied on its own, a refusal shown beside its field

function settingValue(form) {
  const input = form.querySelector('[name="value"]');
  return input.type === "checkbox" ? input.checked : input.value;
}

async function applySetting(form) {
  const input = form.querySelector('[name="value"]');
  const error = document.getElementById(`${input.id}-error`);
  const reply = await send("POST", "/gui/api/config/set/v1", { key: form.dataset.key, value: settingValue(form) });
  if (reply.ok) {
    input.removeAttribute("aria-invalid");
    error.hidden = false;
    say(error, "Applied.", "good");
    const value = reply.result?.[0]?.value;
    if (value !== undefined && input.type !== "checkbox" && input.tagName !== "SELECT") input.value = String(value);
  } else {
    input.setAttribute("aria-invalid", "true");
    error.hidden = false;
    say(error, reply.error, "error");
    input.focus();
  }
}

// -- files

async function upload(form) {
  const file = document.getElementById("upload-file").files[0];
  const status = document.getElementById("upload-status");
  const bar = document.getElementById("upload-progress");
  if (!file) {
    say(status, "Choose a file first.", "error");
    return;
  }
  const button = form.querySelector("button");
  button.disabled = true;
  try {
    const started = await send("POST", "/gui/upload/start", { name: file.name, size: file.size });
    if (!started.ok) return say(status, started.error, "error");
    bar.hidden = false;
    let offset = 0;
    while (offset < file.size) {
      const piece = file.slice(offset, offset + started.piece);
      const sent = await send("POST", `/gui/upload/${started.id}/piece?offset=${offset}`, piece, true);
      if (!sent.ok) return say(status, sent.error, "error");
      offset = sent.received;
      bar.value = Math.floor((100 * offset) / Math.max(1, file.size));
      say(status, `Sending to the node: ${bar.value}%`);
    }
    const remote = document.getElementById("upload-remote").value.trim();
    const done = await send("POST", `/gui/upload/${started.id}/finish`, { remote_path: remote });
    if (!done.ok) return say(status, done.error, "error");
    say(status, done.state === "done" ? `${done.remote_path} is stored.`
      : `${done.remote_path} is on its way to the suppliers (see Transfers).`, "good");
    form.reset();
  } finally {
    button.disabled = false;
  }
}

async function download(button) {
  const path = button.dataset.path;
  const status = document.getElementById("upload-status");
  button.disabled = true;
  say(status, `Fetching ${path} from the suppliers…`);
  try {
    const ready = await send("POST", "/gui/download/prepare", { remote_path: path });
    if (!ready.ok) return say(status, ready.error, "error");
    const link = document.createElement("a");
    link.href = `/gui/download/${ready.id}`;
    link.download = path.split("/").pop();
    document.body.append(link);
    link.click();
    link.remove();
    say(status, `${path} is downloading.`, "good");
  } finally {
    button.disabled = false;
  }
}

async function remove(button) {
  const path = button.dataset.path;
  if (!window.confirm(`Delete ${path} and its pieces on every supplier?`)) return;
  const reply = await send("DELETE", "/gui/api/file/delete/v1", { remote_path: path });
  say(document.getElementById("upload-status"), reply.ok ? `${path} deleted.` : reply.error, reply.ok ? "good" : "error");
}

async function stopTransfer(button) {
  const { path, kind } = button.dataset;
  button.disabled = true;
  const reply = await send("POST", `/gui/api/file/${kind}/stop/v1`, { remote_path: path });
  say(document.getElementById("upload-status"), reply.ok ? `The ${kind} of ${path} is stopped.` : reply.error,
    reply.ok ? "good" : "error");
}

// -- messages

async function sendMessage(form) {
  const to = document.getElementById("send-to").value.trim();
  const text = document.getElementById("send-text");
  const status = document.getElementById("send-status");
  if (!to || !text.value) return say(status, "Say to whom and what.", "error");
  say(status, "Sending…");
  const reply = await send("POST", "/gui/api/message/send/v1", { id: to, data: { message: text.value } });
  if (!reply.ok) return say(status, reply.error, "error");
  text.value = "";
  say(status, reply.result?.consumed ? "Sent and read." : "Sent.", "good");
  if (new URLSearchParams(body.dataset.args || "").get("with") !== to) {
    window.location.search = `?with=${encodeURIComponent(to)}`;
  }
}

// -- wiring

document.addEventListener("submit", (e) => {
  const form = e.target;
  // the logs level form is a plain GET: the browser sends it itself
  if (form.getAttribute("method") === "get") return;
  e.preventDefault();
  if (form.classList.contains("setting")) applySetting(form);
  else if (form.id === "upload") upload(form);
  else if (form.id === "send") sendMessage(form);
});

document.addEventListener("click", (e) => {
  const button = e.target.closest("button");
  if (!button) return;
  if (button.classList.contains("download")) download(button);
  else if (button.classList.contains("delete")) remove(button);
  else if (button.classList.contains("stop")) stopTransfer(button);
  else if (button.id === "logout") {
    send("POST", "/gui/logout").then(() => window.location.assign("/"));
  }
});

watch();

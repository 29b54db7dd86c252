// lastmile web chat: the page's only script (an ES module, no build step, no dependencies).
//
// Security: every element is built with createElement/createElementNS and every piece of
// data is set with textContent or setAttribute, never parsed as HTML, so a store name or a
// model's text such as "<script>" shows as text.

const SVG_NS = "http://www.w3.org/2000/svg";
const TERMINAL_RUN_EVENT = "run_finished";

const state = {
  user: null,
  threads: [],
  threadId: null,
  thread: null,
  loadToken: 0,
  pages: new Map(), // run_id -> RunPage last rendered
  stepLogs: new Map(), // run_id -> <details> with the streamed steps of that run
  streaming: null, // {threadId, runId, steps: [{text, ok}], finished}
  deciding: new Set(), // run ids with a decision request in flight
  refreshTimer: undefined, // a reload of the thread while one of its runs works elsewhere
  incidents: [], // ongoing incidents, most recently seen first
  incidentsToken: 0, // the latest incidents load; older answers are dropped
  incidentBusy: new Set(), // incident ids with an acknowledge or snooze in flight
};

let uidCounter = 0;
function uid(prefix) {
  uidCounter += 1;
  return `${prefix}-${uidCounter}`;
}

const byId = (id) => document.getElementById(id);

// ---------------------------------------------------------------------------------------
// DOM helpers
// ---------------------------------------------------------------------------------------

function appendChildren(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child === null || child === undefined || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return node;
}

/** An HTML element: attrs "class", "text" (textContent), "hidden" (bool), others as attributes. */
function el(tag, attrs = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "class") node.className = value;
    else if (key === "text") node.textContent = String(value);
    else if (key === "hidden") node.hidden = Boolean(value);
    else node.setAttribute(key, value === true ? "" : String(value));
  }
  return appendChildren(node, children);
}

/** An SVG element (attributes set verbatim; "text" sets textContent). */
function svgEl(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (key === "text") node.textContent = String(value);
    else node.setAttribute(key, String(value));
  }
  for (const child of children.flat(Infinity)) {
    if (child) node.append(child);
  }
  return node;
}

// ---------------------------------------------------------------------------------------
// Formatting
// ---------------------------------------------------------------------------------------

function parseTime(value) {
  if (!value) return null;
  let text = String(value).trim();
  if (/^\d{4}-\d{2}-\d{2} \d/.test(text)) text = text.replace(" ", "T");
  // an ISO date-time without a zone is UTC (the API's times are UTC)
  if (/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?$/.test(text)) text += "Z";
  const date = new Date(text);
  return Number.isNaN(date.getTime()) ? null : date;
}

function localTime(value) {
  const date = parseTime(value);
  return date ? date.toLocaleString() : String(value ?? "");
}

function formatNumber(value, digits = 2) {
  if (typeof value !== "number" || !Number.isFinite(value)) return String(value ?? "");
  return value.toLocaleString(undefined, { maximumFractionDigits: digits });
}

/** "27.3%" or "3.1 pts"; `signed` adds "+" to positive values. */
function formatValue(value, unit, { digits = 1, signed = false } = {}) {
  let text = formatNumber(value, digits);
  if (signed && typeof value === "number" && value > 0) text = `+${text}`;
  if (!unit) return text;
  return unit === "%" ? `${text}%` : `${text} ${unit}`;
}

function shortDate(isoDate) {
  const date = parseTime(`${isoDate}T00:00:00Z`) || parseTime(isoDate);
  if (!date) return String(isoDate);
  return date.toLocaleDateString(undefined, { month: "short", day: "numeric", timeZone: "UTC" });
}

function capitalize(text) {
  const s = String(text ?? "");
  return s ? s[0].toUpperCase() + s.slice(1) : s;
}

function decisionKind(decision) {
  const word = String(decision ?? "").toLowerCase();
  if (word.startsWith("approv")) return "approve";
  if (word.startsWith("reject")) return "reject";
  if (word.startsWith("edit")) return "edit";
  return word;
}

const DECISION_VERBS = {
  approve: "approved",
  reject: "rejected",
  edit: "approved with a new setting",
};

const DELIVERY_WORDS = {
  pending: "queued for dispatch",
  retrying: "dispatch being retried",
  delivered: "dispatched",
};

// ---------------------------------------------------------------------------------------
// API
// ---------------------------------------------------------------------------------------

class ApiError extends Error {
  constructor(message, status) {
    super(message);
    this.name = "ApiError";
    this.status = status;
  }
}

async function errorMessage(response) {
  try {
    const data = await response.json();
    if (data && typeof data.error === "string" && data.error) return data.error;
  } catch {
    // not JSON: fall through to the status line
  }
  return `The server answered ${response.status} ${response.statusText || ""}`.trim() + ".";
}

function requestInit(method, body) {
  const headers = { Accept: "application/json" };
  const init = { method, headers, credentials: "same-origin" };
  if (method !== "GET") {
    headers["X-Lastmile-CSRF"] = "1";
    headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(body ?? {});
  }
  return init;
}

async function send(method, path, body) {
  try {
    return await fetch(path, requestInit(method, body));
  } catch (error) {
    throw new ApiError(`Could not reach the server: ${error.message}`, 0);
  }
}

async function api(method, path, body) {
  const response = await send(method, path, body);
  if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
  return response.json();
}

const threadPath = (id) => `/api/threads/${encodeURIComponent(id)}`;
const runPath = (id) => `/api/runs/${encodeURIComponent(id)}`;

// ---------------------------------------------------------------------------------------
// Error region and announcements
// ---------------------------------------------------------------------------------------

function showError(message, regionId = "error") {
  const region = byId(regionId);
  const text = String(message || "Something went wrong.");
  if (region.textContent === text) {
    // the same message again: clear first so assistive technology announces it again
    region.textContent = "";
    setTimeout(() => {
      region.textContent = text;
    }, 50);
  } else {
    region.textContent = text;
  }
}

function clearError() {
  byId("error").textContent = "";
}

function announce(message) {
  byId("announcement").textContent = message;
}

// ---------------------------------------------------------------------------------------
// User and threads
// ---------------------------------------------------------------------------------------

async function loadMe() {
  try {
    const me = await api("GET", "/api/me");
    state.user = me.user;
    byId("user").textContent = me.auth
      ? `Signed in as ${me.user}`
      : `Working as ${me.user} (sign-in is off)`;
  } catch (error) {
    byId("user").textContent = "Not signed in";
    showError(error.message);
  }
}

async function loadThreads() {
  try {
    const threads = await api("GET", "/api/threads");
    state.threads = Array.isArray(threads) ? threads : [];
    renderThreads();
  } catch (error) {
    showError(error.message);
  }
}

function threadTitle(thread) {
  return (thread && thread.title) || "Untitled conversation";
}

function renderThreads() {
  const list = byId("threads");
  const active = document.activeElement;
  const focusedId =
    active && active.classList.contains("thread") && list.contains(active)
      ? active.dataset.threadId
      : null;
  const items = state.threads.map((thread) => {
    const when = thread.updated_at || thread.created_at;
    const button = el(
      "button",
      { type: "button", class: "thread", "data-thread-id": thread.thread_id },
      el("span", { class: "thread-title", text: threadTitle(thread) }),
      when ? el("span", { class: "visually-hidden", text: ", updated " }) : null,
      when ? el("span", { class: "thread-time", text: localTime(when) }) : null,
    );
    button.addEventListener("click", () => selectThread(thread.thread_id));
    return el("li", {}, button);
  });
  list.replaceChildren(...items);
  byId("threads-empty").hidden = state.threads.length > 0;
  markCurrentThread();
  if (focusedId !== null) {
    const again = [...list.querySelectorAll("button.thread")].find(
      (b) => b.dataset.threadId === focusedId,
    );
    if (again) again.focus();
  }
}

function markCurrentThread() {
  for (const button of byId("threads").querySelectorAll("button.thread")) {
    if (button.dataset.threadId === state.threadId) button.setAttribute("aria-current", "true");
    else button.removeAttribute("aria-current");
  }
}

function selectThread(threadId) {
  clearError();
  const hash = `#thread=${encodeURIComponent(threadId)}`;
  if (location.hash === hash) loadThread(threadId);
  else location.hash = hash; // the hashchange handler loads it
}

function threadIdFromHash() {
  const match = /^#thread=(.+)$/.exec(location.hash);
  if (!match) return null;
  try {
    return decodeURIComponent(match[1]);
  } catch {
    return match[1];
  }
}

function route() {
  const threadId = threadIdFromHash();
  if (threadId) loadThread(threadId);
  else if (location.hash === "" || location.hash === "#") showNewConversation();
}

async function loadThread(threadId) {
  const token = ++state.loadToken;
  try {
    const data = await api("GET", threadPath(threadId));
    if (token !== state.loadToken) return;
    state.threadId = threadId;
    state.thread = data.thread || { thread_id: threadId };
    renderThread(Array.isArray(data.runs) ? data.runs : []);
  } catch (error) {
    if (token !== state.loadToken) return;
    showError(error.message);
    if (error.status === 404) {
      history.replaceState(null, "", location.pathname + location.search);
      showNewConversation();
    }
  }
}

function renderThread(runs) {
  byId("thread-title").textContent = threadTitle(state.thread);
  const sections = runs.map((page) => renderRun(page));
  byId("runs").replaceChildren(...sections);
  byId("thread-hint").hidden = runs.length > 0 || isStreamingHere();
  markCurrentThread();
  updateProgressVisibility();
  refreshWhileBusy(runs);
}

/** A run still working in another tab or by another manager: look again in a few seconds. */
function refreshWhileBusy(runs) {
  clearTimeout(state.refreshTimer);
  const busy = runs.some((p) => p.status === "running" || p.status === "resuming");
  const threadId = state.threadId;
  if (!busy || !threadId || isStreamingHere()) return;
  state.refreshTimer = setTimeout(() => {
    if (state.threadId === threadId && !isStreamingHere()) loadThread(threadId);
  }, 3000);
}

function showNewConversation() {
  state.loadToken += 1;
  state.threadId = null;
  state.thread = null;
  byId("thread-title").textContent = "New conversation";
  byId("runs").replaceChildren();
  byId("thread-hint").hidden = false;
  markCurrentThread();
  updateProgressVisibility();
}

function startNewConversation() {
  clearError();
  if (location.hash) history.pushState(null, "", location.pathname + location.search);
  showNewConversation();
  byId("question").focus();
}

// ---------------------------------------------------------------------------------------
// Asking a question: POST a run and read its Server-Sent Events
// ---------------------------------------------------------------------------------------

function isStreamingHere() {
  return Boolean(state.streaming && state.streaming.threadId === state.threadId);
}

function updateProgressVisibility() {
  const here = isStreamingHere();
  byId("pending").hidden = !here;
  byId("progress-steps").hidden = !here;
  byId("draft-block").hidden = !here || !byId("draft").textContent;
}

function setSending(on) {
  const button = byId("send");
  if (on) button.setAttribute("aria-disabled", "true");
  else button.removeAttribute("aria-disabled");
}

function startProgress(question) {
  byId("pending-question").textContent = question;
  byId("steps").replaceChildren();
  byId("draft").textContent = "";
  announce("");
  byId("thread-hint").hidden = true;
  updateProgressVisibility();
}

function clearProgress() {
  byId("pending-question").textContent = "";
  byId("steps").replaceChildren();
  byId("draft").textContent = "";
  updateProgressVisibility();
}

function addStep(text, ok = true) {
  if (!state.streaming) return;
  state.streaming.steps.push({ text, ok });
  byId("steps").append(el("li", { class: ok ? "step" : "step step-failed", text }));
}

function stepLog(steps) {
  const list = el("ol", { class: "steps-done" });
  for (const step of steps) {
    list.append(el("li", { class: step.ok ? "step-done" : "step-done step-failed", text: step.text }));
  }
  return el(
    "details",
    { class: "steps-log" },
    el("summary", { text: `Steps (${steps.length})` }),
    list,
  );
}

/** Read a text/event-stream body incrementally; call onEvent(type, data) per event. */
async function readEvents(response, onEvent) {
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  const boundary = /\r?\n\r?\n/;
  let buffer = "";
  const dispatch = (block) => {
    let type = "message";
    const data = [];
    for (const line of block.split(/\r?\n/)) {
      if (line === "" || line.startsWith(":")) continue;
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") type = value;
      else if (field === "data") data.push(value);
    }
    if (data.length === 0) return;
    let payload;
    try {
      payload = JSON.parse(data.join("\n"));
    } catch {
      payload = { text: data.join("\n") };
    }
    onEvent(type, payload);
  };
  for (;;) {
    const { value, done } = await reader.read();
    buffer += decoder.decode(value || new Uint8Array(), { stream: !done });
    let match = boundary.exec(buffer);
    while (match) {
      const block = buffer.slice(0, match.index);
      buffer = buffer.slice(match.index + match[0].length);
      dispatch(block);
      match = boundary.exec(buffer);
    }
    if (done) break;
  }
  if (buffer.trim()) dispatch(buffer);
}

function handleEvent(type, data) {
  const streaming = state.streaming;
  if (!streaming) return;
  switch (type) {
    case "run_started":
      streaming.runId = data.run_id;
      break;
    case "step":
      addStep(data.label || data.node || "Step");
      break;
    case "tool_started":
      addStep(data.label || `Running ${data.tool}`);
      break;
    case "tool_finished": {
      const ms = typeof data.ms === "number" ? ` (${formatNumber(data.ms, 0)} ms)` : "";
      const summary = data.summary ? `: ${data.summary}` : "";
      const ok = data.ok !== false;
      addStep(`${ok ? "Finished" : "Failed"} ${data.tool}${summary}${ms}`, ok);
      break;
    }
    case "token":
      byId("draft").textContent += data.text ?? "";
      updateProgressVisibility();
      break;
    case "run_failed":
      addStep(`The run failed: ${data.error}`, false);
      showError(`The run failed: ${data.error}`);
      break;
    case TERMINAL_RUN_EVENT:
      streaming.finished = true;
      finishRun(data.page, data.status);
      break;
    default:
      break; // unknown events are ignored
  }
}

function finishRun(page, status) {
  const streaming = state.streaming;
  if (!page || !page.run_id) {
    clearProgress();
    announce(`Answer finished: ${status || "no page"}`);
    return;
  }
  state.stepLogs.set(page.run_id, stepLog(streaming.steps));
  const here = isStreamingHere();
  clearProgress();
  if (here) {
    const section = renderRun(page);
    const existing = findRunSection(page.run_id);
    if (existing) existing.replaceWith(section);
    else byId("runs").append(section);
    byId("thread-hint").hidden = true;
  }
  announce(`Answer ready: ${statusText(page)}`);
}

async function submitQuestion() {
  if (state.streaming) return;
  const textarea = byId("question");
  const question = textarea.value.trim();
  if (!question) {
    showError("Type a question first.");
    textarea.focus();
    return;
  }
  clearError();
  state.streaming = { threadId: null, runId: null, steps: [], finished: false };
  setSending(true);
  try {
    let threadId = state.threadId;
    if (!threadId) {
      const title = Array.from(question).slice(0, 60).join("");
      const thread = await api("POST", "/api/threads", { title });
      threadId = thread.thread_id;
      state.loadToken += 1; // a thread load still in flight must not replace this one
      state.threadId = threadId;
      state.thread = thread;
      history.pushState(null, "", `#thread=${encodeURIComponent(threadId)}`);
      byId("thread-title").textContent = threadTitle(thread);
      byId("runs").replaceChildren();
      state.threads = [thread, ...state.threads.filter((t) => t.thread_id !== threadId)];
      renderThreads();
    }
    state.streaming.threadId = threadId;
    startProgress(question);
    const response = await send("POST", `${threadPath(threadId)}/runs`, { question });
    if (!response.ok) throw new ApiError(await errorMessage(response), response.status);
    textarea.value = "";
    await readEvents(response, handleEvent);
    if (!state.streaming.finished) {
      showError("The answer stopped before the run finished; reload the conversation to see it.");
      clearProgress();
    }
  } catch (error) {
    showError(error.message);
    clearProgress();
  } finally {
    state.streaming = null;
    setSending(false);
    updateProgressVisibility();
    loadThreads();
    loadIncidents(); // a triage opens, continues and resolves incidents
  }
}

// ---------------------------------------------------------------------------------------
// Rendering a RunPage
// ---------------------------------------------------------------------------------------

function statusText(page) {
  switch (page.status) {
    case "running":
      return "still working";
    case "waiting_approval":
      return page.expires_at
        ? `waiting for your decision until ${localTime(page.expires_at)}`
        : "waiting for your decision";
    case "resuming":
      return "carrying out the decisions";
    case "expired":
      return page.expires_at
        ? `expired: the decision window closed at ${localTime(page.expires_at)}`
        : "expired";
    case "done":
      return "done";
    case "failed":
      return page.error ? `failed: ${page.error}` : "failed";
    case "cancelled":
      return "cancelled";
    default:
      return String(page.status ?? "unknown");
  }
}

function evidenceRefs(ids) {
  if (!Array.isArray(ids) || ids.length === 0) return null;
  return [" ", el("small", { class: "evidence-ref", text: ids.map((id) => `[${id}]`).join(" ") })];
}

function block(title, ...content) {
  return el("div", { class: "run-block" }, el("h3", { text: title }), content);
}

function listBlock(title, items, render) {
  if (!Array.isArray(items) || items.length === 0) return null;
  return block(title, el("ul", { class: "run-list" }, items.map((item) => el("li", {}, render(item)))));
}

function findRunSection(runId) {
  return [...document.querySelectorAll("section.run")].find((s) => s.dataset.runId === runId);
}

function renderRun(page) {
  state.pages.set(page.run_id, page);
  const section = el("section", { class: "run", "data-run-id": page.run_id });
  if (page.question) {
    section.append(
      el(
        "div",
        { class: "message message-manager" },
        el("p", { class: "message-who", text: "You asked" }),
        el("p", { class: "question", text: page.question }),
      ),
    );
  }
  const log = state.stepLogs.get(page.run_id);
  if (log) section.append(log);

  const answer = el("div", { class: "message message-agent" });
  answer.append(
    el(
      "p",
      { class: `run-status status-${String(page.status).replace(/[^a-z_]/gi, "")}` },
      el("span", { class: "run-status-label", text: "Status: " }),
      statusText(page),
    ),
  );
  if (page.summary) answer.append(el("p", { class: "summary", text: page.summary }));

  answer.append(
    ...[
      listBlock("What happened", page.findings, (f) => [f.text, evidenceRefs(f.evidence_ids)]),
      listBlock("Why", page.causes, (c) => [
        el("strong", { text: c.target }),
        ` — ${c.cause} (${c.confidence} confidence): ${c.text}`,
        evidenceRefs(c.evidence_ids),
      ]),
      listBlock("What happens next", page.outlook, (o) => [o.text, evidenceRefs(o.evidence_ids)]),
      chartsBlock(page.charts),
      actionsBlock(page),
      listBlock("Caveats", page.caveats, (c) => String(c)),
      listBlock("Not assessed", page.not_assessed, (n) => `${n.cause}: ${n.reason}`),
      evidenceBlock(page.evidence),
    ].filter(Boolean),
  );
  section.append(answer);
  return section;
}

function evidenceBlock(evidence) {
  if (!Array.isArray(evidence) || evidence.length === 0) return null;
  const list = el(
    "ul",
    { class: "evidence-list" },
    evidence.map((e) =>
      el("li", {}, el("code", { class: "evidence-id", text: `[${e.id}]` }), " ", e.summary),
    ),
  );
  return block(
    "Evidence",
    el(
      "details",
      { class: "evidence" },
      el("summary", {
        text: `Show the evidence (${evidence.length} ${evidence.length === 1 ? "item" : "items"})`,
      }),
      list,
    ),
  );
}

// ---------------------------------------------------------------------------------------
// Actions and decisions
// ---------------------------------------------------------------------------------------

function isPending(action, page) {
  return action.decision == null && action.needs_approval && page.status === "waiting_approval";
}

function actionName(action, number) {
  const label = String(action.label ?? "");
  const target = String(action.target ?? "");
  const at = target && !label.includes(target) ? ` at ${target}` : "";
  return `action ${number}: ${label}${at}`;
}

function editedSetting(action, parameters) {
  if (!parameters || typeof parameters !== "object") return "";
  return Object.entries(parameters)
    .map(([name, value]) =>
      name === action.parameter
        ? formatValue(value, action.unit, { digits: 4 })
        : `${name} ${formatNumber(value, 4)}`,
    )
    .join(", ");
}

function decisionText(action, page) {
  const d = action.decision;
  if (d) {
    const kind = decisionKind(d.decision);
    const by = d.by ? ` by ${d.by}` : "";
    const at = d.at ? ` at ${localTime(d.at)}` : "";
    if (kind === "approve") return `Approved${by}${at}`;
    if (kind === "reject") return `Rejected${by}${at}`;
    if (kind === "edit") {
      const setting = editedSetting(action, d.parameters);
      return `Approved with a new setting${setting ? ` (${setting})` : ""}${by}${at}`;
    }
    return `${capitalize(d.decision)}${by}${at}`;
  }
  if (!action.needs_approval) return "No approval needed";
  if (page.status === "waiting_approval") return "Waiting for your decision";
  if (page.status === "expired") return "Not decided: the decision window expired";
  return "Not decided";
}

function actionsBlock(page) {
  const actions = Array.isArray(page.actions) ? page.actions : [];
  if (actions.length === 0) return null;
  const articles = actions.map((action, position) => renderAction(page, action, position + 1));
  const pending = actions.filter((a) => isPending(a, page));
  let rest = null;
  if (pending.length > 1) {
    const approveRest = el("button", {
      type: "button",
      class: "button approve-rest",
      text: "Approve the rest",
    });
    const rejectRest = el("button", {
      type: "button",
      class: "button reject-rest",
      text: "Reject the rest",
    });
    approveRest.addEventListener("click", () => decide(page.run_id, { rest: "approve" }, null));
    rejectRest.addEventListener("click", () => decide(page.run_id, { rest: "reject" }, null));
    rest = el(
      "div",
      { class: "rest-buttons" },
      el("p", {
        class: "muted",
        text: `${pending.length} actions are waiting for your decision.`,
      }),
      el("div", { class: "button-row" }, approveRest, rejectRest),
    );
  }
  return block("What to do", el("div", { class: "actions" }, articles), rest);
}

function renderAction(page, action, number) {
  const headingId = uid("action-heading");
  const name = actionName(action, number);
  const article = el("article", {
    class: "action",
    "data-index": action.index,
    "aria-labelledby": headingId,
  });
  article.append(
    el("h4", { id: headingId, text: `Action ${number}: ${action.label}` }),
    el(
      "dl",
      { class: "action-facts" },
      fact("Target", action.target),
      fact("Setting", action.setting),
      fact("Avoids", action.avoided),
      fact("Cost", action.cost),
      fact("Why", action.rationale),
    ),
  );

  const status = el("p", {
    class: "decision-status",
    tabindex: "-1",
    text: decisionText(action, page),
  });
  article.append(status);
  if (action.dispatched) {
    const sent = action.dispatched;
    const words = sent.text || DELIVERY_WORDS[sent.delivery_status] || sent.delivery_status;
    article.append(el("p", { class: "dispatched", text: `Dispatch: ${words}` }));
  }

  if (isPending(action, page)) {
    const formId = uid("edit-form");
    const approve = el("button", {
      type: "button",
      class: "button approve",
      "aria-label": `Approve ${name}`,
      text: "Approve",
    });
    const reject = el("button", {
      type: "button",
      class: "button reject",
      "aria-label": `Reject ${name}`,
      text: "Reject",
    });
    const edit = el("button", {
      type: "button",
      class: "button edit",
      "aria-label": `Edit ${name}`,
      "aria-expanded": "false",
      "aria-controls": formId,
      text: "Edit",
    });
    const form = editForm(page, action, number, formId, edit);
    approve.addEventListener("click", () =>
      decide(page.run_id, { index: action.index, decision: "approve" }, action.index),
    );
    reject.addEventListener("click", () =>
      decide(page.run_id, { index: action.index, decision: "reject" }, action.index),
    );
    edit.addEventListener("click", () => {
      if (form.hidden) openEdit(form, edit);
      else closeEdit(form, edit, action);
    });
    article.append(el("div", { class: "button-row decision-buttons" }, approve, reject, edit), form);
  }
  return article;
}

function fact(term, value) {
  if (value === null || value === undefined || value === "") return null;
  return el("div", { class: "fact" }, el("dt", { text: term }), el("dd", { text: value }));
}

function editForm(page, action, number, formId, editButton) {
  const inputId = uid("edit-value");
  const parameter = action.parameter || "value";
  const unit = action.unit ? `${action.unit}, ` : "";
  const label = `New ${parameter} for action ${number} (${unit}${formatNumber(action.min, 4)} to ${formatNumber(action.max, 4)})`;
  const input = el("input", {
    type: "number",
    id: inputId,
    class: "edit-value",
    name: parameter,
    min: action.min,
    max: action.max,
    step: action.step,
    value: action.value,
    required: true,
    inputmode: "decimal",
  });
  const sendEdit = el("button", { type: "submit", class: "button button-primary send-edit", text: "Send edit" });
  const cancel = el("button", { type: "button", class: "button cancel-edit", text: "Cancel" });
  const form = el(
    "form",
    { id: formId, class: "edit-form", novalidate: true, hidden: true },
    el("label", { for: inputId, text: label }),
    el("div", { class: "button-row" }, input, sendEdit, cancel),
  );
  cancel.addEventListener("click", () => closeEdit(form, editButton, action));
  form.addEventListener("keydown", (event) => {
    if (event.key === "Escape") {
      event.preventDefault();
      closeEdit(form, editButton, action);
    }
  });
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const raw = input.value.trim();
    const value = Number(raw);
    if (raw === "" || !Number.isFinite(value)) {
      showError(`Enter a number for action ${number}'s ${parameter}.`);
      input.focus();
      return;
    }
    decide(
      page.run_id,
      { index: action.index, decision: "edit", parameters: { [parameter]: value } },
      action.index,
    );
  });
  return form;
}

function openEdit(form, editButton) {
  form.hidden = false;
  editButton.setAttribute("aria-expanded", "true");
  const input = form.querySelector(".edit-value");
  input.focus();
  input.select();
}

function closeEdit(form, editButton, action) {
  form.hidden = true;
  form.querySelector(".edit-value").value = String(action.value);
  editButton.setAttribute("aria-expanded", "false");
  editButton.focus();
}

function replaceRun(page) {
  const section = renderRun(page);
  const existing = findRunSection(page.run_id);
  if (existing) existing.replaceWith(section);
  return section;
}

function focusDecisionStatus(section, index) {
  if (!section || index === null || index === undefined) return false;
  const article = [...section.querySelectorAll("article.action")].find(
    (a) => a.dataset.index === String(index),
  );
  const status = article && article.querySelector(".decision-status");
  if (status) {
    status.focus();
    return true;
  }
  return false;
}

async function decide(runId, body, index) {
  if (state.deciding.has(runId)) return;
  state.deciding.add(runId);
  clearError();
  const section = findRunSection(runId);
  if (section) section.setAttribute("aria-busy", "true");
  const before = state.pages.get(runId);
  try {
    let page;
    try {
      page = await api("POST", `${runPath(runId)}/decisions`, body);
    } catch (error) {
      showError(error.message);
      if (error.status === 409 || error.status === 410) {
        // decided by someone else, or expired: show the run as it is now
        try {
          const current = await api("GET", runPath(runId));
          focusDecisionStatus(replaceRun(current), index);
        } catch {
          // keep the first error on screen
        }
      }
      return;
    }
    const updated = replaceRun(page);
    const positions = new Map((page.actions || []).map((a, i) => [a.index, i + 1]));
    const newly = (page.actions || []).filter((a) => {
      if (!a.decision) return false;
      const old = before && (before.actions || []).find((b) => b.index === a.index);
      return !old || !old.decision;
    });
    const focusIndex = index ?? (newly[0] ? newly[0].index : null);
    focusDecisionStatus(updated, focusIndex);
    if (newly.length > 0) {
      const first = newly[0].decision;
      const verb = DECISION_VERBS[decisionKind(first.decision)] || String(first.decision);
      const by = first.by ? ` by ${first.by}` : "";
      const numbers = newly.map((a) => positions.get(a.index));
      const who =
        numbers.length === 1
          ? `Action ${numbers[0]}`
          : `Actions ${numbers.slice(0, -1).join(", ")} and ${numbers[numbers.length - 1]}`;
      announce(`${who} ${verb}${by}`);
    } else {
      announce(`Run updated: ${statusText(page)}`);
    }
  } finally {
    state.deciding.delete(runId);
    const current = findRunSection(runId);
    if (current) current.removeAttribute("aria-busy");
  }
}

// ---------------------------------------------------------------------------------------
// Charts (inline SVG, built with createElementNS)
// ---------------------------------------------------------------------------------------

const COLORS = {
  series: "#1f5fa8",
  forecast: "#9c4200",
  band: "#f6d2b8",
  normal: "#4d4d4d",
  anomaly: "#b3261e",
  axis: "#4d4d4d",
  grid: "#d9d9d9",
  text: "#1b1b1b",
  negative: "#9c4200",
};

/** The chart's coordinate box: a narrower viewBox on small screens keeps the text legible. */
function chartBox() {
  const narrow = window.matchMedia("(max-width: 40rem)").matches;
  return narrow
    ? { narrow, font: 14, width: 360, height: 300, top: 40, right: 12, bottom: 62, left: 56 }
    : { narrow, font: 13, width: 640, height: 320, top: 40, right: 24, bottom: 60, left: 64 };
}

function niceStep(span, count) {
  const raw = span / Math.max(1, count);
  const power = 10 ** Math.floor(Math.log10(raw));
  for (const m of [1, 2, 2.5, 5, 10]) {
    if (raw <= m * power) return m * power;
  }
  return 10 * power;
}

function niceTicks(min, max, count = 5) {
  if (!(max > min)) {
    const pad = Math.abs(min) > 0 ? Math.abs(min) * 0.1 : 1;
    min -= pad;
    max += pad;
  }
  const step = niceStep(max - min, count);
  const start = Math.floor(min / step) * step;
  const end = Math.ceil(max / step) * step;
  const ticks = [];
  for (let v = start; v <= end + step / 2; v += step) ticks.push(Number(v.toFixed(10)));
  return ticks;
}

function linear(d0, d1, r0, r1) {
  const span = d1 - d0 || 1;
  return (v) => r0 + ((v - d0) / span) * (r1 - r0);
}

function dayNumber(isoDate) {
  const date = parseTime(`${String(isoDate).slice(0, 10)}T00:00:00Z`);
  return date ? date.getTime() / 86400000 : 0;
}

function finite(values) {
  return values.filter((v) => typeof v === "number" && Number.isFinite(v));
}

/** The measure a chart title names: "S012: late rate, anomaly on 2026-02-22" -> "Late rate". */
function metricName(chartSet, title) {
  let name = String(title ?? "");
  if (chartSet.target) name = name.split(chartSet.target).join("");
  name = name
    .replace(/\b(on|from|after|for|since)\s+\d{4}-\d{2}-\d{2}.*$/i, "")
    .replace(/forecast/i, "")
    .replace(/\s+/g, " ")
    .trim()
    .replace(/^[-—:,\s]+|[-—:,\s]+$/g, "")
    .split(",")[0]
    .trim();
  return name ? capitalize(name) : "Value";
}

/** "S012 late rate" (what the chart shows, for its summary), or the title without a target. */
function subject(chartSet, metric, title) {
  return chartSet.target ? `${chartSet.target} ${metric.toLowerCase()}` : String(title ?? metric);
}

function svgRoot(label) {
  return svgEl("svg", {
    width: "100%",
    role: "img",
    "aria-label": label,
    class: "chart-svg",
    focusable: "false",
  });
}

/** Append nodes (nested arrays flattened, empty values skipped) to an SVG parent. */
function add(parent, ...children) {
  for (const child of children.flat(Infinity)) {
    if (child) parent.append(child);
  }
  return parent;
}

function setViewBox(svg, box) {
  svg.setAttribute("viewBox", `0 0 ${box.width} ${box.height}`);
}

function svgText(x, y, content, attrs = {}) {
  return svgEl("text", { x, y, fill: COLORS.text, "font-size": 13, ...attrs, text: content });
}

/** Text at the chart's font size (the <svg> sets it; svgText's default is overridden). */
function boxText(box, x, y, content, attrs = {}) {
  return svgText(x, y, content, { "font-size": box.font, ...attrs });
}

function polyline(points, attrs) {
  return svgEl("polyline", {
    points: points.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(" "),
    fill: "none",
    "stroke-linejoin": "round",
    "stroke-linecap": "round",
    ...attrs,
  });
}

function triangle(x, y, size, attrs) {
  const h = size * 1.15;
  return svgEl("path", {
    d: `M${x},${y - h} L${x + size},${y + h * 0.6} L${x - size},${y + h * 0.6} Z`,
    ...attrs,
  });
}

/**
 * A legend at the top of the chart: entries [{label, draw(x, y) -> svg node}], wrapped to
 * the chart's width. Moves box.top below it.
 */
function legend(svg, box, entries) {
  const g = svgEl("g", { class: "legend" });
  let cx = box.left;
  let cy = 16;
  for (const entry of entries) {
    const width = 30 + entry.label.length * box.font * 0.57 + 20;
    if (cx > box.left && cx + width - 20 > box.width - box.right) {
      cx = box.left;
      cy += 22;
    }
    g.append(entry.draw(cx, cy), boxText(box, cx + 30, cy + 4, entry.label));
    cx += width;
  }
  add(svg, g);
  const shift = cy + 24 - box.top;
  box.top += shift;
  box.height += shift;
}

const lineSample = (attrs) => (x, y) => svgEl("line", { x1: x, x2: x + 24, y1: y, y2: y, ...attrs });

/** Axes, y grid with ticks, x date ticks and axis titles for a time chart; returns scales. */
function timeAxes(svg, box, dates, values, yTitle) {
  const { width, height, top, right, bottom, left } = box;
  const days = dates.map(dayNumber);
  let x0 = Math.min(...days);
  let x1 = Math.max(...days);
  if (x0 === x1) {
    x0 -= 1;
    x1 += 1;
  }
  const ticks = niceTicks(Math.min(0, ...values), Math.max(...values), 5);
  const y0 = ticks[0];
  const y1 = ticks[ticks.length - 1];
  const x = linear(x0, x1, left, width - right);
  const y = linear(y0, y1, height - bottom, top);
  const grid = svgEl("g", { class: "axes" });
  for (const t of ticks) {
    grid.append(
      svgEl("line", { x1: left, x2: width - right, y1: y(t), y2: y(t), stroke: COLORS.grid, "stroke-width": 1 }),
      boxText(box, left - 8, y(t) + 4, formatNumber(t, 2), { "text-anchor": "end" }),
    );
  }
  const unique = [...new Set(dates)].sort();
  const maxTicks = box.narrow ? 4 : 6;
  const every = Math.max(1, Math.ceil(unique.length / maxTicks));
  const xTicks = unique.filter((_, i) => i % every === 0);
  const last = unique[unique.length - 1];
  if (xTicks[xTicks.length - 1] !== last) {
    // the last date always gets a tick; drop the one before it when they would collide
    if (xTicks.length > 1 && unique.indexOf(last) - unique.indexOf(xTicks[xTicks.length - 1]) < every / 2 + 1) xTicks.pop();
    xTicks.push(last);
  }
  for (const d of xTicks) {
    const px = x(dayNumber(d));
    grid.append(
      svgEl("line", { x1: px, x2: px, y1: height - bottom, y2: height - bottom + 5, stroke: COLORS.axis }),
      boxText(box, px, height - bottom + 20, shortDate(d), {
        "text-anchor": px > width - right - 30 ? "end" : "middle",
      }),
    );
  }
  grid.append(
    svgEl("line", { x1: left, x2: width - right, y1: height - bottom, y2: height - bottom, stroke: COLORS.axis, "stroke-width": 1.5 }),
    svgEl("line", { x1: left, x2: left, y1: top, y2: height - bottom, stroke: COLORS.axis, "stroke-width": 1.5 }),
    boxText(box, (left + width - right) / 2, height - 12, "Date", { "text-anchor": "middle" }),
    boxText(box, 16, (top + height - bottom) / 2, yTitle, {
      "text-anchor": "middle",
      transform: `rotate(-90 16 ${(top + height - bottom) / 2})`,
    }),
  );
  add(svg, grid);
  return { x: (d) => x(dayNumber(d)), y };
}

function normalLine(box, yValue) {
  return svgEl("line", {
    x1: box.left,
    x2: box.width - box.right,
    y1: yValue,
    y2: yValue,
    stroke: COLORS.normal,
    "stroke-width": 2,
    "stroke-dasharray": "4 4",
  });
}

function dataTable(caption, headers, rows) {
  const head = el("tr", {}, headers.map((h) => el("th", { scope: "col", text: h })));
  const body = rows.map((row) =>
    el(
      "tr",
      {},
      row.map((cell, i) => (i === 0 ? el("th", { scope: "row", text: cell }) : el("td", { text: cell }))),
    ),
  );
  return el(
    "table",
    { class: "chart-table" },
    el("caption", { text: caption }),
    el("thead", {}, head),
    el("tbody", {}, body),
  );
}

function figure(title, svg, table) {
  return el(
    "figure",
    { class: "chart" },
    el("figcaption", { text: title }),
    svg,
    el("details", { class: "chart-data" }, el("summary", { text: `Chart data: ${title}` }), table),
  );
}

function kpiChart(chartSet) {
  const kpi = chartSet.kpi;
  if (!kpi || !Array.isArray(kpi.points) || kpi.points.length === 0) return null;
  const unit = kpi.unit || "";
  const metric = metricName(chartSet, kpi.title);
  const anomaly = kpi.anomaly;
  // a day diagnosed because it was asked about, though within its normal range
  const mark = kpi.within_normal ? "diagnosed day (within normal)" : "anomaly";
  const what = subject(chartSet, metric, kpi.title);
  const label = anomaly
    ? `${what}: ${formatValue(anomaly.value, unit)} on ${anomaly.date} against ${formatValue(kpi.normal, unit)} normal`
    : `${what}: ${kpi.points.length} days against ${formatValue(kpi.normal, unit)} normal`;
  const box = chartBox();
  const svg = svgRoot(label);
  legend(svg, box, [
    { label: metric.toLowerCase(), draw: lineSample({ stroke: COLORS.series, "stroke-width": 2.5 }) },
    {
      label: `normal ${formatValue(kpi.normal, unit)}`,
      draw: lineSample({ stroke: COLORS.normal, "stroke-width": 2, "stroke-dasharray": "4 4" }),
    },
    { label: mark, draw: (lx, ly) => triangle(lx + 12, ly + 1, 7, { fill: COLORS.anomaly }) },
  ]);
  setViewBox(svg, box);
  const values = finite(kpi.points.map((p) => p.value).concat([kpi.normal, anomaly ? anomaly.value : null]));
  const dates = kpi.points.map((p) => p.date).concat(anomaly ? [anomaly.date] : []);
  const { x, y } = timeAxes(svg, box, dates, values, `${metric} (${unit})`);
  add(svg, 
    normalLine(box, y(kpi.normal)),
    polyline(kpi.points.map((p) => [x(p.date), y(p.value)]), { stroke: COLORS.series, "stroke-width": 2.5 }),
    kpi.points.map((p) => svgEl("circle", { cx: x(p.date), cy: y(p.value), r: 3.5, fill: COLORS.series })),
  );
  if (anomaly) {
    const ax = x(anomaly.date);
    const ay = y(anomaly.value);
    const leftSide = ax > (box.left + box.width) / 2;
    add(svg, 
      triangle(ax, ay, 8, { fill: COLORS.anomaly, stroke: "#ffffff", "stroke-width": 1.5 }),
      boxText(box, leftSide ? ax - 12 : ax + 12, Math.max(box.top + 10, ay - 6), `${kpi.within_normal ? "diagnosed" : "anomaly"} ${formatValue(anomaly.value, unit)}`, {
        "text-anchor": leftSide ? "end" : "start",
        "font-weight": "bold",
      }),
    );
  }
  const u = unit ? ` (${unit})` : "";
  const rows = kpi.points.map((p) => [
    p.date,
    formatNumber(p.value),
    formatNumber(kpi.normal),
    anomaly && p.date === anomaly.date ? (kpi.within_normal ? "diagnosed, within normal" : "yes") : "no",
  ]);
  if (anomaly && !kpi.points.some((p) => p.date === anomaly.date)) {
    rows.push([anomaly.date, formatNumber(anomaly.value), formatNumber(kpi.normal), kpi.within_normal ? "diagnosed, within normal" : "yes"]);
  }
  const table = dataTable(kpi.title, ["Date", `${metric}${u}`, `Normal${u}`, "Anomaly"], rows);
  return figure(kpi.title, svg, table);
}

function forecastChart(chartSet) {
  const fc = chartSet.forecast;
  if (!fc) return null;
  const history = Array.isArray(fc.history) ? fc.history : [];
  const points = Array.isArray(fc.points) ? fc.points : [];
  if (history.length + points.length === 0) return null;
  const unit = fc.unit || "";
  const metric = metricName(chartSet, (chartSet.kpi && chartSet.kpi.title) || fc.title);
  let label = `${subject(chartSet, metric, fc.title)} forecast: `;
  if (points.length) {
    const first = points[0];
    const last = points[points.length - 1];
    const lower = Math.min(...points.map((p) => p.lower));
    const upper = Math.max(...points.map((p) => p.upper));
    label += `forecast ${formatValue(first.yhat, unit)} on ${first.date}`;
    if (points.length > 1) label += ` to ${formatValue(last.yhat, unit)} on ${last.date}`;
    label += ` (80% interval ${formatValue(lower, unit)} to ${formatValue(upper, unit)})`;
  } else {
    label += "no forecast points";
  }
  label += ` against ${formatValue(fc.normal, unit)} normal`;
  if (history.length) {
    const h = history[history.length - 1];
    label += `; last actual ${formatValue(h.value, unit)} on ${h.date}`;
  }
  const box = chartBox();
  const svg = svgRoot(label);
  legend(svg, box, [
    { label: "actual", draw: lineSample({ stroke: COLORS.series, "stroke-width": 2.5 }) },
    {
      label: "forecast",
      draw: lineSample({ stroke: COLORS.forecast, "stroke-width": 2.5, "stroke-dasharray": "10 5" }),
    },
    {
      label: "80% interval",
      draw: (lx, ly) =>
        svgEl("rect", { x: lx, y: ly - 6, width: 24, height: 12, fill: COLORS.band, stroke: COLORS.forecast, "stroke-width": 0.75 }),
    },
    { label: "normal", draw: lineSample({ stroke: COLORS.normal, "stroke-width": 2, "stroke-dasharray": "4 4" }) },
  ]);
  setViewBox(svg, box);
  const values = finite(
    history.map((p) => p.value).concat(points.flatMap((p) => [p.yhat, p.lower, p.upper]), [fc.normal]),
  );
  const dates = history.map((p) => p.date).concat(points.map((p) => p.date));
  const { x, y } = timeAxes(svg, box, dates, values, `${metric} (${unit})`);
  if (points.length) {
    const band = points
      .map((p) => [x(p.date), y(p.upper)])
      .concat(points.slice().reverse().map((p) => [x(p.date), y(p.lower)]));
    add(svg, 
      svgEl("polygon", {
        points: band.map(([px, py]) => `${px.toFixed(1)},${py.toFixed(1)}`).join(" "),
        fill: COLORS.band,
        stroke: COLORS.forecast,
        "stroke-width": 0.75,
      }),
    );
  }
  add(svg, normalLine(box, y(fc.normal)));
  if (history.length) {
    add(svg, 
      polyline(history.map((p) => [x(p.date), y(p.value)]), { stroke: COLORS.series, "stroke-width": 2.5 }),
      history.map((p) => svgEl("circle", { cx: x(p.date), cy: y(p.value), r: 3.5, fill: COLORS.series })),
    );
  }
  if (points.length) {
    add(svg, 
      polyline(points.map((p) => [x(p.date), y(p.yhat)]), {
        stroke: COLORS.forecast,
        "stroke-width": 2.5,
        "stroke-dasharray": "10 5",
      }),
      points.map((p) =>
        svgEl("rect", { x: x(p.date) - 3.5, y: y(p.yhat) - 3.5, width: 7, height: 7, fill: COLORS.forecast }),
      ),
    );
  }
  const u = unit ? ` (${unit})` : "";
  const rows = history
    .map((p) => [p.date, "actual", formatNumber(p.value), "", "", formatNumber(fc.normal)])
    .concat(
      points.map((p) => [
        p.date,
        "forecast",
        formatNumber(p.yhat),
        formatNumber(p.lower),
        formatNumber(p.upper),
        formatNumber(fc.normal),
      ]),
    );
  const table = dataTable(
    fc.title,
    ["Date", "Kind", `${metric}${u}`, `Lower${u}`, `Upper${u}`, `Normal${u}`],
    rows,
  );
  return figure(fc.title, svg, table);
}

function truncate(label, max) {
  const chars = Array.from(String(label));
  return chars.length > max ? `${chars.slice(0, max - 1).join("")}…` : chars.join("");
}

function causesChart(chartSet) {
  const causes = chartSet.causes;
  if (!causes || !Array.isArray(causes.parts) || causes.parts.length === 0) return null;
  const unit = causes.unit || "";
  const parts = causes.parts.filter((p) => typeof p.value === "number" && Number.isFinite(p.value));
  if (parts.length === 0) return null;
  const box = chartBox();
  // wide: labels left of the bars; narrow: each label above its bar, the bars full width
  const stacked = box.narrow;
  const labelWidth = stacked ? 0 : 200;
  const labelChars = stacked ? 44 : 28;
  const valueRoom = stacked ? 64 : 72;
  const rowHeight = stacked ? 48 : 30;
  const barHeight = 18;
  const top = 16;
  const bottom = 56;
  const height = top + rowHeight * parts.length + bottom;
  const values = parts.map((p) => p.value);
  // room for the value labels beside the bars: left of zero for negatives, right for positives
  const left = (stacked ? 12 : labelWidth + 8) + (Math.min(...values) < 0 ? valueRoom : 0);
  const right = box.width - valueRoom;
  const ticks = niceTicks(Math.min(0, ...values), Math.max(0, ...values), stacked ? 3 : 4);
  const x = linear(ticks[0], ticks[ticks.length - 1], left, right);
  const label = `${causes.title}: ${parts.map((p) => `${p.label} ${formatValue(p.value, unit, { signed: true })}`).join(", ")}`;
  const svg = svgRoot(label);
  setViewBox(svg, { width: box.width, height });
  const axisY = top + rowHeight * parts.length;
  for (const t of ticks) {
    add(svg, 
      svgEl("line", { x1: x(t), x2: x(t), y1: top, y2: axisY, stroke: COLORS.grid }),
      boxText(box, x(t), axisY + 18, formatNumber(t, 2), { "text-anchor": "middle" }),
    );
  }
  const labels = [];
  parts.forEach((part, i) => {
    const rowTop = top + rowHeight * i;
    const cy = stacked ? rowTop + rowHeight - barHeight / 2 - 4 : rowTop + rowHeight / 2;
    const x0 = x(0);
    const x1 = x(part.value);
    const negative = part.value < 0;
    if (stacked) {
      // drawn last, with a white halo, so the grid lines do not cross the text
      labels.push(
        boxText(box, 12, rowTop + 16, truncate(part.label, labelChars), {
          stroke: "#ffffff",
          "stroke-width": 4,
          "paint-order": "stroke",
        }),
      );
    } else {
      labels.push(boxText(box, labelWidth, cy + 4, truncate(part.label, labelChars), { "text-anchor": "end" }));
    }
    add(svg, 
      svgEl("rect", {
        x: Math.min(x0, x1),
        y: cy - barHeight / 2,
        width: Math.max(1, Math.abs(x1 - x0)),
        height: barHeight,
        fill: negative ? COLORS.negative : COLORS.series,
      }),
      boxText(box, negative ? Math.min(x0, x1) - 6 : Math.max(x0, x1) + 6, cy + 5, formatValue(part.value, unit, { signed: true }), {
        "text-anchor": negative ? "end" : "start",
      }),
    );
  });
  add(svg, 
    svgEl("line", { x1: x(0), x2: x(0), y1: top - 4, y2: axisY, stroke: COLORS.text, "stroke-width": 1.5 }),
    svgEl("line", { x1: left, x2: right, y1: axisY, y2: axisY, stroke: COLORS.axis, "stroke-width": 1.5 }),
    boxText(box, (left + right) / 2, height - 12, `Contribution (${unit})`, { "text-anchor": "middle" }),
    labels,
  );
  const table = dataTable(
    causes.title,
    ["Cause", `Contribution${unit ? ` (${unit})` : ""}`],
    parts.map((p) => [p.label, formatValue(p.value, "", { digits: 2, signed: true })]),
  );
  return figure(causes.title, svg, table);
}

function chartsBlock(charts) {
  if (!Array.isArray(charts) || charts.length === 0) return null;
  const sets = charts.map((chartSet) => {
    const figures = [kpiChart(chartSet), forecastChart(chartSet), causesChart(chartSet)].filter(Boolean);
    return el(
      "div",
      { class: "chart-set" },
      el("h4", { text: `Charts for ${chartSet.target}` }),
      el("div", { class: "chart-grid" }, figures),
    );
  });
  return block("Charts", sets);
}

// ---------------------------------------------------------------------------------------
// Incidents: anomalies ongoing across triaged days; acknowledge or snooze them
// ---------------------------------------------------------------------------------------

const SNOOZE_DAYS = 1;
const incidentPath = (id) => `/api/incidents/${encodeURIComponent(id)}`;

/** Its status as of its last triaged day: a snooze that has run out is over. */
function incidentState(incident) {
  const status = incident.status;
  if (status === "snoozed" && incident.snoozed_until && incident.last_seen > incident.snoozed_until) {
    return incident.acknowledged_by ? "acknowledged" : "open";
  }
  return status;
}

function incidentTarget(incident) {
  return String(incident.target ?? "");
}

function incidentTitle(incident) {
  const level = capitalize(incident.level || "target");
  return `${level} ${incidentTarget(incident)}`;
}

function kpiName(name) {
  return String(name ?? "").replace(/_/g, " ");
}

function incidentStatusText(incident) {
  const status = incidentState(incident);
  const by = incident.acknowledged_by ? ` by ${incident.acknowledged_by}` : "";
  switch (status) {
    case "open":
      return "Open: not acknowledged yet";
    case "acknowledged": {
      const at = incident.acknowledged_at ? ` at ${localTime(incident.acknowledged_at)}` : "";
      return `Acknowledged${by}${at}`;
    }
    case "snoozed":
      return `Snoozed until ${incident.snoozed_until}${by ? `; acknowledged${by}` : ""}`;
    case "resolved":
      return `Resolved on ${incident.resolved_on}`;
    default:
      return capitalize(status);
  }
}

function incidentFacts(incident) {
  const since =
    incident.opened_on === incident.last_seen
      ? `new on ${incident.opened_on}`
      : `ongoing since ${incident.opened_on} (last seen ${incident.last_seen})`;
  const days = Number(incident.days_seen) || 0;
  const drivers = Array.isArray(incident.drivers) ? incident.drivers : [];
  const shown = drivers.slice(0, 3).map(kpiName).join(", ");
  const more = drivers.length > 3 ? ` and ${drivers.length - 3} more` : "";
  const late =
    typeof incident.late_excess === "number" && Number.isFinite(incident.late_excess)
      ? `about ${formatNumber(incident.late_excess, 0)}`
      : null;
  return el(
    "dl",
    { class: "incident-facts" },
    incidentFact("Since", since),
    incidentFact("Seen on", `${days} triaged ${days === 1 ? "day" : "days"}`),
    incidentFact("Severity", incident.severity),
    incidentFact("Leading KPIs", shown ? `${shown}${more}` : null),
    incidentFact("Late deliveries above normal", late),
    incident.level === "store" ? incidentFact("Region", incident.region) : null,
  );
}

function incidentFact(term, value) {
  if (value === null || value === undefined || value === "") return null;
  return el("div", { class: "fact" }, el("dt", { text: `${term}:` }), " ", el("dd", { text: value }));
}

function renderIncident(incident) {
  const target = incidentTarget(incident);
  const status = incidentState(incident);
  const busy = state.incidentBusy.has(incident.incident_id);
  const item = el("li", {
    class: `incident incident-${String(status).replace(/[^a-z]/gi, "")}`,
    "data-incident-id": incident.incident_id,
    "aria-busy": busy ? "true" : null,
  });
  const severity = String(incident.severity ?? "").replace(/[^a-z]/gi, "");
  item.append(
    el("h3", { class: "incident-title", text: incidentTitle(incident) }),
    incidentFacts(incident),
    el("p", {
      class: `incident-status status-${status} severity-${severity}`,
      tabindex: "-1",
      text: incidentStatusText(incident),
    }),
  );
  const buttons = [];
  if (status === "open") {
    buttons.push(
      incidentButton(incident, "acknowledge", "Acknowledge", `Acknowledge incident at ${target}`, busy),
    );
  }
  if (status === "open" || status === "acknowledged") {
    buttons.push(
      incidentButton(incident, "snooze", "Snooze 1 day", `Snooze 1 day: incident at ${target}`, busy),
    );
  }
  if (buttons.length) item.append(el("div", { class: "button-row incident-buttons" }, buttons));
  return item;
}

function incidentButton(incident, action, label, name, busy) {
  const button = el("button", {
    type: "button",
    class: `button ${action}-incident`,
    "data-action": action,
    "aria-label": name,
    "aria-disabled": busy ? "true" : null,
    text: label,
  });
  button.addEventListener("click", () => changeIncident(incident, action));
  return button;
}

function findIncidentItem(incidentId) {
  return [...byId("incidents").querySelectorAll("li.incident")].find(
    (li) => li.dataset.incidentId === incidentId,
  );
}

function renderIncidents() {
  const list = byId("incidents");
  const active = document.activeElement;
  let focused = null;
  if (active && list.contains(active)) {
    const item = active.closest("li.incident");
    focused = item && {
      id: item.dataset.incidentId,
      action: active.dataset.action || null,
    };
  }
  list.replaceChildren(...state.incidents.map(renderIncident));
  const count = state.incidents.length;
  byId("incidents-summary").textContent =
    count === 0
      ? "No ongoing incidents."
      : count === 1
        ? "1 ongoing incident."
        : `${count} ongoing incidents, most recently seen first.`;
  if (focused) {
    // keep the keyboard where it was: the same button, else the incident's status
    const item = findIncidentItem(focused.id);
    const again =
      item &&
      ((focused.action && item.querySelector(`button[data-action="${focused.action}"]`)) ||
        item.querySelector(".incident-status"));
    (again || byId("incidents-heading")).focus();
  }
}

function showIncidentError(message) {
  showError(message, "incidents-error");
}

function clearIncidentError() {
  byId("incidents-error").textContent = "";
}

async function loadIncidents() {
  const token = ++state.incidentsToken;
  try {
    const incidents = await api("GET", "/api/incidents?include_resolved=false");
    if (token !== state.incidentsToken) return false;
    state.incidents = Array.isArray(incidents) ? incidents : [];
    renderIncidents();
    return true;
  } catch (error) {
    if (token !== state.incidentsToken) return false;
    if (byId("incidents-summary").textContent.startsWith("Loading")) {
      byId("incidents-summary").textContent = "Incidents could not be loaded.";
    }
    showIncidentError(`Could not load the incidents: ${error.message}`);
    return false;
  }
}

async function changeIncident(incident, action) {
  const id = incident.incident_id;
  if (state.incidentBusy.has(id)) return;
  state.incidentBusy.add(id);
  clearIncidentError();
  const target = incidentTarget(incident);
  const item = findIncidentItem(id);
  if (item) {
    item.setAttribute("aria-busy", "true");
    for (const b of item.querySelectorAll("button")) b.setAttribute("aria-disabled", "true");
  }
  let message = null;
  try {
    const body = action === "snooze" ? { days: SNOOZE_DAYS } : {};
    const updated = await api("POST", `${incidentPath(id)}/${action}`, body);
    state.incidents = state.incidents.map((i) => (i.incident_id === id ? updated : i));
    message =
      action === "snooze"
        ? `Incident at ${target} snoozed until ${updated.snoozed_until}.`
        : `Incident at ${target} acknowledged${updated.acknowledged_by ? ` by ${updated.acknowledged_by}` : ""}.`;
  } catch (error) {
    showIncidentError(`Could not ${action} the incident at ${target}: ${error.message}`);
  } finally {
    state.incidentBusy.delete(id);
  }
  const hadFocus = item && item.contains(document.activeElement);
  renderIncidents(); // the answer at once; the full list follows
  await loadIncidents();
  if (message) byId("incidents-announcement").textContent = message;
  if (hadFocus) {
    const again = findIncidentItem(id);
    const status = again && again.querySelector(".incident-status");
    if (status && !again.contains(document.activeElement)) status.focus();
    else if (!again) byId("incidents-heading").focus();
  }
}

// ---------------------------------------------------------------------------------------
// Wiring
// ---------------------------------------------------------------------------------------

function wire() {
  const form = byId("ask-form");
  const textarea = byId("question");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    if (byId("send").getAttribute("aria-disabled") === "true") return;
    submitQuestion();
  });
  textarea.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && !event.shiftKey && !event.isComposing) {
      event.preventDefault();
      form.requestSubmit();
    }
  });
  byId("new-thread").addEventListener("click", startNewConversation);
  byId("skip-link").addEventListener("click", (event) => {
    // keep the #thread=… hash: focus the message box without navigating
    event.preventDefault();
    textarea.focus();
    textarea.scrollIntoView({ block: "center" });
  });
  window.addEventListener("hashchange", route);
  window.addEventListener("popstate", route);
  byId("incidents-refresh").addEventListener("click", async () => {
    clearIncidentError();
    if (await loadIncidents()) {
      const count = state.incidents.length;
      byId("incidents-announcement").textContent = `Incidents refreshed: ${count} ongoing.`;
    }
  });
  document.addEventListener("visibilitychange", () => {
    // a scheduled triage may have run while the page was in the background
    if (document.visibilityState === "visible") loadIncidents();
  });
}

function init() {
  wire();
  loadMe();
  loadThreads();
  loadIncidents();
  route();
}

init();

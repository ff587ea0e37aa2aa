/* What several panels of the Email tab use: the page's config, DOM lookup, talking to the
 * JSON endpoints, time formatting, the status line, the confirm and message dialogs, and the
 * small builders of rows and buttons. Every text from the server goes in with textContent. */

export const root = document.getElementById("bulk-email-tab");
export const config = root ? JSON.parse(document.getElementById("bulk-email-config").textContent) : null;
export const urls = config && config.urls;
// The workflow states, from the server (email_tab.state_sets): sets and names, never spelled here.
export const states = config && config.states;

// The page's language (the tab's lang attribute, Django's active language) for dates and numbers.
export const language = root ? root.lang || document.documentElement.lang || undefined : undefined;

// --- Words: Django's JavaScriptCatalog (the script before this module) --------------------------
// Its gettext, ngettext and interpolate are globals. Where it did not load, the English text is
// shown as written rather than the tab breaking.

export const gettext = window.gettext || ((text) => text);
export const ngettext = window.ngettext || ((one, many, n) => (n === 1 ? one : many));
export const pgettext = window.pgettext || ((context, text) => text);
const interpolateNamed = window.interpolate ||
  ((text, values) => text.replace(/%\((\w+)\)s/g, (match, name) => String(values[name])));

/** A translated text with its %(name)s filled in: interpolate's named form. */
export const format = (text, values) => interpolateNamed(text, values, true);

/** A number in the page's language (digits, separators). */
export const number = (n) => new Intl.NumberFormat(language).format(n);

export const el = (name) => document.getElementById("bulk-email-" + name);
export const isFinal = (task) => states.final.includes(task.state);

// --- Reloading the task tables ------------------------------------------------------------------
// A panel that changed a send asks for the tables again; the entry file says how, since it is
// the one that knows every panel.

let reloadTasks = async () => {};

export function setRefresh(reload) {
  reloadTasks = reload;
}

export const refresh = () => reloadTasks();

// --- Talking to the server ----------------------------------------------------------------------

function csrfToken() {
  return root.querySelector("input[name=csrfmiddlewaretoken]").value; // the compose form's
}

export async function call(method, url, body) {
  const headers = { Accept: "application/json" };
  const options = { method, headers, credentials: "same-origin" };
  if (method !== "GET") headers["X-CSRFToken"] = csrfToken();
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    options.body = JSON.stringify(body);
  }
  let response, data;
  try {
    response = await fetch(url, options);
  } catch (networkError) {
    throw failure(gettext("The server could not be reached. Nothing was lost: try again."), {});
  }
  try {
    data = await response.json();
  } catch (notJson) {
    data = { message: format(gettext("The server answered with an error (%(status)s). Try again."),
      { status: response.status }) };
  }
  if (!response.ok) throw failure(data.message, data, response.status);
  return data;
}

/** An error the tab can say; `status` is the HTTP status, 0 when the server was not reached. */
export function failure(message, data, status = 0) {
  const error = new Error(message);
  error.data = data;
  error.status = status;
  return error;
}

export const taskUrl = (id, rest) => urls.tasks + id + "/" + (rest || "");

// --- Dates: the browser's local time, sent with its offset --------------------------------------
// Shown in the page's language and in the time zone the page names (data-time-zone, the active
// Django time zone when the site set one for the user) or else the browser's: the schedule's
// date-time input is in the browser's time, so the times shown next to it are too.

const pad = (n) => String(Math.abs(n)).padStart(2, "0");
export const timeZone = (root && root.dataset.timeZone) || Intl.DateTimeFormat().resolvedOptions().timeZone;
const timeFormat = new Intl.DateTimeFormat(language, {
  year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
  timeZoneName: "short", timeZone,
});

export function localTime(iso) {
  return iso ? timeFormat.format(new Date(iso)) : "";
}

export function localInputValue(date) {
  return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
    "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
}

export function isoWithOffset(date) {
  const offset = -date.getTimezoneOffset();
  const sign = offset >= 0 ? "+" : "-";
  return localInputValue(date) + ":00" + sign + pad(Math.trunc(offset / 60)) + ":" + pad(offset % 60);
}

export function duration(seconds) {
  if (seconds === null || seconds === undefined) return "";
  const minutes = Math.floor(seconds / 60);
  if (!minutes) return format(gettext("%(seconds)s s"), { seconds: number(seconds) });
  return format(gettext("%(minutes)s min %(seconds)s s"), { minutes: number(minutes), seconds: number(seconds % 60) });
}

/** One count in words: TEXT is what ngettext chose for n (so that its words agree with n),
 * its %(count)s becomes n in the page's digits; VALUES fill any other name in it. */
export const counted = (text, n, values) => format(text, { ...values, count: number(n) });

/** Several counts on one line, "1 sent, 0 failed, 2 skipped": one counted() text per count,
 * never one text holding several numbers, since a language agrees each word with its own
 * number (French "1 envoyé, 2 ignorés"; Arabic has six forms). The separator is the
 * language's own (Arabic's comma is "،"). */
export const countsLine = (parts) => parts.join(pgettext("list separator", ", "));

export const people = (n) => format(ngettext("%(count)s person", "%(count)s people", n), { count: number(n) });

export function say(message) {
  el("status").textContent = message;
}

// --- Where focus goes back to -------------------------------------------------------------------
// A button is disabled while its request runs, and a disabled button loses focus to <body>; a
// dialog closing gives focus back to what had it when it opened, <body> again then. Either way
// a keyboard user would be thrown to the top of the page: focus goes back to the last control
// focused outside a dialog instead, once it is usable again.

let returnTo = null;

function noteFocus(event) {
  if (root.contains(event.target) && !event.target.closest("dialog")) returnTo = event.target;
}

/** Focus the control that had it last, if focus was lost (to <body>) and it can take it. */
export function restoreFocus() {
  const lost = !document.activeElement || document.activeElement === document.body;
  if (lost && returnTo && returnTo.isConnected && !returnTo.disabled) returnTo.focus();
}

export function initFocusReturn() {
  document.addEventListener("focusin", noteFocus);
  root.querySelectorAll("dialog").forEach((dialog) => {
    dialog.addEventListener("close", () => setTimeout(restoreFocus));
  });
}

// --- Dialogs ------------------------------------------------------------------------------------

export function confirmDialog(title, text, okLabel) {
  const dialog = el("confirm");
  el("confirm-title").textContent = title;
  el("confirm-text").textContent = text;
  el("confirm-ok").textContent = okLabel;
  dialog.returnValue = "";
  dialog.showModal();
  el("confirm-cancel").focus(); // Enter or Space right away must not do the irreversible thing

  return new Promise((resolve) => {
    dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
  });
}

let shownHtml = ""; // the message in the viewer, as it is, for "Show images"

export function showMessage(title, note, preview, trail) {
  showTrail(trail || []);
  el("viewer-title").textContent = title;
  el("viewer-note").textContent = note;
  el("viewer-subject").textContent = preview.subject;
  el("viewer").showModal();
  shownHtml = preview.html;
  const guarded = withoutRemoteImages(preview.html);
  el("viewer-images").hidden = !guarded.hasImages; // only when something is held back
  // Only now: a sandboxed frame given its srcdoc while the dialog is closed shows a blank
  // page from the second opening on, although the HTML is there.
  el("viewer-frame").srcdoc = guarded.html;
}

/** The message with a CSP of its own first in its head: images only from the message itself
 * (data:) and from this site. The frame inherits the page's policy too; this one narrows it,
 * so a sender's tracking pixel is not fetched just because a colleague opened the message.
 * DOMParser makes an inert document: nothing in it loads or runs while it is rewritten. */
export function withoutRemoteImages(html) {
  const doc = new DOMParser().parseFromString(html, "text/html");
  const policy = doc.createElement("meta");
  policy.httpEquiv = "Content-Security-Policy";
  policy.content = "img-src data: " + window.location.origin;
  doc.head.prepend(policy);
  const doctype = doc.doctype ? new XMLSerializer().serializeToString(doc.doctype) : "";
  const sources = Array.from(doc.querySelectorAll("img[src], [background]"),
    (node) => node.getAttribute("src") || node.getAttribute("background"));
  const hasImages = sources.some(isRemote) || /url\s*\(/i.test(html);
  return { html: doctype + doc.documentElement.outerHTML, hasImages };
}

/** An image address that the frame's own policy holds back: not data:, not this site. */
function isRemote(address) {
  try {
    const url = new URL(address, window.location.href);
    return url.protocol !== "data:" && url.origin !== window.location.origin;
  } catch (notAnAddress) {
    return false;
  }
}

function showImages() {
  el("viewer-images").hidden = true;
  el("viewer-frame").srcdoc = shownHtml;
}

/** The viewer's frame runs no script, so the keys typed in it never reach this page and
 * Escape would not close the dialog while the frame has focus: focus goes back to the Close
 * button whenever the frame takes it (clicks, links and the mouse wheel still work there). */
export function initViewer() {
  const dialog = el("viewer");
  window.addEventListener("blur", () => {
    if (dialog.open) setTimeout(focusViewerIfFrameHasFocus);
  });
  dialog.addEventListener("close", () => el("viewer-frame").removeAttribute("srcdoc"));
  el("viewer-show-images").addEventListener("click", showImages);
}

function focusViewerIfFrameHasFocus() {
  if (document.activeElement === el("viewer-frame")) el("viewer-close").focus();
}

/** The View button of a scheduled or sent email: the stored email, rendered for the viewer. */
export async function view(task) {
  try {
    const stored = await call("GET", taskUrl(task.task_id, "email/"));
    showMessage(format(gettext("“%(subject)s”"), { subject: task.subject }),
      format(gettext("As you would receive it. Sent to: %(groups)s."), { groups: task.groups.join(", ") }),
      stored.preview, stored.audit);
  } catch (error) {
    say(error.message);
  }
}

/** The send's audit trail under the subject: who did what, when, and which fields changed. */
function showTrail(trail) {
  el("viewer-trail").replaceChildren(...trail.map((entry) => node("li", { textContent: trailLine(entry) })));
  el("viewer-trail").hidden = !trail.length;
}

const CHANGED_FIELDS = {
  subject: gettext("subject"), targets: gettext("groups"), send_at: gettext("time"), body_sha256: gettext("message"),
};

function trailLine(entry) {
  const line = format(gettext("%(action)s by %(actor)s, %(when)s"), {
    action: entry.action_label, actor: entry.actor || gettext("a removed user"), when: localTime(entry.at),
  });
  if (entry.action !== "edited") return line;
  const fields = Object.keys(entry.changes).map((name) => CHANGED_FIELDS[name] || name);
  if (!fields.length) return format(gettext("%(line)s (nothing changed)"), { line });
  return format(gettext("%(line)s (changed: %(fields)s)"), { line, fields: fields.join(", ") });
}

// --- Building rows, lists and buttons -----------------------------------------------------------

export function node(tag, props) {
  const made = document.createElement(tag);
  Object.entries(props || {}).forEach(([key, value]) => {
    if (key in made && !key.includes("-")) made[key] = value;
    else made.setAttribute(key, value);
  });
  return made;
}

export function row(cells, attributes) {
  const tr = node("tr", attributes);
  cells.forEach((cell) => {
    const td = node("td");
    if (cell instanceof Node) td.append(cell);
    else td.textContent = cell === null || cell === undefined ? "" : String(cell);
    tr.append(td);
  });
  return tr;
}

export function buttons(task, actions) {
  const box = node("div", { className: "bulk-email-row-actions" });
  actions.forEach(([label, action]) => {
    const button = node("button", { type: "button", className: "secondary", textContent: label });
    button.setAttribute("aria-label", format(gettext("%(action)s “%(subject)s”"), { action: label, subject: task.subject }));
    button.addEventListener("click", () => action(task));
    box.append(button);
  });
  return box;
}

/** Put rows in the table #bulk-email-NAME; its "-empty" note shows when there are none. */
export function fill(name, rows) {
  el(name).querySelector("tbody").replaceChildren(...rows);
  const empty = el(name + "-empty");
  if (empty) empty.hidden = rows.length > 0;
}

/* The compose panel: subject with its counter, the CKEditor message, the Send-to groups, now
 * or at a date and time; errors next to their fields; preview, a test to myself, send or
 * schedule after confirmation; and editing a scheduled email in this same form. */
import {
  call, config, confirmDialog, el, failure, format, gettext, isoWithOffset, localInputValue, localTime,
  ngettext, number, people, refresh, restoreFocus, root, say, showMessage, taskUrl, timeZone, urls,
} from "./shared.js";
import { track } from "./progress.js";

const FIELDS = ["targets", "from_addr", "subject", "message", "send_at"];

const form = el("compose");
const subjectInput = el("subject");
const sendAtInput = el("send-at");
const laterRadio = el("when-later");
const submitButton = el("submit");

// --- The form's content ---------------------------------------------------------------------------

function editor() {
  return window.CKEDITOR && window.CKEDITOR.instances["bulk-email-message"];
}

function getMessage() {
  const instance = editor();
  return instance ? instance.getData() : el("message").value;
}

function setMessage(html) {
  const instance = editor();
  if (instance) instance.setData(html);
  el("message").value = html;
}

function checkedTargets() {
  return Array.from(form.querySelectorAll("input[name=targets]:checked"), (box) => box.value);
}

function targetLabels(keys) {
  return keys.map((key) => {
    const box = form.querySelector("input[name=targets][value='" + CSS.escape(key) + "']");
    return box ? box.dataset.label : key;
  });
}

function readDraft() {
  return {
    subject: subjectInput.value,
    message: getMessage(),
    targets: checkedTargets(),
    later: laterRadio.checked,
    sendAt: sendAtInput.value,
  };
}

function writeDraft(draft) {
  subjectInput.value = draft.subject;
  setMessage(draft.message);
  form.querySelectorAll("input[name=targets]").forEach((box) => {
    box.checked = draft.targets.includes(box.value);
  });
  laterRadio.checked = draft.later;
  el("when-now").checked = !draft.later;
  sendAtInput.value = draft.sendAt;
  showWhen();
  countSubject();
}

/** A new idempotency key: one per compose, sent with the send, so that the same request twice
 * (a double click, a retry after a lost answer) makes one send. randomUUID needs a secure
 * context (https or localhost); getRandomValues works everywhere. */
function newKey() {
  if (window.crypto.randomUUID) return window.crypto.randomUUID();
  return Array.from(window.crypto.getRandomValues(new Uint8Array(16)),
    (byte) => byte.toString(16).padStart(2, "0")).join("");
}

let composeKey = newKey();

const emptyDraft = () => ({ subject: "", message: "", targets: [], later: false, sendAt: "" });

function countSubject() {
  const limit = config.subjectMaxLength;
  const length = Array.from(subjectInput.value).length; // code points, as the server counts
  const counter = el("subject-counter");
  const counted = format(ngettext("%(length)s of %(limit)s characters", "%(length)s of %(limit)s characters", limit),
    { length: number(length), limit: number(limit) });
  const over = length - limit;
  counter.textContent = over > 0
    ? format(gettext("%(counted)s — %(over)s too many"), { counted, over: number(over) })
    : counted;
  counter.classList.toggle("bulk-email-over", length > limit);
}

function showWhen() {
  el("send-at-field").hidden = !laterRadio.checked;
  submitButton.textContent = editing ? gettext("Save changes")
    : laterRadio.checked ? gettext("Schedule email") : gettext("Send email");
}

function sendAtIso() {
  if (!sendAtInput.value) return null;
  const date = new Date(sendAtInput.value); // a date-time without offset is local time
  return isNaN(date) ? null : isoWithOffset(date);
}

// --- Errors next to their fields; nothing typed is touched ------------------------------------------

function clearErrors() {
  FIELDS.concat(["general"]).forEach((field) => {
    const box = el("error-" + field);
    box.hidden = true;
    box.textContent = "";
  });
  root.querySelectorAll("[aria-invalid]").forEach((node) => node.removeAttribute("aria-invalid"));
  root.querySelectorAll(".bulk-email-invalid").forEach((node) => node.classList.remove("bulk-email-invalid"));
}

function fieldControl(field) {
  return {
    targets: el("targets"), from_addr: el("from_addr") || el("sender"), subject: subjectInput,
    message: el("message"), send_at: sendAtInput,
  }[field];
}

function showError(field, message) {
  const known = FIELDS.includes(field);
  const box = el("error-" + (known ? field : "general"));
  box.textContent = message;
  box.hidden = false;
  if (known) fieldControl(field).setAttribute("aria-invalid", "true");
  // CKEditor hides the textarea: outline its frame so the wrong field is seen too.
  const frame = field === "message" && document.getElementById("cke_bulk-email-message");
  if (frame) frame.classList.add("bulk-email-invalid");
  return known ? field : "general";
}

function showErrors(error) {
  const errors = (error.data && error.data.errors) || {};
  const shown = Object.keys(errors).map((field) => showError(field, errors[field]));
  if (!shown.length) shown.push(showError("general", error.message));
  focusField(shown.find((field) => field !== "general") || "general");
}

function focusField(field) {
  if (field === "message" && editor()) return editor().focus();
  if (field === "targets") return form.querySelector("input[name=targets]").focus();
  if (field === "general") return el("error-general").scrollIntoView({ block: "center" });
  fieldControl(field).focus();
}

// --- Actions ----------------------------------------------------------------------------------------

async function busy(button, work) {
  button.disabled = true;
  clearErrors();
  try {
    await work();
  } catch (error) {
    showErrors(error);
  } finally {
    button.disabled = false;
    restoreFocus(); // it lost focus when disabled, or the dialog it opened gave it to <body>
  }
}

function preview() {
  return busy(el("preview"), async () => {
    const shown = await call("POST", urls.preview, { subject: subjectInput.value, message: getMessage() });
    showMessage(gettext("Preview"), gettext("As you would receive it, with the footer every recipient gets."), shown);
  });
}

function sendTest() {
  return busy(el("test"), async () => {
    const task = await call("POST", urls.emails, {
      subject: subjectInput.value, message: getMessage(), targets: ["myself"], idempotency_key: newKey(),
    });
    say(format(gettext("A test of “%(subject)s” is on its way to you."), { subject: task.subject }));
    track(task);
  });
}

async function submit(event) {
  event.preventDefault();
  await busy(submitButton, async () => {
    const draft = readDraft();
    const body = { subject: draft.subject, message: draft.message, targets: draft.targets };
    if (draft.later) body.send_at = sendAtIso();
    const from = el("from_addr"); // a choice only when the course has several From addresses
    if (from) body.from_addr = from.value;
    const counted = await checkDraft(draft);
    if (editing) return saveEdit(body);
    if (!(await confirmSend(draft, body, counted))) return;
    const task = await call("POST", urls.emails, { ...body, idempotency_key: composeKey });
    composeKey = newKey(); // sent: what is composed next is another email
    say(draft.later
      ? format(gettext("Your email “%(subject)s” is scheduled for %(when)s."),
        { subject: task.subject, when: localTime(task.send_at) })
      : format(gettext("Your email “%(subject)s” was queued for sending to %(people)s."),
        { subject: task.subject, people: people(counted.total) }));
    writeDraft(emptyDraft());
    if (!draft.later) track(task);
    await refresh();
  });
}

// --- Checking everything before asking anything -------------------------------------------------

/** Every wrong field at once, before the confirm dialog: what the page can see, then what only
 * the server knows (the preview checks subject and message, the count checks the groups). The
 * count, when nothing is wrong. */
async function checkDraft(draft) {
  const [previewed, counted] = await Promise.allSettled([
    call("POST", urls.preview, { subject: draft.subject, message: draft.message }),
    call("POST", urls.count, { targets: draft.targets }),
  ]);
  const errors = Object.assign(serverErrors(previewed), serverErrors(counted), draftErrors(draft));
  if (Object.keys(errors).length) throw failure("", { errors });
  return counted.value;
}

function draftErrors(draft) {
  const errors = {};
  const length = Array.from(draft.subject.trim()).length;
  const limit = config.subjectMaxLength;
  if (!length) errors.subject = gettext("Enter a subject.");
  else if (length > limit) {
    errors.subject = format(ngettext(
      "The subject is %(length)s characters long; the limit is %(limit)s.",
      "The subject is %(length)s characters long; the limit is %(limit)s.", length),
    { length: number(length), limit: number(limit) });
  }
  if (isEmptyMessage(draft.message)) errors.message = gettext("Write a message: it is empty.");
  if (!draft.targets.length) errors.targets = gettext("Choose at least one group to send to.");
  if (draft.later && !sendAtIso()) errors.send_at = gettext("Choose the date and time to send at.");
  return errors;
}

/** No text and no picture. DOMParser makes an inert document: nothing in it loads or runs. */
function isEmptyMessage(html) {
  const body = new DOMParser().parseFromString(html, "text/html").body;
  return !body.textContent.trim() && !body.querySelector("img");
}

/** A refused check's errors by field ({general: ...} when it names none). */
function serverErrors(result) {
  if (result.status === "fulfilled") return {};
  const data = result.reason.data || {};
  if (data.errors && Object.keys(data.errors).length) return { ...data.errors };
  return { [data.field || "general"]: result.reason.message };
}

function confirmSend(draft, body, counted) {
  const groups = targetLabels(counted.targets).join(", ");
  const values = { when: localTime(body.send_at), people: people(counted.total), groups };
  const question = format(draft.later
    ? gettext("Schedule this email for %(when)s to %(people)s (%(groups)s)?")
    : gettext("Send this email now to %(people)s (%(groups)s)?"), values) + unknownKeywordsNote(draft);
  return confirmDialog(draft.later ? gettext("Schedule the email?") : gettext("Send the email?"), question,
    draft.later ? gettext("Schedule") : gettext("Send"));
}

/** A %%WORD%% that is not a keyword goes out as written: said before anything is sent. */
export function unknownKeywordsNote(draft) {
  const written = (draft.subject + " " + draft.message).match(/%%[A-Za-z_]+%%/g) || [];
  const unknown = [...new Set(written)].filter((word) => !config.keywords.includes(word));
  if (!unknown.length) return "";
  return " " + format(ngettext(
    "Note: %(words)s is not a keyword and will be sent as written (the keywords are %(keywords)s).",
    "Note: %(words)s are not keywords and will be sent as written (the keywords are %(keywords)s).",
    unknown.length), { words: unknown.join(", "), keywords: config.keywords.join(", ") });
}

// --- Editing a scheduled email in the compose form --------------------------------------------------

let editing = null; // {taskId, stash, stored, shownSendAt, shownMessage}: what is being edited

/** The Edit button of the scheduled table: load the stored email, set the draft aside. */
export async function startEdit(task) {
  let stored;
  try {
    stored = await call("GET", taskUrl(task.task_id, "email/"));
  } catch (error) {
    return say(error.message);
  }
  const taskId = task.task_id;
  if (!editing) editing = { taskId, stash: readDraft() };
  Object.assign(editing, { taskId, stored, shownSendAt: localInputValue(new Date(stored.send_at)) });
  rememberShownMessage(taskId);
  writeDraft({
    subject: stored.subject, message: stored.message, targets: stored.targets,
    later: true, sendAt: editing.shownSendAt,
  });
  el("editing-subject").textContent = format(gettext("“%(subject)s”"), { subject: stored.subject });
  el("editing").hidden = false;
  showWhen();
  clearErrors();
  subjectInput.focus();
}

function endEdit() {
  const stash = editing.stash;
  editing = null;
  el("editing").hidden = true;
  writeDraft(stash);
}

/** A scheduled email was deleted: stop editing it, if this form is. */
export function forgetEdit(taskId) {
  if (editing && editing.taskId === taskId) endEdit();
}

/** CKEditor gives the stored message back in its own spelling once loaded: remember that, so
 * that a message left as it was is saved as stored (and the audit trail lists only what the
 * editor changed). */
function rememberShownMessage(taskId) {
  editing.shownMessage = undefined;
  const instance = editor();
  if (!instance) return;
  instance.once("dataReady", () => {
    if (editing && editing.taskId === taskId) editing.shownMessage = instance.getData();
  });
}

/** The time input shows whole minutes and the editor its own spelling of the message: what
 * was left as shown goes back as stored, not as shown. */
function asStoredWhereUnchanged(body) {
  if (body.send_at && sendAtInput.value === editing.shownSendAt) body.send_at = editing.stored.send_at;
  if (body.message === editing.shownMessage) body.message = editing.stored.message;
  return body;
}

async function saveEdit(body) {
  const task = await call("PUT", taskUrl(editing.taskId), asStoredWhereUnchanged(body));
  endEdit();
  say(format(gettext("Saved: “%(subject)s” is scheduled for %(when)s."),
    { subject: task.subject, when: localTime(task.send_at) }));
  await refresh();
}

// --- Who a group leaves out, and why (on demand: it costs a scan of the group) -----------------------

async function explainGroup(event) {
  const details = event.target;
  if (!details.open || details.dataset.loaded) return;
  const text = details.querySelector("p");
  text.textContent = gettext("Counting…");
  try {
    const found = await call("GET", urls.groups + "?" + new URLSearchParams({ key: details.dataset.key }));
    text.textContent = found.groups[0].why;
    details.dataset.loaded = "true";
  } catch (error) {
    text.textContent = error.message;
  }
}

// --- The editor's focus ring -------------------------------------------------------------------------
// CKEditor's text is in a frame, and a frame whose document has focus matches neither :focus nor
// :focus-within in this page: the editor's own focus events mark its box instead (email_tab.css).

function ringEditorWhenFocused() {
  const wire = (instance) => {
    if (instance.name !== "bulk-email-message") return;
    const mark = (on) => () => {
      const box = document.getElementById("cke_bulk-email-message");
      if (box) box.classList.toggle("bulk-email-editor-focused", on);
    };
    instance.on("focus", mark(true));
    instance.on("blur", mark(false));
  };
  if (editor()) wire(editor());
  else if (window.CKEDITOR) window.CKEDITOR.on("instanceCreated", (event) => wire(event.editor));
}

// --- Wiring -----------------------------------------------------------------------------------------

export function init() {
  subjectInput.addEventListener("input", countSubject);
  el("when-now").addEventListener("change", showWhen);
  laterRadio.addEventListener("change", () => {
    showWhen();
    if (!sendAtInput.value) sendAtInput.value = localInputValue(new Date(Date.now() + 3600 * 1000));
  });
  el("preview").addEventListener("click", preview);
  el("test").addEventListener("click", sendTest);
  el("cancel-edit").addEventListener("click", () => {
    endEdit();
    clearErrors();
    say(gettext("Editing cancelled; the scheduled email is unchanged."));
  });
  form.addEventListener("submit", submit);
  el("timezone").textContent = timeZone;
  sendAtInput.min = localInputValue(new Date());
  countSubject();
  showWhen();
  ringEditorWhenFocused();
  root.querySelectorAll("details.bulk-email-why").forEach((details) => {
    details.addEventListener("toggle", explainGroup);
  });
}

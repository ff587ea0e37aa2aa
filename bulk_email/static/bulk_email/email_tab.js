/* The instructor dashboard's Email tab: compose, preview, send or schedule, watch progress,
 * manage scheduled emails, review history. Plain JS, no build step. It talks to the JSON
 * endpoints of bulk_email/email_tab.py (docs/email_tab.md); every text from the server is put
 * in the page with textContent, never as HTML; messages are shown in sandboxed iframes. */
(function () {
  "use strict";

  const root = document.getElementById("bulk-email-tab");
  if (!root) return;
  const config = JSON.parse(document.getElementById("bulk-email-config").textContent);
  const urls = config.urls;
  const ACTIVE_STATES = ["QUEUING", "PENDING", "STARTED", "PROGRESS"];
  const FINAL_STATES = ["SUCCESS", "FAILURE", "REVOKED"];
  const FIELDS = ["targets", "subject", "message", "send_at"];
  const POLL_MS = 1000;

  const el = (name) => document.getElementById("bulk-email-" + name);
  const form = el("compose");
  const subjectInput = el("subject");
  const sendAtInput = el("send-at");
  const laterRadio = el("when-later");
  const submitButton = el("submit");

  // --- Talking to the server ------------------------------------------------------------------

  function csrfToken() {
    return form.querySelector("input[name=csrfmiddlewaretoken]").value;
  }

  async function call(method, url, body) {
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
      throw failure("The server could not be reached. Nothing was lost: try again.", {});
    }
    try {
      data = await response.json();
    } catch (notJson) {
      data = { message: "The server answered with an error (" + response.status + "). Try again." };
    }
    if (!response.ok) throw failure(data.message, data);
    return data;
  }

  function failure(message, data) {
    const error = new Error(message);
    error.data = data;
    return error;
  }

  const taskUrl = (id, rest) => urls.tasks + id + "/" + (rest || "");

  // --- Dates: the browser's local time, sent with its offset ------------------------------------

  const pad = (n) => String(Math.abs(n)).padStart(2, "0");
  const timeFormat = new Intl.DateTimeFormat(undefined, {
    year: "numeric", month: "short", day: "numeric", hour: "2-digit", minute: "2-digit",
    timeZoneName: "short",
  });

  function localTime(iso) {
    return iso ? timeFormat.format(new Date(iso)) : "";
  }

  function localInputValue(date) {
    return date.getFullYear() + "-" + pad(date.getMonth() + 1) + "-" + pad(date.getDate()) +
      "T" + pad(date.getHours()) + ":" + pad(date.getMinutes());
  }

  function isoWithOffset(date) {
    const offset = -date.getTimezoneOffset();
    const sign = offset >= 0 ? "+" : "-";
    return localInputValue(date) + ":00" + sign + pad(Math.trunc(offset / 60)) + ":" + pad(offset % 60);
  }

  function duration(seconds) {
    if (seconds === null || seconds === undefined) return "";
    const minutes = Math.floor(seconds / 60);
    return minutes ? minutes + " min " + (seconds % 60) + " s" : seconds + " s";
  }

  const people = (n) => n.toLocaleString() + (n === 1 ? " person" : " people");

  // --- The compose form -------------------------------------------------------------------------

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

  const emptyDraft = () => ({ subject: "", message: "", targets: [], later: false, sendAt: "" });

  function countSubject() {
    const limit = config.subjectMaxLength;
    const length = Array.from(subjectInput.value).length; // code points, as the server counts
    const counter = el("subject-counter");
    counter.textContent = length + " of " + limit + " characters" +
      (length > limit ? " — " + (length - limit) + " too many" : "");
    counter.classList.toggle("bulk-email-over", length > limit);
  }

  function showWhen() {
    el("send-at-field").hidden = !laterRadio.checked;
    submitButton.textContent = editing ? "Save changes" : laterRadio.checked ? "Schedule email" : "Send email";
  }

  function sendAtIso() {
    if (!sendAtInput.value) return null;
    const date = new Date(sendAtInput.value); // a date-time without offset is local time
    return isNaN(date) ? null : isoWithOffset(date);
  }

  // --- Errors next to their fields; nothing typed is touched ------------------------------------

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
    return { targets: el("targets"), subject: subjectInput, message: el("message"), send_at: sendAtInput }[field];
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

  function say(message) {
    el("status").textContent = message;
  }

  // --- Dialogs ----------------------------------------------------------------------------------

  function confirmDialog(title, text, okLabel) {
    const dialog = el("confirm");
    el("confirm-title").textContent = title;
    el("confirm-text").textContent = text;
    el("confirm-ok").textContent = okLabel;
    dialog.returnValue = "";
    dialog.showModal();
    el("confirm-ok").focus();
    return new Promise((resolve) => {
      dialog.addEventListener("close", () => resolve(dialog.returnValue === "ok"), { once: true });
    });
  }

  function showMessage(title, note, preview) {
    el("viewer-title").textContent = title;
    el("viewer-note").textContent = note;
    el("viewer-subject").textContent = preview.subject;
    el("viewer-frame").srcdoc = preview.html;
    el("viewer").showModal();
  }

  // --- Actions ------------------------------------------------------------------------------------

  async function busy(button, work) {
    button.disabled = true;
    clearErrors();
    try {
      await work();
    } catch (error) {
      showErrors(error);
    } finally {
      button.disabled = false;
    }
  }

  function preview() {
    return busy(el("preview"), async () => {
      const shown = await call("POST", urls.preview, { subject: subjectInput.value, message: getMessage() });
      showMessage("Preview", "As you would receive it, with the footer every recipient gets.", shown);
    });
  }

  function sendTest() {
    return busy(el("test"), async () => {
      const task = await call("POST", urls.emails, {
        subject: subjectInput.value, message: getMessage(), targets: ["myself"],
      });
      say("A test of “" + task.subject + "” is on its way to you.");
      track(task);
    });
  }

  async function submit(event) {
    event.preventDefault();
    await busy(submitButton, async () => {
      const draft = readDraft();
      const body = { subject: draft.subject, message: draft.message, targets: draft.targets };
      if (draft.later) {
        body.send_at = sendAtIso();
        if (!body.send_at) throw failure("", { errors: { send_at: "Choose the date and time to send at." } });
      }
      if (editing) return saveEdit(body);
      const counted = await call("POST", urls.count, { targets: draft.targets });
      const groups = targetLabels(counted.targets).join(", ");
      const question = (draft.later ? "Schedule this email for " + localTime(body.send_at) + " to " : "Send this email now to ") +
        people(counted.total) + " (" + groups + ")?";
      const ok = await confirmDialog(draft.later ? "Schedule the email?" : "Send the email?", question,
        draft.later ? "Schedule" : "Send");
      if (!ok) return;
      const task = await call("POST", urls.emails, body);
      say(draft.later
        ? "Your email “" + task.subject + "” is scheduled for " + localTime(task.send_at) + "."
        : "Your email “" + task.subject + "” was queued for sending to " + people(counted.total) + ".");
      writeDraft(emptyDraft());
      if (!draft.later) track(task);
      await refresh();
    });
  }

  // --- Editing a scheduled email in the compose form --------------------------------------------

  let editing = null; // {taskId, stash}: the draft set aside while editing

  async function startEdit(task) {
    let stored;
    try {
      stored = await call("GET", taskUrl(task.task_id, "email/"));
    } catch (error) {
      return say(error.message);
    }
    const taskId = task.task_id;
    if (!editing) editing = { taskId, stash: readDraft() };
    editing.taskId = taskId;
    writeDraft({
      subject: stored.subject, message: stored.message, targets: stored.targets,
      later: true, sendAt: localInputValue(new Date(stored.send_at)),
    });
    el("editing-subject").textContent = "“" + stored.subject + "”";
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

  async function saveEdit(body) {
    const task = await call("PUT", taskUrl(editing.taskId), body);
    endEdit();
    say("Saved: “" + task.subject + "” is scheduled for " + localTime(task.send_at) + ".");
    await refresh();
  }

  // --- Row actions ----------------------------------------------------------------------------------

  async function view(task) {
    try {
      const stored = await call("GET", taskUrl(task.task_id, "email/"));
      showMessage("“" + task.subject + "”", "As you would receive it. Sent to: " + task.groups.join(", ") + ".",
        stored.preview);
    } catch (error) {
      say(error.message);
    }
  }

  async function remove(task) {
    const ok = await confirmDialog("Delete the scheduled email?",
      "“" + task.subject + "” will not be sent. This cannot be undone.", "Delete");
    if (!ok) return;
    try {
      await call("DELETE", taskUrl(task.task_id));
      if (editing && editing.taskId === task.task_id) endEdit();
      say("Deleted: “" + task.subject + "” will not be sent.");
    } catch (error) {
      say(error.message);
    }
    await refresh();
  }

  async function resend(task) {
    const ok = await confirmDialog("Resend to failed recipients?",
      "Send “" + task.subject + "” again to the " + people(task.failed) + " it could not reach.", "Resend");
    if (!ok) return;
    try {
      track(await call("POST", taskUrl(task.task_id, "resend/")));
      say("Resending “" + task.subject + "” to " + people(task.failed) + ".");
    } catch (error) {
      say(error.message);
    }
    await refresh();
  }

  // --- Pending and running sends: live progress -----------------------------------------------------

  const tracked = new Map(); // task id -> latest summary, shown until the page is left
  let polling = false;

  function track(task) {
    tracked.set(task.task_id, task);
    renderActive();
    if (!polling) poll();
  }

  async function poll() {
    polling = true;
    const running = Array.from(tracked.values()).filter((task) => !FINAL_STATES.includes(task.state));
    if (!running.length) {
      polling = false;
      return;
    }
    let ended = false;
    for (const task of running) {
      try {
        const latest = await call("GET", taskUrl(task.task_id));
        tracked.set(latest.task_id, latest);
        ended = ended || FINAL_STATES.includes(latest.state);
      } catch (error) {
        tracked.delete(task.task_id); // gone or no longer ours to see
      }
    }
    renderActive();
    if (ended) await refresh();
    setTimeout(poll, POLL_MS);
  }

  function countsText(task) {
    return task.sent + " sent, " + task.failed + " failed, " + task.skipped + " skipped" +
      (task.total ? " of " + task.total : "");
  }

  function renderActive() {
    const list = el("active");
    list.replaceChildren(...Array.from(tracked.values(), activeItem));
    el("active-empty").hidden = tracked.size > 0;
  }

  function activeItem(task) {
    const item = node("li", { className: "bulk-email-run", "data-task-id": task.task_id, "data-state": task.state });
    const head = node("p");
    head.append(node("strong", { textContent: task.subject }), " — ",
      node("span", { className: "bulk-email-state", textContent: task.state_label }));
    const bar = node("progress", { "aria-label": "Progress of “" + task.subject + "”" });
    if (task.total) {
      bar.max = task.total;
      bar.value = task.sent + task.failed + task.skipped;
    } else if (FINAL_STATES.includes(task.state)) {
      bar.max = 1;
      bar.value = 1;
    }
    const counts = node("p", { className: "bulk-email-counts", textContent: countsText(task) });
    item.append(head, bar, counts);
    if (task.error) item.append(node("p", { className: "bulk-email-error", textContent: task.error }));
    return item;
  }

  // --- Tables -----------------------------------------------------------------------------------------

  function node(tag, props) {
    const made = document.createElement(tag);
    Object.entries(props || {}).forEach(([key, value]) => {
      if (key in made && !key.includes("-")) made[key] = value;
      else made.setAttribute(key, value);
    });
    return made;
  }

  function row(cells) {
    const tr = node("tr");
    cells.forEach((cell) => {
      const td = node("td");
      if (cell instanceof Node) td.append(cell);
      else td.textContent = cell === null || cell === undefined ? "" : String(cell);
      tr.append(td);
    });
    return tr;
  }

  function buttons(task, actions) {
    const box = node("div", { className: "bulk-email-row-actions" });
    actions.forEach(([label, action]) => {
      const button = node("button", { type: "button", className: "secondary", textContent: label });
      button.setAttribute("aria-label", label + " “" + task.subject + "”");
      button.addEventListener("click", () => action(task));
      box.append(button);
    });
    return box;
  }

  function fill(name, rows) {
    el(name).querySelector("tbody").replaceChildren(...rows);
    const empty = el(name + "-empty");
    if (empty) empty.hidden = rows.length > 0;
  }

  function wasSent(task) {
    return FINAL_STATES.includes(task.state) && (task.state !== "REVOKED" || task.started_at);
  }

  function result(task) {
    const text = task.sent + " sent, " + task.failed + " failed";
    return task.state === "SUCCESS" ? text : text + " (" + task.state_label + ")";
  }

  function renderTables(tasks) {
    fill("scheduled", tasks.filter((t) => t.state === "SCHEDULED").map((t) => row([
      localTime(t.send_at), t.groups.join(", "), t.subject, t.author,
      buttons(t, [["View", view], ["Edit", startEdit], ["Delete", remove]]),
    ])));
    fill("sent", tasks.filter(wasSent).map((t) => row([
      localTime(t.finished_at || t.created), t.subject, t.groups.join(", "), t.author, result(t),
      buttons(t, [["View", view]].concat(t.failed ? [["Resend to failed recipients", resend]] : [])),
    ])));
    fill("report", tasks.map((t) => row([
      t.task_id, t.requester, localTime(t.created), t.state_label, duration(t.duration_seconds),
      t.total, t.sent, t.failed, t.skipped,
    ])));
  }

  async function refresh() {
    try {
      const listed = await call("GET", urls.tasks);
      renderTables(listed.tasks);
      listed.tasks.filter((t) => ACTIVE_STATES.includes(t.state)).forEach((t) => {
        if (!tracked.has(t.task_id)) track(t);
      });
    } catch (error) {
      say(error.message);
    }
  }

  // --- Wiring ---------------------------------------------------------------------------------------

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
    say("Editing cancelled; the scheduled email is unchanged.");
  });
  form.addEventListener("submit", submit);
  el("timezone").textContent = Intl.DateTimeFormat().resolvedOptions().timeZone;
  sendAtInput.min = localInputValue(new Date());
  countSubject();
  showWhen();
  refresh();
})();

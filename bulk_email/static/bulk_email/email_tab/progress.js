/* The "Pending and running sends" panel: a send started here, or found active when the page
 * loads, is listed with its bar and polled until it ends; then its card moves to the history
 * ("Sent emails", above the table that now lists it too) until the page is left. */
import {
  call, counted, countsLine, el, format, gettext, isFinal, ngettext, node, number, refresh, say, states, taskUrl,
} from "./shared.js";

const POLL_MS = 1000;
const GONE = [403, 404];
const running = new Map(); // task id -> latest summary, while queued or running
const finished = new Map(); // task id -> final summary, the sends that ended on this page
let polling = false;

export function track(task) {
  note(task);
  renderRuns();
  if (!polling) poll();
}

/** Track the listed sends that are queued or running and not tracked yet. */
export function adopt(tasks) {
  tasks.filter((t) => states.active.includes(t.state)).forEach((t) => {
    if (!running.has(t.task_id) && !finished.has(t.task_id)) track(t);
  });
}

/** Keep the latest summary of a send in the list its state belongs to. */
function note(task) {
  running.delete(task.task_id);
  (isFinal(task) ? finished : running).set(task.task_id, task);
}

async function poll() {
  polling = true;
  if (!running.size) {
    polling = false;
    return;
  }
  let ended = false;
  for (const task of Array.from(running.values())) {
    try {
      const latest = await call("GET", taskUrl(task.task_id));
      note(latest);
      if (isFinal(latest)) announceEnd(latest);
      ended = ended || isFinal(latest);
    } catch (error) {
      // Gone or no longer ours to see: stop watching it. Anything else (the network, a busy
      // server) passes: the send still runs, and the next poll asks again.
      if (GONE.includes(error.status)) running.delete(task.task_id);
    }
  }
  renderRuns();
  if (ended) await refresh();
  setTimeout(poll, POLL_MS);
}

/** The end of a send watched here, in the tab's status line (role="status", aria-live):
 * a screen reader says it whatever has focus, and everyone reads it above the lists. */
function announceEnd(task) {
  say(format(gettext("“%(subject)s” ended: %(state)s — %(counts)s."),
    { subject: task.subject, state: task.state_label, counts: countsText(task) }) +
    (task.error ? " " + task.error : ""));
}

/** "1 sent, 0 failed, 0 skipped of 1" (without "of" while the total is not known yet). */
function countsText(task) {
  const counts = sentFailedSkipped(task);
  if (!task.total) return counts;
  return format(gettext("%(counts)s of %(total)s"), { counts, total: number(task.total) });
}

/** "1 sent, 0 failed, 2 skipped", each word agreeing with its own number; the history's too. */
export function sentFailedSkipped(task, more) {
  return countsLine([
    counted(ngettext("%(count)s sent", "%(count)s sent", task.sent), task.sent),
    counted(ngettext("%(count)s failed", "%(count)s failed", task.failed), task.failed),
    counted(ngettext("%(count)s skipped", "%(count)s skipped", task.skipped), task.skipped),
    ...(more || []),
  ]);
}

function renderRuns() {
  el("active").replaceChildren(...Array.from(running.values(), runItem));
  el("active-empty").hidden = running.size > 0;
  const ended = Array.from(finished.values()).reverse(); // the latest first
  el("finished").replaceChildren(...ended.map(runItem));
  el("finished").hidden = !ended.length;
}

function runItem(task) {
  const item = node("li", { className: "bulk-email-run", "data-task-id": task.task_id, "data-state": task.state });
  const head = node("p");
  head.append(node("strong", { textContent: task.subject }), " — ",
    node("span", { className: "bulk-email-state", textContent: task.state_label }));
  const bar = node("progress", { "aria-label": format(gettext("Progress of “%(subject)s”"), { subject: task.subject }) });
  if (task.total) {
    bar.max = task.total;
    bar.value = task.sent + task.failed + task.skipped;
  } else if (isFinal(task)) {
    bar.max = 1;
    bar.value = 1;
  }
  const counts = node("p", { className: "bulk-email-counts", textContent: countsText(task) });
  item.append(head, bar, counts);
  if (task.error) item.append(node("p", { className: "bulk-email-error", textContent: task.error }));
  return item;
}

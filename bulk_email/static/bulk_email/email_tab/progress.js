/* The "Pending and running sends" panel: a send started here, or found active when the page
 * loads, stays listed with its bar until the page is left; each is polled until it ends. */
import { call, el, isFinal, node, refresh, states, taskUrl } from "./shared.js";

const POLL_MS = 1000;
const tracked = new Map(); // task id -> latest summary, shown until the page is left
let polling = false;

export function track(task) {
  tracked.set(task.task_id, task);
  renderActive();
  if (!polling) poll();
}

/** Track the listed sends that are queued or running and not tracked yet. */
export function adopt(tasks) {
  tasks.filter((t) => states.active.includes(t.state)).forEach((t) => {
    if (!tracked.has(t.task_id)) track(t);
  });
}

async function poll() {
  polling = true;
  const running = Array.from(tracked.values()).filter((task) => !isFinal(task));
  if (!running.length) {
    polling = false;
    return;
  }
  let ended = false;
  for (const task of running) {
    try {
      const latest = await call("GET", taskUrl(task.task_id));
      tracked.set(latest.task_id, latest);
      ended = ended || isFinal(latest);
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
  } else if (isFinal(task)) {
    bar.max = 1;
    bar.value = 1;
  }
  const counts = node("p", { className: "bulk-email-counts", textContent: countsText(task) });
  item.append(head, bar, counts);
  if (task.error) item.append(node("p", { className: "bulk-email-error", textContent: task.error }));
  return item;
}

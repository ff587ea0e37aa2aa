/* The delivery report of one send (the "Delivery report" button of a sent email): who failed,
 * was skipped, bounced or complained, and why, a page at a time from tasks/<id>/recipients/
 * (keyset: "Show more" asks for the rows after the last one shown), filtered by kind, with the
 * same rows as CSV from recipients.csv. */
import { call, counted, el, fill, format, gettext, localTime, ngettext, node, row, taskUrl } from "./shared.js";

const PAGE_SIZE = 100;
const KIND_LABELS = {
  failed: gettext("Failed"), skipped: gettext("Skipped"), bounced: gettext("Bounced"), complained: gettext("Complained"),
};
// The counts line: "3 failed · 0 skipped · …", one plural text per kind so that each agrees
// with its own number (the same texts as the history's line).
const KIND_COUNTS = {
  failed: (n) => ngettext("%(count)s failed", "%(count)s failed", n),
  skipped: (n) => ngettext("%(count)s skipped", "%(count)s skipped", n),
  bounced: (n) => ngettext("%(count)s bounced", "%(count)s bounced", n),
  complained: (n) => ngettext("%(count)s complained", "%(count)s complained", n),
};
let current = null; // the send shown
let next = null; // the cursor of the next page, or null at the end

export function openDeliveryReport(task) {
  current = task;
  el("delivery-title").textContent = format(gettext("Delivery report: “%(subject)s”"), { subject: task.subject });
  el("delivery-kind").value = "";
  el("delivery").showModal();
  load(true);
}

export function initDeliveryReport() {
  el("delivery-kind").addEventListener("change", () => load(true));
  el("delivery-more").addEventListener("click", () => load(false));
}

async function load(fromStart) {
  const kind = el("delivery-kind").value;
  const query = new URLSearchParams({ limit: PAGE_SIZE, kind: kind });
  if (!fromStart && next) query.set("after", next);
  el("delivery-csv").href = taskUrl(current.task_id, "recipients.csv") + (kind ? "?kind=" + kind : "");
  el("delivery-error").hidden = true;
  try {
    const page = await call("GET", taskUrl(current.task_id, "recipients/") + "?" + query);
    next = page.next;
    showCounts(page.counts);
    const rows = page.recipients.map(recipientRow);
    if (fromStart) fill("delivery-table", rows);
    else el("delivery-table").querySelector("tbody").append(...rows);
    el("delivery-more").hidden = !next;
  } catch (error) {
    el("delivery-error").textContent = error.message;
    el("delivery-error").hidden = false;
  }
}

function showCounts(counts) {
  el("delivery-counts").textContent = Object.keys(KIND_COUNTS)
    .map((kind) => counted(KIND_COUNTS[kind](counts[kind]), counts[kind]))
    .join(" · ");
}

function recipientRow(recipient) {
  const kind = node("span", { className: "bulk-email-kind", textContent: KIND_LABELS[recipient.kind] });
  kind.dataset.kind = recipient.kind;
  return row([kind, recipient.name, recipient.email, recipient.code, recipient.why,
    localTime(recipient.at)]);
}

/* The history panels: "Sent emails" (View, and a resend to the recipients a send could not
 * reach) and the email task history report (the table here, the CSV link in the template). */
import {
  buttons, call, config, confirmDialog, duration, fill, isFinal, localTime, node, people, refresh,
  row, say, states, taskUrl, view,
} from "./shared.js";
import { track } from "./progress.js";
import { openDeliveryReport } from "./delivery.js";

export function render(tasks) {
  // A send is resent once; its resend's own failures are resent from the resend.
  const resent = new Set(tasks.map((t) => t.resend_of));
  fill("sent", tasks.filter(wasSent).map((t) => row([
    localTime(t.finished_at || t.created), t.subject, t.groups.join(", "), t.author, result(t),
    buttons(t, [["View", view], ["Delivery report", openDeliveryReport]]
      .concat(t.failed && !resent.has(t.task_id) ? [["Resend to failed recipients", resend]] : [])),
  ], { "data-task-id": t.task_id })));
  fill("report", tasks.map((t) => row([
    t.task_id, t.requester, localTime(t.created), t.state_label, duration(t.duration_seconds),
    t.total, t.sent, t.failed, t.skipped, t.suppressed, t.bounced, t.complained,
    rate(t.bounce_rate), rate(t.complaint_rate), changes(t),
  ])));
}

/** A rate (0 to 1) as a percentage; empty before anything was sent. */
export function rate(value) {
  if (value === null || value === undefined) return "";
  return (value * 100).toLocaleString(undefined, { maximumFractionDigits: 2 }) + " %";
}

/** Sent, failed, skipped, then what came back since, with a warning per rate that is past its
 * threshold (the thresholds come from the page's config). */
function result(task) {
  const box = node("div", { className: "bulk-email-result" });
  let text = task.sent + " sent, " + task.failed + " failed, " + task.skipped + " skipped";
  if (task.suppressed) text += ", " + task.suppressed + " skipped: suppressed";
  if (task.state !== states.names.SUCCESS) {
    text += " (" + task.state_label + (task.revoked_by ? " by " + task.revoked_by : "") + ")";
  }
  box.append(node("span", { textContent: text }));
  box.append(node("span", { className: "bulk-email-feedback", textContent:
    task.bounced + " bounced" + ratePart(task.bounce_rate) + ", " +
    task.complained + " complained" + ratePart(task.complaint_rate) }));
  if (task.bounce_warning) box.append(warning("bounce", task.bounce_rate, config.warnings.bounceRate));
  if (task.complaint_warning) {
    box.append(warning("complaint", task.complaint_rate, config.warnings.complaintRate));
  }
  return box;
}

const ratePart = (value) => (value === null || value === undefined ? "" : " (" + rate(value) + ")");

function warning(kind, value, threshold) {
  return node("span", { className: "bulk-email-warning", role: "note", textContent:
    "High " + kind + " rate: " + rate(value) + ", above " + rate(threshold) +
    (kind === "bounce" ? ". Check the list's addresses before sending again."
      : ". Recipients mark this mail as spam: mailbox providers may block the site.") });
}

/** Who changed the send after its requester, from its audit trail: the last edit, the revocation. */
export function changes(task) {
  const done = [];
  if (task.edited_by) done.push("Edited by " + task.edited_by + ", " + localTime(task.edited_at));
  if (task.revoked_by) done.push("Revoked by " + task.revoked_by + ", " + localTime(task.revoked_at));
  return done.join("; ");
}

/** Ended, and not a scheduled email deleted before its time. */
function wasSent(task) {
  return isFinal(task) && (task.state !== states.names.REVOKED || task.started_at);
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

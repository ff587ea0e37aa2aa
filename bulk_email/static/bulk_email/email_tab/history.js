/* The history panels: "Sent emails" (View, and a resend to the recipients a send could not
 * reach) and the email task history report (the table here, the CSV link in the template). */
import {
  buttons, call, config, confirmDialog, counted, countsLine, duration, fill, format, gettext, isFinal, language,
  localTime, ngettext, node, number, people, refresh, row, say, states, taskUrl, view,
} from "./shared.js";
import { sentFailedSkipped, track } from "./progress.js";
import { openDeliveryReport } from "./delivery.js";

export function render(tasks) {
  // A send is resent once; its resend's own failures are resent from the resend.
  const resent = new Set(tasks.map((t) => t.resend_of));
  fill("sent", tasks.filter(wasSent).map((t) => row([
    localTime(t.finished_at || t.created), t.subject, t.groups.join(", "), t.author, result(t),
    buttons(t, [[gettext("View"), view], [gettext("Delivery report"), openDeliveryReport]]
      .concat(t.failed && !resent.has(t.task_id) ? [[gettext("Resend to failed recipients"), resend]] : [])),
  ], { "data-task-id": t.task_id })));
  fill("report", tasks.map((t) => row([
    t.task_id, t.requester, localTime(t.created), t.state_label, duration(t.duration_seconds),
    ...[t.total, t.sent, t.failed, t.skipped, t.suppressed, t.bounced, t.complained].map(count),
    rate(t.bounce_rate), rate(t.complaint_rate), changes(t),
  ])));
}

/** A rate (0 to 1) as a percentage; empty before anything was sent. */
export function rate(value) {
  if (value === null || value === undefined) return "";
  return new Intl.NumberFormat(language, { style: "percent", maximumFractionDigits: 2 }).format(value);
}

const count = (n) => (n === null || n === undefined ? "" : number(n));

/** Sent, failed, skipped, then what came back since, with a warning per rate that is past its
 * threshold (the thresholds come from the page's config). */
function result(task) {
  const box = node("div", { className: "bulk-email-result" });
  const suppressed = task.suppressed
    ? [counted(ngettext("%(count)s skipped: suppressed", "%(count)s skipped: suppressed", task.suppressed), task.suppressed)]
    : [];
  let text = sentFailedSkipped(task, suppressed);
  if (task.state !== states.names.SUCCESS) {
    const state = task.revoked_by
      ? format(gettext("%(state)s by %(actor)s"), { state: task.state_label, actor: task.revoked_by })
      : task.state_label;
    text = format(gettext("%(counts)s (%(state)s)"), { counts: text, state });
  }
  box.append(node("span", { textContent: text }));
  box.append(node("span", { className: "bulk-email-feedback", textContent: countsLine([
    counted(ngettext("%(count)s bounced", "%(count)s bounced", task.bounced), task.bounced) + ratePart(task.bounce_rate),
    counted(ngettext("%(count)s complained", "%(count)s complained", task.complained), task.complained) +
      ratePart(task.complaint_rate),
  ]) }));
  if (task.bounce_warning) box.append(warning("bounce", task.bounce_rate, config.warnings.bounceRate));
  if (task.complaint_warning) {
    box.append(warning("complaint", task.complaint_rate, config.warnings.complaintRate));
  }
  return box;
}

const ratePart = (value) => (value === null || value === undefined ? "" : " (" + rate(value) + ")");

function warning(kind, value, threshold) {
  const text = kind === "bounce"
    ? gettext("High bounce rate: %(rate)s, above %(threshold)s. Check the list's addresses before sending again.")
    : gettext("High complaint rate: %(rate)s, above %(threshold)s. Recipients mark this mail as spam: mailbox providers may block the site.");
  return node("span", { className: "bulk-email-warning", role: "note",
    textContent: format(text, { rate: rate(value), threshold: rate(threshold) }) });
}

/** Who changed the send after its requester, from its audit trail: the last edit, the revocation. */
export function changes(task) {
  const done = [];
  if (task.edited_by) {
    done.push(format(gettext("Edited by %(actor)s, %(when)s"), { actor: task.edited_by, when: localTime(task.edited_at) }));
  }
  if (task.revoked_by) {
    done.push(format(gettext("Revoked by %(actor)s, %(when)s"), { actor: task.revoked_by, when: localTime(task.revoked_at) }));
  }
  return done.join("; ");
}

/** Ended, and not a scheduled email deleted before its time. */
function wasSent(task) {
  return isFinal(task) && (task.state !== states.names.REVOKED || task.started_at);
}

async function resend(task) {
  const ok = await confirmDialog(gettext("Resend to failed recipients?"),
    format(gettext("Send “%(subject)s” again to the %(people)s it could not reach."),
      { subject: task.subject, people: people(task.failed) }), gettext("Resend"));
  if (!ok) return;
  try {
    track(await call("POST", taskUrl(task.task_id, "resend/")));
    say(format(gettext("Resending “%(subject)s” to %(people)s."), { subject: task.subject, people: people(task.failed) }));
  } catch (error) {
    say(error.message);
  }
  await refresh();
}

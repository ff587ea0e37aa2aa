/* The history panels: "Sent emails" (View, and a resend to the recipients a send could not
 * reach) and the email task history report (the table here, the CSV link in the template). */
import {
  buttons, call, confirmDialog, duration, fill, isFinal, localTime, people, refresh, row, say,
  states, taskUrl, view,
} from "./shared.js";
import { track } from "./progress.js";

export function render(tasks) {
  // A send is resent once; its resend's own failures are resent from the resend.
  const resent = new Set(tasks.map((t) => t.resend_of));
  fill("sent", tasks.filter(wasSent).map((t) => row([
    localTime(t.finished_at || t.created), t.subject, t.groups.join(", "), t.author, result(t),
    buttons(t, [["View", view]].concat(t.failed && !resent.has(t.task_id)
      ? [["Resend to failed recipients", resend]] : [])),
  ])));
  fill("report", tasks.map((t) => row([
    t.task_id, t.requester, localTime(t.created), t.state_label, duration(t.duration_seconds),
    t.total, t.sent, t.failed, t.skipped, changes(t),
  ])));
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

function result(task) {
  const text = task.sent + " sent, " + task.failed + " failed";
  if (task.state === states.names.SUCCESS) return text;
  const by = task.revoked_by ? " by " + task.revoked_by : "";
  return text + " (" + task.state_label + by + ")";
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

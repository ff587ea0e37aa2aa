/* The history panels: "Sent emails" (View, and a resend to the recipients a send could not
 * reach) and the email task history report (the table here, the CSV link in the template). */
import {
  buttons, call, confirmDialog, duration, fill, isFinal, localTime, people, refresh, row, say,
  states, taskUrl, view,
} from "./shared.js";
import { track } from "./progress.js";

export function render(tasks) {
  fill("sent", tasks.filter(wasSent).map((t) => row([
    localTime(t.finished_at || t.created), t.subject, t.groups.join(", "), t.author, result(t),
    buttons(t, [["View", view]].concat(t.failed ? [["Resend to failed recipients", resend]] : [])),
  ])));
  fill("report", tasks.map((t) => row([
    t.task_id, t.requester, localTime(t.created), t.state_label, duration(t.duration_seconds),
    t.total, t.sent, t.failed, t.skipped,
  ])));
}

/** Ended, and not a scheduled email deleted before its time. */
function wasSent(task) {
  return isFinal(task) && (task.state !== states.names.REVOKED || task.started_at);
}

function result(task) {
  const text = task.sent + " sent, " + task.failed + " failed";
  return task.state === states.names.SUCCESS ? text : text + " (" + task.state_label + ")";
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

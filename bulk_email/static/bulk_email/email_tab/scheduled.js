/* The "Scheduled emails" panel: when, to whom, what; View, Edit (in the compose form) and
 * Delete. */
import {
  buttons, call, confirmDialog, fill, localTime, refresh, row, say, states, taskUrl, view,
} from "./shared.js";
import { forgetEdit, startEdit } from "./compose.js";

export function render(tasks) {
  fill("scheduled", tasks.filter((t) => t.state === states.names.SCHEDULED).map((t) => row([
    localTime(t.send_at), t.groups.join(", "), t.subject,
    t.edited_by ? t.author + " (edited by " + t.edited_by + ")" : t.author,
    buttons(t, [["View", view], ["Edit", startEdit], ["Delete", remove]]),
  ])));
}

async function remove(task) {
  const ok = await confirmDialog("Delete the scheduled email?",
    "“" + task.subject + "” will not be sent. This cannot be undone.", "Delete");
  if (!ok) return;
  try {
    await call("DELETE", taskUrl(task.task_id));
    forgetEdit(task.task_id);
    say("Deleted: “" + task.subject + "” will not be sent.");
  } catch (error) {
    say(error.message);
  }
  await refresh();
}

/* The "Scheduled emails" panel: when, to whom, what; View, Edit (in the compose form) and
 * Delete. */
import {
  buttons, call, confirmDialog, fill, format, gettext, localTime, refresh, row, say, states, taskUrl, view,
} from "./shared.js";
import { forgetEdit, startEdit } from "./compose.js";

export function render(tasks) {
  fill("scheduled", tasks.filter((t) => t.state === states.names.SCHEDULED).map((t) => row([
    localTime(t.send_at), t.groups.join(", "), t.subject,
    t.edited_by ? format(gettext("%(author)s (edited by %(editor)s)"), { author: t.author, editor: t.edited_by }) : t.author,
    buttons(t, [[gettext("View"), view], [gettext("Edit"), startEdit], [gettext("Delete"), remove]]),
  ])));
}

async function remove(task) {
  const ok = await confirmDialog(gettext("Delete the scheduled email?"),
    format(gettext("“%(subject)s” will not be sent. This cannot be undone."), { subject: task.subject }),
    gettext("Delete"));
  if (!ok) return;
  try {
    await call("DELETE", taskUrl(task.task_id));
    forgetEdit(task.task_id);
    say(format(gettext("Deleted: “%(subject)s” will not be sent."), { subject: task.subject }));
  } catch (error) {
    say(error.message);
  }
  await refresh();
}

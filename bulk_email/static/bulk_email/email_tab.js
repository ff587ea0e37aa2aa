/* The instructor dashboard's Email tab: compose, preview, send or schedule, watch progress,
 * manage scheduled emails, review history. Plain JS modules, no build step; one file per panel
 * in email_tab/, what they share in email_tab/shared.js. They talk to the JSON endpoints of
 * bulk_email/email_tab.py (docs/email_tab.md); every text from the server is put in the page
 * with textContent, never as HTML; messages are shown in sandboxed iframes. This file wires
 * the panels and loads the task tables. */
import * as compose from "./email_tab/compose.js";
import { initDeliveryReport } from "./email_tab/delivery.js";
import * as history from "./email_tab/history.js";
import * as progress from "./email_tab/progress.js";
import * as scheduled from "./email_tab/scheduled.js";
import { call, config, initViewer, root, say, setRefresh, urls } from "./email_tab/shared.js";

async function refresh() {
  try {
    const listed = await call("GET", urls.tasks);
    scheduled.render(listed.tasks);
    history.render(listed.tasks);
    progress.adopt(listed.tasks);
  } catch (error) {
    say(error.message);
  }
}

/** Bounces and complaints keep arriving after a send ends: the tables are asked for again
 * every historyRefreshSeconds while the page is in view, and at once when it comes back. */
function keepHistoryFresh() {
  setInterval(() => {
    if (document.visibilityState === "visible") refresh();
  }, config.historyRefreshSeconds * 1000);
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible") refresh();
  });
}

if (root) {
  setRefresh(refresh);
  initViewer();
  initDeliveryReport();
  compose.init();
  refresh();
  keepHistoryFresh();
}

/* The groups' counts, which a worker counts (a million learners take a few seconds): the page
 * shows the groups at once and this fills their counts in when they arrive. While counting,
 * the groups and count endpoints answer 202 {"pending": true}; they are asked again shortly
 * (each answer costs the server a cache read). docs/performance.md. */
import { call, failure, gettext, people, root, urls } from "./shared.js";

const FIRST_POLLS_MS = 250; // for the first five seconds, when counts usually arrive
const LATER_POLLS_MS = 1000;
const GIVE_UP_MS = 60000;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

/** The endpoint's answer once it is counted (asked again while it says pending). */
export async function whenCounted(method, url, body) {
  const started = Date.now();
  for (;;) {
    const data = await call(method, url, body);
    if (!data.pending) return data;
    const waited = Date.now() - started;
    if (waited > GIVE_UP_MS) {
      throw failure(gettext("Counting the recipients takes longer than usual. Try again in a minute."), {});
    }
    await sleep(waited < 5000 ? FIRST_POLLS_MS : LATER_POLLS_MS);
  }
}

function countSpan(key) {
  return root.querySelector(".bulk-email-count[data-key='" + CSS.escape(key) + "']");
}

/** Fill in the counts the page was rendered without. */
export async function fillGroupCounts() {
  const pending = root.querySelectorAll(".bulk-email-count[data-pending]");
  if (!pending.length) return;
  try {
    const found = await whenCounted("GET", urls.groups);
    found.groups.forEach((group) => {
      const span = countSpan(group.key);
      if (!span) return;
      span.textContent = "(" + people(group.count) + ")";
      delete span.dataset.pending;
    });
  } catch (error) {
    pending.forEach((span) => { span.textContent = "(" + gettext("not counted: reload the page") + ")"; });
  }
}

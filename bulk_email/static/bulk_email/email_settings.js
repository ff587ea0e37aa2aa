/* The learner dashboard's Email Settings dialogs: the link opens its dialog, the checkbox is
   saved at once. Without this script the link reloads the page with the dialog open and the
   form posts (Save); everything here is an improvement on that. */
(function () {
  "use strict";

  function readAnswer(response) {
    return response.json().catch(function () { return {}; }).then(function (data) {
      if (!response.ok) {
        throw new Error(data.message || "The server answered " + response.status + ".");
      }
      return data;
    });
  }

  function postChoice(form, receive) {
    return fetch(form.action, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Accept": "application/json",
        "Content-Type": "application/json",
        "X-CSRFToken": form.elements.csrfmiddlewaretoken.value,
      },
      body: JSON.stringify({ receive_email: receive }),
    }).then(readAnswer, function () {
      throw new Error("the connection failed; try again.");
    });
  }

  function setUp(dialog) {
    var form = dialog.querySelector("form");
    var checkbox = form.elements.receive_email;
    var status = dialog.querySelector("[role=status]");
    var summary = document.querySelector('[data-bulk-email-summary="' + dialog.id + '"]');
    // One request at a time, in click order, so the last click is what is stored.
    var queue = Promise.resolve();
    form.querySelector(".bulk-email-save").hidden = true;
    checkbox.addEventListener("change", function () {
      var receive = checkbox.checked;
      status.classList.remove("error");
      status.textContent = "Saving…";
      queue = queue.then(function () { return postChoice(form, receive); }).then(
        function (data) {
          status.textContent = data.message;
          if (summary) summary.textContent = data.receive_email ? "on" : "off";
        },
        function (error) {
          checkbox.checked = !receive;
          status.classList.add("error");
          status.textContent = "Not saved: " + error.message;
        }
      );
    });
    dialog.addEventListener("close", function () {
      status.textContent = "";
      // Opened from an email's link: a reload should not open it again.
      if (new URLSearchParams(location.search).has("email_settings")) {
        history.replaceState(null, "", location.pathname);
      }
    });
  }

  function wireLink(link) {
    var dialog = document.getElementById(link.getAttribute("aria-controls"));
    link.addEventListener("click", function (event) {
      event.preventDefault();
      dialog.showModal();
    });
  }

  document.querySelectorAll("dialog[data-bulk-email-settings]").forEach(setUp);
  document.querySelectorAll("a[data-bulk-email-dialog]").forEach(wireLink);
  // Rendered open by the server (the email's "Email settings" link): make it modal, so that
  // focus stays inside and Escape closes it.
  var opened = document.querySelector("dialog[data-bulk-email-settings][open]");
  if (opened) {
    opened.close();
    opened.showModal();
  }
})();

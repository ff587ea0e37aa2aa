/* The learner dashboard's Email Settings dialogs: the link opens its dialog, the checkbox is
   saved at once. Without this script the link reloads the page with the dialog open and the
   form posts (Save); everything here is an improvement on that. Its words come from Django's
   JavaScript catalog ({% url 'bulk_email:jsi18n' %}), loaded as a script file before this one
   (no inline script under the site's CSP); without it they stay English. */
(function () {
  "use strict";

  var gettext = window.gettext || function (text) { return text; };
  var pgettext = window.pgettext || function (context, text) { return text; };
  var interpolate = window.interpolate || function (format, values, named) {
    return format.replace(/%\((\w+)\)s/g, function (match, name) { return String(values[name]); });
  };

  function readAnswer(response) {
    return response.json().catch(function () { return {}; }).then(function (data) {
      if (!response.ok) {
        throw new Error(data.message || interpolate(
          gettext("The server answered %(status)s."), { status: response.status }, true));
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
      throw new Error(gettext("the connection failed; try again."));
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
      status.textContent = gettext("Saving…");
      queue = queue.then(function () { return postChoice(form, receive); }).then(
        function (data) {
          status.textContent = data.message;
          if (summary) {
            summary.textContent = data.receive_email
              ? pgettext("course email", "on") : pgettext("course email", "off");
          }
        },
        function (error) {
          checkbox.checked = !receive;
          status.classList.add("error");
          status.textContent = interpolate(
            gettext("Not saved: %(reason)s"), { reason: error.message }, true);
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

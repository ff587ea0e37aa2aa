/* CKEditor 4 under a Content-Security-Policy without 'unsafe-inline' in script-src.
 *
 * CKEditor 4 wires its toolbar, drop-down panels and dialogs with inline event handler
 * attributes (onclick="CKEDITOR.tools.callFunction(9,this);return false;") and starts its
 * editing frame with an inline <script> that calls CKEDITOR.tools.callFunction(N,window).
 * The policy blocks both, as it should block any inline script; and a handler attribute the
 * browser meets is reported as a violation even when something else does its work. So the
 * HTML of CKEditor's own interface is changed on its way into the page, where CKEditor turns
 * it into elements (element.setHtml, which createFromHtml and appendHtml use, and
 * document.write for its frames): each on* attribute becomes data-cke-csp-on*, and the
 * frame's start-up script is taken out. Every such handler is a call of a function CKEditor
 * registered by number, with literal arguments: this file reads them as data and makes the
 * same calls from its own listeners. It never evaluates text; anything else is left alone.
 *
 * The message being edited is never rewritten: CKEditor keeps its on* attributes renamed
 * (data-cke-pa-on*) already, and the server's sanitizer drops them.
 *
 * A classic script loaded right after ckeditor.js (ComposeForm.Media), before any editor is
 * created. */
(function () {
  "use strict";

  if (!window.CKEDITOR) return;

  var EVENTS = [
    "click", "dblclick", "keydown", "keyup", "keypress", "focus", "blur", "mousedown",
    "mouseup", "mouseover", "mouseout", "dragstart", "contextmenu",
  ];
  var NOT_BUBBLING = { focus: true, blur: true };
  var CALL = /^(return\s+)?(?:window\.parent\.)?CKEDITOR\.tools\.callFunction\((.*)\)$/;
  var ARGUMENT = /\s*(?:(-?\d+(?:\.\d+)?)|'((?:[^'\\]|\\.)*)'|(this|event|window|null|true|false))\s*(?:,|$)/y;

  /** The statements of a handler, split at semicolons outside quotes. */
  function statements(code) {
    var parts = [];
    var current = "";
    var quote = null;
    for (var i = 0; i < code.length; i++) {
      var c = code[i];
      if (quote) {
        current += c;
        if (c === "\\" && i + 1 < code.length) current += code[++i];
        else if (c === quote) quote = null;
      } else if (c === "'" || c === '"') {
        quote = c;
        current += c;
      } else if (c === ";") {
        parts.push(current.trim());
        current = "";
      } else {
        current += c;
      }
    }
    parts.push(current.trim());
    return parts.filter(Boolean);
  }

  /** The literal arguments of a call; null when one is not a literal this file knows. */
  function parseArguments(text, element, event, win) {
    var values = [];
    var names = { this: element, event: event, window: win, null: null, true: true, false: false };
    ARGUMENT.lastIndex = 0;
    text = text.trim();
    while (ARGUMENT.lastIndex < text.length) {
      var match = ARGUMENT.exec(text);
      if (!match) return null;
      if (match[1] !== undefined) values.push(Number(match[1]));
      else if (match[2] !== undefined) values.push(match[2].replace(/\\(.)/g, "$1"));
      else values.push(names[match[3]]);
    }
    return values;
  }

  /** Run one handler's text as CKEditor meant it; false when it asked to cancel the event. */
  function runHandler(code, element, event, win) {
    var list = statements(code);
    for (var i = 0; i < list.length; i++) {
      var statement = list[i];
      if (statement === "return false") return false;
      var call = CALL.exec(statement);
      var args = call && parseArguments(call[2], element, event, win);
      if (!args) {
        // Never evaluated; said, so that a plugin needing more than this file reads is found.
        window.console.warn("CKEditor handler not run under this page's CSP: " + statement);
        continue;
      }
      var result = window.CKEDITOR.tools.callFunction.apply(window.CKEDITOR.tools, args);
      if (call[1]) return result;
    }
    return undefined;
  }

  var STORED = "data-cke-csp-on";

  /** One capturing listener per event type on a document CKEditor uses: it runs the
   * handlers the event would have run, innermost first, as the browser would have. */
  function onEvent(event) {
    var attribute = STORED + event.type;
    var node = event.target && event.target.nodeType === 3 ? event.target.parentNode : event.target;
    var win = (node && node.ownerDocument && node.ownerDocument.defaultView) || window;
    for (; node && node.nodeType === 1; node = NOT_BUBBLING[event.type] ? null : node.parentNode) {
      if (!node.hasAttribute(attribute)) continue;
      if (runHandler(node.getAttribute(attribute), node, event, win) === false) event.preventDefault();
      if (event.cancelBubble) break;
    }
  }

  function listen(doc) {
    if (doc.__ckeditorCspListening) return;
    doc.__ckeditorCspListening = true;
    EVENTS.concat(["load"]).forEach(function (type) {
      doc.addEventListener(type, onEvent, true);
    });
  }

  var HANDLER = /(\s)on([a-z]+)(\s*=\s*["'])/gi;
  var STARTUP_SCRIPT = /<script id="cke_actscrpt"[^>]*>([\s\S]*?)<\/script>/;
  var OTHER_SCRIPTS = /<script id="cke_[a-z]+"[^>]*>[\s\S]*?<\/script>/g;

  /** CKEditor's interface HTML with its handlers stored where the browser does not run them. */
  function storeHandlers(html) {
    return String(html).replace(HANDLER, "$1" + STORED + "$2$3");
  }

  function isEditingDocument(doc) {
    return Boolean(doc && doc.__ckeditorEditing);
  }

  var element = window.CKEDITOR.dom.element.prototype;
  var setHtml = element.setHtml;
  element.setHtml = function (html) {
    var editing = this instanceof window.CKEDITOR.editable || isEditingDocument(this.$.ownerDocument);
    return setHtml.call(this, editing ? html : storeHandlers(html));
  };

  /** A frame CKEditor writes: its editing frame (the message; only the start-up script is
   * taken out, and run from here once the frame is parsed) or a panel (its interface). */
  var write = window.CKEDITOR.dom.document.prototype.write;
  window.CKEDITOR.dom.document.prototype.write = function (html) {
    var doc = this.$;
    var startup = STARTUP_SCRIPT.exec(html);
    doc.__ckeditorEditing = Boolean(startup);
    html = startup ? html.replace(OTHER_SCRIPTS, "") : storeHandlers(html);
    write.call(this, html);
    doc.__ckeditorEditing = Boolean(startup);
    listen(doc);
    var loaded = /callFunction\((\d+),window\)/.exec(startup ? startup[1] : "");
    afterParsing(doc, function () {
      if (loaded) window.CKEDITOR.tools.callFunction(Number(loaded[1]), doc.defaultView);
      var onload = doc.body && doc.body.getAttribute(STORED + "load");
      if (onload) runHandler(onload, doc.body, null, doc.defaultView);
    });
  };

  function afterParsing(doc, run) {
    if (doc.readyState === "loading") doc.addEventListener("DOMContentLoaded", run, { once: true });
    else setTimeout(run, 0);
  }

  listen(document);
})();

// Greenroom: small progressive enhancements. Every page works without this file.
(function () {
  "use strict";
  // "/" focuses the header search box (unless typing in a field already).
  document.addEventListener("keydown", function (ev) {
    if (ev.key !== "/" || ev.ctrlKey || ev.metaKey || ev.altKey) return;
    var t = ev.target;
    if (t && (t.tagName === "INPUT" || t.tagName === "TEXTAREA" || t.tagName === "SELECT" || t.isContentEditable)) return;
    var box = document.getElementById("top-q");
    if (box) { ev.preventDefault(); box.focus(); box.select(); }
  });

  document.addEventListener("DOMContentLoaded", function () {
    // Filters and graph controls apply as soon as a choice changes.
    document.querySelectorAll("form.filters, form.graph-controls").forEach(function (form) {
      form.addEventListener("change", function (ev) {
        if (ev.target && ev.target.type !== "search" && ev.target.type !== "text") form.requestSubmit();
      });
    });

    // On a phone the filter panel starts folded unless a filter is on.
    var box = document.querySelector("details.filters-box");
    if (box && window.innerWidth < 900 && !/\(\d+ active\)/.test(box.querySelector("summary").textContent)) box.open = false;

    // Interactive OpenAPI viewer when the vendored Swagger UI is installed.
    var el = document.getElementById("swagger-ui");
    if (el && window.SwaggerUIBundle) {
      window.SwaggerUIBundle({ url: el.getAttribute("data-url"), domNode: el, deepLinking: false,
        validatorUrl: null, tryItOutEnabled: false });
      el.setAttribute("data-ready", "true");
    } else if (el) {
      var raw = document.querySelector("details.raw-def");
      if (raw) raw.open = true;
    }
  });
})();

/* docs & search */
// Header search box: suggestions as you type, from /api/search/suggest (session cookie).
(function () {
  "use strict";
  var LABELS = { "software-catalog": "Catalog", "techdocs": "Docs", "templates": "Template" };
  function safeHref(loc) {
    return typeof loc === "string" && ((loc.charAt(0) === "/" && loc.charAt(1) !== "/") || /^https?:\/\//i.test(loc)) ? loc : null;
  }
  document.addEventListener("DOMContentLoaded", function () {
    var box = document.getElementById("top-q");
    if (!box || !window.fetch) return;
    var form = box.form;
    var list = document.createElement("ul");
    list.id = "top-q-suggest";
    list.className = "suggest";
    list.setAttribute("role", "listbox");
    list.setAttribute("aria-label", "Suggestions");
    list.hidden = true;
    form.appendChild(list);
    box.setAttribute("role", "combobox");
    box.setAttribute("aria-autocomplete", "list");
    box.setAttribute("aria-controls", list.id);
    box.setAttribute("aria-expanded", "false");
    var timer = null, seq = 0, selected = -1;

    function close() { list.hidden = true; selected = -1; box.setAttribute("aria-expanded", "false"); box.removeAttribute("aria-activedescendant"); }
    function select(i) {
      var items = list.querySelectorAll("li");
      if (!items.length) return;
      selected = (i + items.length) % items.length;
      items.forEach(function (li, n) { li.setAttribute("aria-selected", n === selected ? "true" : "false"); });
      box.setAttribute("aria-activedescendant", items[selected].id);
      items[selected].scrollIntoView({ block: "nearest" });
    }
    function item(id, href, titleHtml, label, sub) {
      var li = document.createElement("li");
      li.id = id;
      li.setAttribute("role", "option");
      var a = document.createElement("a");
      a.href = href;
      a.tabIndex = -1;
      var t = document.createElement("span");
      t.className = "s-title";
      // The API returns titles HTML-escaped with <mark> around matches: safe to insert.
      t.innerHTML = titleHtml;
      a.appendChild(t);
      if (sub) { var u = document.createElement("span"); u.className = "s-sub"; u.textContent = sub; t.appendChild(u); }
      if (label) { var b = document.createElement("span"); b.className = "badge"; b.textContent = label; a.appendChild(b); }
      li.appendChild(a);
      return li;
    }
    function esc(s) { var d = document.createElement("div"); d.textContent = s; return d.innerHTML; }
    function show(term, results) {
      list.textContent = "";
      var docs = 0;
      results.forEach(function (r, i) {
        var href = safeHref(r.document && r.document.location);
        if (!href) return;
        // Every section of a service's docs mentions the service: a few docs hits are enough here.
        if (r.type === "techdocs" && ++docs > 3) return;
        var hl = r.highlight && r.highlight.fields && r.highlight.fields.title;
        var d = r.document, sub = r.type === "techdocs" && d.entityTitle && d.entityTitle !== d.title ? d.entityTitle : "";
        list.appendChild(item("top-q-s" + i, href, hl || esc(d.title || href), LABELS[r.type] || r.type, sub));
      });
      var all = item("top-q-all", "/search?q=" + encodeURIComponent(term), "All results for “" + esc(term) + "”", "");
      all.firstChild.classList.add("s-all");
      list.appendChild(all);
      list.hidden = false;
      selected = -1;
      box.setAttribute("aria-expanded", "true");
    }
    function ask() {
      var term = box.value.trim();
      if (term.length < 2) { close(); return; }
      var mine = ++seq;
      fetch("/api/search/suggest?limit=12&term=" + encodeURIComponent(term), { credentials: "same-origin", headers: { Accept: "application/json" } })
        .then(function (res) { return res.ok ? res.json() : { results: [] }; })
        .then(function (body) { if (mine === seq && box.value.trim() === term) show(term, body.results || []); })
        .catch(function () { /* suggestions are optional: the form still searches */ });
    }
    box.addEventListener("input", function () { clearTimeout(timer); timer = setTimeout(ask, 120); });
    box.addEventListener("keydown", function (ev) {
      if (list.hidden) return;
      if (ev.key === "ArrowDown") { ev.preventDefault(); select(selected + 1); }
      else if (ev.key === "ArrowUp") { ev.preventDefault(); select(selected - 1); }
      else if (ev.key === "Escape") { close(); }
      else if (ev.key === "Enter" && selected >= 0) {
        ev.preventDefault();
        window.location.href = list.querySelectorAll("li")[selected].firstChild.href;
      }
    });
    list.addEventListener("mousedown", function (ev) { ev.preventDefault(); });  // keep focus: the click lands
    box.addEventListener("blur", function () { setTimeout(close, 150); });
    box.addEventListener("focus", function () { if (list.childElementCount && box.value.trim().length >= 2) { list.hidden = false; box.setAttribute("aria-expanded", "true"); } });
  });
})();

/* create pages */
// Task page: follow the task's event stream, append log lines and step states, reload when done.
(function () {
  "use strict";
  document.addEventListener("DOMContentLoaded", function () {
    var log = document.getElementById("task-log");
    if (!log || !log.dataset.task || log.dataset.done === "true" || !window.EventSource) return;
    var url = "/api/scaffolder/v2/tasks/" + encodeURIComponent(log.dataset.task) + "/eventstream" +
      (log.dataset.last ? "?after=" + encodeURIComponent(log.dataset.last) : "");
    var source = new EventSource(url);
    var status = document.getElementById("task-status");
    function onEvent(ev) {
      var e; try { e = JSON.parse(ev.data); } catch (err) { return; }
      var body = e.body || {};
      if (body.message && e.type !== "completion") {
        var line = document.createElement("span");
        line.className = "log-line";
        line.textContent = String(e.createdAt || "").slice(11, 19) + " " + (body.stepId ? "[" + body.stepId + "] " : "") + body.message + "\n";
        log.appendChild(line);
        log.scrollTop = log.scrollHeight;
      }
      if (body.stepId && body.status) {
        var li = document.querySelector('.task-steps li[data-step="' + String(body.stepId).replace(/["\\]/g, "") + '"]');
        if (li) { li.dataset.status = body.status; var b = li.querySelector(".step-status"); if (b) { b.textContent = body.status; b.className = "badge step-status status-" + body.status; } }
        if (status && status.dataset.status === "open") { status.dataset.status = "processing"; status.textContent = "processing"; status.className = "badge status-processing"; }
      }
      if (e.type === "completion") { source.close(); window.location.replace(window.location.pathname); }
    }
    ["log", "completion", "cancelled", "recovered"].forEach(function (t) { source.addEventListener(t, onEvent); });
    source.onerror = function () { if (source.readyState === EventSource.CLOSED) window.location.reload(); };
  });
})();

/* mergegate's case explorer. Reads the JSON block #mg-data; model output is hostile, so every piece of it
   reaches the page through textContent (el() below), never as HTML. */
(function () {
  "use strict";
  var D = JSON.parse(document.getElementById("mg-data").textContent);
  var L = D.labels, CASES = D.cases, SUITES = D.suites, PAGE = 500;
  var state = {shown: PAGE, key: null, dir: 1, open: {}};
  var $ = function (id) { return document.getElementById(id); };

  function el(tag, cls, text, attrs) {
    var e = document.createElement(tag);
    if (cls) { e.className = cls; }
    if (text !== undefined && text !== null) { e.textContent = String(text); }
    if (attrs) { Object.keys(attrs).forEach(function (k) { e.setAttribute(k, attrs[k]); }); }
    return e;
  }
  function add(parent) {
    for (var i = 1; i < arguments.length; i++) { if (arguments[i]) { parent.appendChild(arguments[i]); } }
    return parent;
  }
  function mark(p) {
    if (p === true) { return ["✓ pass", "pass"]; }
    if (p === false) { return ["✗ fail", "fail"]; }
    return ["–", "na"];
  }
  function num(v, digits) { return v === null || v === undefined ? "–" : Number(v).toFixed(digits); }
  function name(x) { return SUITES[x.s] + "::" + x.i; }
  function change(x) {
    if (x.bl.p === true && x.c.p === false) { return "regressed"; }
    if (x.bl.p === false && x.c.p === true) { return "improved"; }
    return "";
  }
  function why(side) {
    var out = [];
    if (side.e) { out.push("request failed: " + side.e); }
    side.ch.forEach(function (k) { if (k[3] === false) { out.push(k[0] + (k[4] ? ": " + k[4] : "")); } });
    return out.join("; ");
  }
  function haystack(x) {
    if (x._q === undefined) {
      var parts = [name(x), x.k, x.in, x.ref || "", x.c.t, x.bl.t, x.c.e || "", x.bl.e || "", x.r || ""];
      [x.c, x.bl].forEach(function (s) { s.ch.forEach(function (k) { parts.push(k[0], k[4]); }); });
      x._q = parts.join("\n").toLowerCase();
    }
    return x._q;
  }

  var STATUS = {
    all: function () { return true; },
    failed: function (x) { return x.c.p === false; },
    bfailed: function (x) { return x.bl.p === false; },
    regressed: function (x) { return change(x) === "regressed"; },
    improved: function (x) { return change(x) === "improved"; },
    changed: function (x) { return change(x) !== ""; },
    error: function (x) { return Boolean(x.c.e || x.bl.e); },
    truncated: function (x) { return x.c.f === "length" || x.bl.f === "length"; }
  };
  function value(id) { var e = $(id); return e ? e.value : ""; }
  function hasCheck(x, type) {
    return [x.c, x.bl].some(function (s) { return s.ch.some(function (k) { return k[0] === type; }); });
  }
  function selected() {
    var status = STATUS[value("f-status")] || STATUS.all, role = value("f-role"), suite = value("f-suite");
    var cat = value("f-cat"), check = value("f-check");
    var words = value("f-q").toLowerCase().split(/\s+/).filter(Boolean);
    var rows = CASES.filter(function (x) {
      return status(x) && (!role || x.r === role) && (!suite || String(x.s) === suite) && (!cat || x.k === cat) &&
        (!check || hasCheck(x, check)) && words.every(function (w) { return haystack(x).indexOf(w) >= 0; });
    });
    return sortRows(rows);
  }
  var RANK = function (p) { return p === false ? 0 : p === true ? 2 : 1; };
  var SORT = {
    id: function (x) { return name(x); }, cat: function (x) { return x.k; },
    c: function (x) { return RANK(x.c.p); }, bl: function (x) { return RANK(x.bl.p); },
    chg: function (x) { return change(x); }, why: function (x) { return why(x.c); }
  };
  function sortRows(rows) {
    if (!state.key) { return rows; }
    var f = SORT[state.key], d = state.dir;
    return rows.map(function (x, i) { return [f(x), i, x]; }).sort(function (a, b) {
      return a[0] < b[0] ? -d : a[0] > b[0] ? d : a[1] - b[1];
    }).map(function (t) { return t[2]; });
  }

  /* Word diff: longest common subsequence of tokens; long texts fall back to lines, very long ones to none. */
  function tokens(text, lines) { return lines ? text.split(/(?<=\n)/) : (text.match(/\s+|\w+|[^\s\w]/g) || []); }
  function lcsKeep(a, b) {
    var n = a.length, m = b.length, t = new Uint32Array((n + 1) * (m + 1)), i, j, w = m + 1;
    for (i = n - 1; i >= 0; i--) {
      for (j = m - 1; j >= 0; j--) {
        t[i * w + j] = a[i] === b[j] ? t[(i + 1) * w + j + 1] + 1 : Math.max(t[(i + 1) * w + j], t[i * w + j + 1]);
      }
    }
    var ka = new Uint8Array(n), kb = new Uint8Array(m);
    for (i = 0, j = 0; i < n && j < m;) {
      if (a[i] === b[j]) { ka[i++] = 1; kb[j++] = 1; } else if (t[(i + 1) * w + j] >= t[i * w + j + 1]) { i++; } else { j++; }
    }
    return [ka, kb];
  }
  function diff(a, b) {
    var lines = false, ta = tokens(a, false), tb = tokens(b, false);
    if (ta.length * tb.length > 2500000) { lines = true; ta = tokens(a, true); tb = tokens(b, true); }
    if (ta.length * tb.length > 2500000) { return null; }
    var keep = lcsKeep(ta, tb), words = function (t) { return t.filter(function (w) { return /\S/.test(w); }).length; };
    var common = ta.filter(function (w, i) { return keep[0][i] && /\S/.test(w); }).length;
    if (common * 3 < Math.min(words(ta), words(tb))) { return "apart"; }  // marking nearly every word says nothing
    return [[ta, keep[0]], [tb, keep[1]]];
  }
  function diffPre(parts, cls) {
    var pre = el("pre"), toks = parts[0], keep = parts[1], run = "", changed = false;
    function flush() {
      if (!run) { return; }
      pre.appendChild(changed ? el("mark", cls, run) : document.createTextNode(run));
      run = "";
    }
    for (var i = 0; i < toks.length; i++) {
      var c = !keep[i] && /\S/.test(toks[i]);
      if (c !== changed && /\S/.test(toks[i])) { flush(); changed = c; }
      run += toks[i];
    }
    flush();
    return pre;
  }

  function judgeBlock(k) {
    var x;
    try { x = JSON.parse(k[5]); } catch (e) { return null; }
    var who1 = {A: "candidate", B: "baseline", tie: "tie"}, who2 = {A: "baseline", B: "candidate", tie: "tie"};
    var box = el("div", "judge");
    add(box, el("strong", null, "Judge (" + k[0] + "), both orders"));
    var r = x.reasons || [];
    add(box, el("div", null, "Candidate shown first (as A): " + (who1[x.verdict_candidate_first] || "no verdict") +
      " is better" + (r[0] ? " — " + r[0] : "")));
    add(box, el("div", null, "Candidate shown second (as B): " + (who2[x.verdict_candidate_second] || "no verdict") +
      " is better" + (r[1] ? " — " + r[1] : "")));
    add(box, el("div", x.consistent ? "" : "warn", "Outcome for the candidate: " + x.outcome +
      (x.consistent ? " (both orders agree)" : " (the two orders disagree: counted as a tie)") + (x.escalated ? "; escalated to the strong judge" : "")));
    return box;
  }
  function checksTable(side) {
    if (!side.ch.length) { return el("p", "small", "No checks."); }
    var t = el("table", "checks"), cg = el("colgroup"), body = el("tbody");
    ["k", "s", "p", ""].forEach(function (c) { cg.appendChild(el("col", c)); });
    var head = el("tr");
    ["check", "score", "pass", "reason"].forEach(function (h) { head.appendChild(el("th", null, h, {scope: "col"})); });
    add(t, cg, add(el("thead"), head), body);
    side.ch.forEach(function (k) {
      var m = k[3] === null && k[2] === null ? ["– not run", "na"] : k[3] === null ? ["– score only", "na"] : mark(k[3]);
      var reason = el("td", null, k[4] || (k[3] === false ? "(no reason given)" : ""));
      if (k[5] && k[0] !== "pairwise") {
        var d = add(el("details"), el("summary", null, k[0] === "tool_call" ? "calls read from the answer" : "data"), el("pre", null, k[5]));
        reason.appendChild(d);
      }
      add(body, add(el("tr"), el("td", null, k[0] + (k[1] !== k[0] ? " (" + k[1] + ")" : "")), el("td", "num", num(k[2], 3)),
        el("td", m[1], m[0]), reason));
    });
    return t;
  }
  function sideMeta(s) {
    var bits = [];
    if (s.f) { bits.push("finish: " + s.f); }
    if (s.ms !== undefined) { bits.push(s.ms.toLocaleString() + " ms"); }
    if (s.tok !== undefined && s.tok !== null) { bits.push(s.tok + " tokens"); }
    if (s.cached) { bits.push("from cache"); }
    var p = el("div", "meta", bits.join(" · "));
    if (s.f === "length") { p.appendChild(el("span", "warn", " · ⚠ cut off at max_tokens")); }
    return p;
  }
  function sideColumn(label, s, parts, cls) {
    var col = el("div"), m = mark(s.p);
    add(col, add(el("h4"), document.createTextNode(label + " "), el("span", m[1], m[0] === "–" ? "– no thresholded check" : m[0])));
    add(col, sideMeta(s));
    if (s.e) { add(col, el("div", "err", "✗ request failed: " + s.e)); }
    if (s.turns) {
      var d = add(el("details"), el("summary", null, "earlier turns (" + s.turns.length + ")"));
      s.turns.forEach(function (t, i) { add(d, el("div", "meta", "turn " + (i + 1)), el("pre", null, t)); });
      add(col, d);
    }
    add(col, parts ? diffPre(parts, cls) : el("pre", null, s.t === "" ? "(empty answer)" : s.t));
    if (s.tc) { add(col, el("div", "meta", "tool calls"), el("pre", null, s.tc)); }
    add(col, checksTable(s));
    return col;
  }
  function detail(x) {
    var box = el("div", "detail"), where = D.files && D.files[x.s], notes = [];
    if (where || x.ln) { notes.push("defined in " + (where || SUITES[x.s]) + (x.ln ? ":" + x.ln : "")); }
    if (x.b) { notes.push("blocking: this case failing alone blocks the merge"); }
    if (x.cont) { notes.push("⚠ found in the candidate's training data (contamination check)"); }
    if (notes.length) { add(box, el("p", "small", notes.join(" · "))); }
    add(box, el("h4", null, "Input"), el("pre", null, x.in));
    if (x.ref !== undefined) { add(box, el("h4", null, "Expected (reference)"), el("pre", "ref", x.ref)); } else {
      add(box, el("p", "small", "No reference answer for this case: the checks below say what was expected and why an answer failed."));
    }
    var d = x.c.t && x.bl.t && x.c.t !== x.bl.t ? diff(x.c.t, x.bl.t) : null;
    add(box, el("p", "small", x.c.t === x.bl.t ? "Both answers are identical." : d === "apart" ? "The answers have little in common." :
      d ? "Highlighted (underlined): the words only in that answer." : !x.c.t || !x.bl.t ? "One answer is empty." :
      "Answers too long to compare word by word."));
    if (d === "apart") { d = null; }
    add(box, add(el("div", "pair"), sideColumn(L.c, x.c, d && d[0], "add"), sideColumn(L.bl, x.bl, d && d[1], "del")));
    x.c.ch.forEach(function (k) { if (k[0] === "pairwise" && k[5]) { add(box, judgeBlock(k)); } });
    return box;
  }

  function toggle(x, tr, button) {
    var key = name(x) + "|" + (x.r || ""), next = tr.nextSibling;
    if (next && next.classList && next.classList.contains("detail-row")) {
      next.remove(); tr.classList.remove("open"); button.setAttribute("aria-expanded", "false"); delete state.open[key]; return;
    }
    var row = el("tr", "detail-row"), td = el("td", "detail", null, {colspan: "6"});
    add(row, add(td, detail(x)));
    tr.after(row); tr.classList.add("open"); button.setAttribute("aria-expanded", "true"); state.open[key] = true;
    try { history.replaceState(null, "", "#case=" + encodeURIComponent(name(x))); } catch (e) { /* a link is a convenience */ }
  }
  function caseRow(x) {
    var tr = el("tr"), b = el("button", "case", name(x) + (x.r ? " (" + x.r + ")" : ""), {type: "button", "aria-expanded": "false"});
    b.addEventListener("click", function () { toggle(x, tr, b); });
    var mc = mark(x.c.p), mb = mark(x.bl.p), ch = change(x), w = why(x.c);
    add(tr, add(el("td"), b, x.b ? el("span", "tag", "blocking") : null), el("td", null, x.k), el("td", mc[1], mc[0]), el("td", mb[1], mb[0]),
      el("td", "chg-" + (ch || "none"), ch === "regressed" ? "▼ regressed" : ch === "improved" ? "▲ improved" : ""),
      el("td", "small", w, {title: w}));
    tr.dataset.case = name(x);
    if (x.r) { tr.dataset.role = x.r; }
    if (state.open[name(x) + "|" + (x.r || "")]) { setTimeout(function () { toggle(x, tr, b); }, 0); }
    return tr;
  }
  function render() {
    var rows = selected(), body = document.querySelector("#cases tbody"), frag = document.createDocumentFragment();
    rows.slice(0, state.shown).forEach(function (x) { frag.appendChild(caseRow(x)); });
    body.textContent = "";
    body.appendChild(frag);
    var n = Math.min(rows.length, state.shown);
    $("count").textContent = rows.length + " of " + CASES.length + " cases" + (n < rows.length ? "; showing the first " + n : "") +
      ". ✓ passed · ✗ failed · – no thresholded check (score only).";
    var more = $("more");
    more.hidden = n >= rows.length;
    more.textContent = "Show " + Math.min(PAGE, rows.length - n) + " more (" + (rows.length - n) + " not shown)";
  }

  function setupCases() {
    $("toolbar").hidden = false;
    $("cases").hidden = false;
    var timer = null;
    $("toolbar").addEventListener("submit", function (e) { e.preventDefault(); });
    $("toolbar").addEventListener("change", function (e) {
      // the search box has its own (input) handler; its change on blur would rebuild the rows under the user's click
      if (e.target.id !== "f-q") { state.shown = PAGE; render(); }
    });
    $("f-q").addEventListener("input", function () {
      clearTimeout(timer); timer = setTimeout(function () { state.shown = PAGE; render(); }, 150);
    });
    $("more").addEventListener("click", function () { state.shown += PAGE; render(); });
    // a report opens on what a reviewer looks for first: the candidate's failures (a comparison on every flip)
    if (D.kind === "report" && CASES.some(STATUS.failed)) { $("f-status").value = "failed"; }
    document.querySelectorAll("#cases th[data-key]").forEach(function (th) {
      sortable(th, function (dir) { state.key = th.dataset.key; state.dir = dir; render(); });
    });
    render();
  }

  /* Sortable tables: a header click sorts by the cells' data-v (numbers) or text; the same again reverses. */
  function sortable(th, apply) {
    th.setAttribute("aria-sort", "none");
    th.tabIndex = 0;
    function go() {
      var dir = th.getAttribute("aria-sort") === "ascending" ? -1 : 1;
      th.closest("tr").querySelectorAll("th").forEach(function (o) { if (o.hasAttribute("aria-sort")) { o.setAttribute("aria-sort", "none"); } });
      th.setAttribute("aria-sort", dir === 1 ? "ascending" : "descending");
      apply(dir);
    }
    th.addEventListener("click", go);
    th.addEventListener("keydown", function (e) { if (e.key === "Enter" || e.key === " ") { e.preventDefault(); go(); } });
  }
  function cellKey(td) {
    var raw = td.dataset.v !== undefined ? td.dataset.v : td.textContent.trim().replace("−", "-");
    var n = parseFloat(raw);
    return isNaN(n) ? [1, raw.toLowerCase()] : [0, n];
  }
  function setupTables() {
    document.querySelectorAll("table.sortable:not(#cases)").forEach(function (table) {
      var body = table.tBodies[0];
      if (!body) { return; }
      table.querySelectorAll("thead th").forEach(function (th, col) {
        sortable(th, function (dir) {
          var rows = Array.prototype.slice.call(body.rows);
          rows.sort(function (a, b) {
            var x = cellKey(a.cells[col]), y = cellKey(b.cells[col]);
            return x[0] !== y[0] ? x[0] - y[0] : x[1] < y[1] ? -dir : x[1] > y[1] ? dir : 0;
          });
          rows.forEach(function (r) { body.appendChild(r); });
        });
      });
    });
  }

  /* report.html#case=SUITE::ID opens that case: a link a reviewer can send. */
  function fromHash() {
    var m = /^#case=(.+)$/.exec(location.hash), id = m ? decodeURIComponent(m[1]) : null;
    var x = id && CASES.filter(function (c) { return name(c) === id; })[0];
    if (!x) { return; }
    $("f-status").value = "all"; $("f-q").value = id; state.open[id + "|" + (x.r || "")] = true; render();
    var tr = document.querySelector("#cases tbody tr.open") || document.querySelector("#cases tbody tr");
    if (tr) { setTimeout(function () { tr.scrollIntoView(); }, 0); }
  }

  setupTables();
  setupCases();
  fromHash();
  document.body.dataset.ready = "1";
}());

// Herald's pages work without JavaScript: times are shown in UTC and the
// silence form has spare matcher rows. With it, this file shows times in
// the viewer's zone (UTC on hover) and lets matcher rows be added and
// removed in place.
(function () {
  "use strict";

  function pad(n) { return (n < 10 ? "0" : "") + n; }

  // "+01:00" for the zone in force at that moment (it changes with DST).
  function zone(d) {
    var off = -d.getTimezoneOffset();
    var sign = off < 0 ? "-" : "+";
    off = Math.abs(off);
    return "UTC" + sign + pad(Math.floor(off / 60)) + ":" + pad(off % 60);
  }

  function local(d) {
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
      " " + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function utc(d) {
    return d.toISOString().replace("T", " ").replace(/\.\d+Z$/, " UTC");
  }

  // <time class="abs" datetime="..."> shows the moment itself: local text,
  // UTC on hover. Other <time> elements show a duration ("since 3m"): the
  // moment goes in the hover text, in both zones.
  function localTimes() {
    var times = document.querySelectorAll("time[datetime]");
    for (var i = 0; i < times.length; i++) {
      var t = times[i];
      var d = new Date(t.getAttribute("datetime"));
      if (isNaN(d.getTime())) { continue; }
      if (t.classList.contains("abs")) {
        t.title = utc(d);
        t.textContent = local(d) + " " + zone(d);
      } else {
        t.title = local(d) + " " + zone(d) + " (" + utc(d) + ")";
      }
    }
  }

  // datetime-local inputs hold UTC for the server; the viewer edits them
  // in their own zone, and they go back to UTC when the form is sent.
  function toLocalInput(v) {
    var d = new Date(v + "Z");
    if (!v || isNaN(d.getTime())) { return null; }
    return d.getFullYear() + "-" + pad(d.getMonth() + 1) + "-" + pad(d.getDate()) +
      "T" + pad(d.getHours()) + ":" + pad(d.getMinutes()) + ":" + pad(d.getSeconds());
  }

  function toUtcInput(v) {
    var d = new Date(v);
    if (!v || isNaN(d.getTime())) { return v; }
    return d.toISOString().replace(/\.\d+Z$/, "");
  }

  function formTimes(form) {
    var inputs = form.querySelectorAll("input[type=datetime-local]");
    for (var i = 0; i < inputs.length; i++) {
      var v = toLocalInput(inputs[i].value);
      if (v !== null) { inputs[i].value = v; }
    }
    var notes = form.querySelectorAll(".tz");
    var here = zone(new Date());
    for (var j = 0; j < notes.length; j++) { notes[j].textContent = "(your time, " + here + ")"; }
    form.addEventListener("submit", function () {
      for (var k = 0; k < inputs.length; k++) { inputs[k].value = toUtcInput(inputs[k].value); }
    });
  }

  // Matcher rows: the server numbers them m0, m1, ...; it reads every
  // number it finds, so a removed row may leave a gap.
  function matcherRows(form) {
    var box = form.querySelector(".matcher-rows");
    if (!box) { return; }
    var next = box.querySelectorAll(".matcher-row").length;

    function empty(row) {
      var inputs = row.querySelectorAll("input");
      for (var i = 0; i < inputs.length; i++) { if (inputs[i].value !== "") { return false; } }
      return true;
    }

    function addRemove(row) {
      var b = document.createElement("button");
      b.type = "button";
      b.className = "remove";
      b.textContent = "Remove";
      b.setAttribute("aria-label", "Remove this matcher");
      b.addEventListener("click", function () {
        var rows = box.querySelectorAll(".matcher-row");
        if (rows.length > 1) { row.parentNode.removeChild(row); } else { clear(row); }
        var first = box.querySelector(".matcher-row input");
        if (first) { first.focus(); }
      });
      row.appendChild(b);
    }

    function clear(row) {
      var inputs = row.querySelectorAll("input");
      for (var i = 0; i < inputs.length; i++) { inputs[i].value = ""; }
      var sel = row.querySelector("select");
      if (sel) { sel.selectedIndex = 0; }
      var errs = row.querySelectorAll(".error");
      for (var j = 0; j < errs.length; j++) { errs[j].parentNode.removeChild(errs[j]); }
    }

    // The spare rows the page carries for browsers without JavaScript:
    // one empty row is enough when rows can be added.
    var rows = box.querySelectorAll(".matcher-row");
    var spare = null;
    for (var i = 0; i < rows.length; i++) {
      if (!empty(rows[i])) { continue; }
      if (spare) { rows[i].parentNode.removeChild(rows[i]); } else { spare = rows[i]; }
    }
    rows = box.querySelectorAll(".matcher-row");
    for (var j = 0; j < rows.length; j++) { addRemove(rows[j]); }

    var add = document.createElement("button");
    add.type = "button";
    add.className = "add";
    add.textContent = "Add matcher";
    add.addEventListener("click", function () {
      var last = box.querySelector(".matcher-row:last-of-type") ||
        form.querySelector(".matcher-row");
      var row = last.cloneNode(true);
      var fields = row.querySelectorAll("input, select");
      for (var k = 0; k < fields.length; k++) {
        fields[k].name = fields[k].name.replace(/^m\d+_/, "m" + next + "_");
      }
      next++;
      var old = row.querySelector("button.remove");
      if (old) { old.parentNode.removeChild(old); }
      clear(row);
      box.appendChild(row);
      addRemove(row);
      row.querySelector("input").focus();
    });
    box.parentNode.insertBefore(add, box.nextSibling);
  }

  function start() {
    localTimes();
    var forms = document.querySelectorAll("form.silence-form");
    for (var i = 0; i < forms.length; i++) {
      formTimes(forms[i]);
      matcherRows(forms[i]);
    }
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();

/* mfmkg web UI: the SPARQL page. Runs the query against the endpoint with fetch(), renders a results table,
   and offers the results as CSV and JSON downloads. No dependencies. */
(function () {
  "use strict";

  var form = document.getElementById("sparql-form");
  if (!form) { return; }

  var endpoint = form.getAttribute("data-endpoint");
  var resolve = form.getAttribute("data-resolve");
  var textarea = document.getElementById("query");
  var example = document.getElementById("example");
  var statusEl = document.getElementById("status");
  var errorEl = document.getElementById("error");
  var table = document.getElementById("results");
  var graphEl = document.getElementById("graph-result");
  var downloads = document.getElementById("downloads");
  var dlCsv = document.getElementById("dl-csv");
  var dlJson = document.getElementById("dl-json");
  var runButton = document.getElementById("run");
  var examples = JSON.parse(document.getElementById("examples-data").textContent);
  var prefixes = JSON.parse(document.getElementById("prefixes-data").textContent);
  var blobUrls = [];
  var lastQuery = null;

  function compact(iri) {
    var best = null;
    Object.keys(prefixes).forEach(function (p) {
      var ns = prefixes[p];
      if (iri.indexOf(ns) === 0 && /^[\w.\/-]*$/.test(iri.slice(ns.length)) && (!best || ns.length > best[1].length)) {
        best = [p, ns];
      }
    });
    return best ? best[0] + ":" + iri.slice(best[1].length) : iri;
  }

  function body(query) {
    return new URLSearchParams({ query: query }).toString();
  }

  function post(query, accept) {
    return fetch(endpoint, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "Accept": accept },
      body: body(query)
    });
  }

  function clearBlobs() {
    blobUrls.forEach(function (u) { URL.revokeObjectURL(u); });
    blobUrls = [];
  }

  function blobUrl(text, type) {
    var u = URL.createObjectURL(new Blob([text], { type: type }));
    blobUrls.push(u);
    return u;
  }

  function showError(message) {
    errorEl.textContent = message;
    errorEl.hidden = false;
  }

  function problemText(resp, text) {
    try {
      var p = JSON.parse(text);
      return (p.title || resp.status) + ": " + (p.detail || "");
    } catch (e) {
      return "HTTP " + resp.status + ": " + text.slice(0, 500);
    }
  }

  function cell(term) {
    var td = document.createElement("td");
    if (!term) { return td; }
    if (term.type === "uri") {
      var a = document.createElement("a");
      a.href = resolve + "?iri=" + encodeURIComponent(term.value);
      a.title = term.value;
      a.textContent = compact(term.value);
      td.appendChild(a);
    } else if (term.type === "bnode") {
      td.textContent = "_:" + term.value;
      td.className = "muted";
    } else {
      td.textContent = term.value;
      if (term.datatype && /#(integer|decimal|double|float)$/.test(term.datatype)) { td.className = "num"; }
      if (term["xml:lang"]) { td.lang = term["xml:lang"]; }
    }
    return td;
  }

  function renderSelect(data) {
    var vars = data.head.vars || [];
    var thead = table.tHead, tbody = table.tBodies[0];
    thead.textContent = "";
    tbody.textContent = "";
    var tr = document.createElement("tr");
    vars.forEach(function (v) {
      var th = document.createElement("th");
      th.scope = "col";
      th.textContent = v;
      tr.appendChild(th);
    });
    thead.appendChild(tr);
    var frag = document.createDocumentFragment();
    data.results.bindings.forEach(function (b) {
      var row = document.createElement("tr");
      vars.forEach(function (v) { row.appendChild(cell(b[v])); });
      frag.appendChild(row);
    });
    tbody.appendChild(frag);
    table.hidden = false;
    return data.results.bindings.length;
  }

  function run(event) {
    if (event) { event.preventDefault(); }
    var query = textarea.value;
    if (!query.trim()) { showError("Write a query first."); return; }
    lastQuery = query;
    errorEl.hidden = true;
    table.hidden = true;
    graphEl.hidden = true;
    downloads.hidden = true;
    clearBlobs();
    statusEl.textContent = "Running…";
    runButton.disabled = true;
    var started = performance.now();
    post(query, "application/sparql-results+json, text/turtle;q=0.9").then(function (resp) {
      return resp.text().then(function (text) { return { resp: resp, text: text }; });
    }).then(function (r) {
      var seconds = ((performance.now() - started) / 1000).toFixed(2);
      if (!r.resp.ok) {
        statusEl.textContent = "";
        showError(problemText(r.resp, r.text));
        return;
      }
      var type = (r.resp.headers.get("Content-Type") || "").split(";")[0];
      var truncated = r.resp.headers.get("X-SPARQL-Truncated") === "true" ? " (truncated by the row limit)" : "";
      if (type === "text/turtle") {
        graphEl.textContent = r.text;
        graphEl.hidden = false;
        statusEl.textContent = "Graph result in " + seconds + " s" + truncated + ".";
        return;
      }
      var data = JSON.parse(r.text);
      if (typeof data.boolean === "boolean") {
        statusEl.textContent = "ASK result: " + data.boolean + " (" + seconds + " s).";
        return;
      }
      var n = renderSelect(data);
      statusEl.textContent = n + " row" + (n === 1 ? "" : "s") + " in " + seconds + " s" + truncated + ".";
      dlJson.href = blobUrl(r.text, "application/sparql-results+json");
      dlCsv.href = "#";
      downloads.hidden = false;
      var url = new URL(window.location.href);
      url.searchParams.set("query", query);
      window.history.replaceState(null, "", url.toString());
    }).catch(function (err) {
      statusEl.textContent = "";
      showError("The query could not be sent: " + err);
    }).then(function () {
      runButton.disabled = false;
    });
  }

  // CSV is fetched only when asked for, then saved through a temporary link.
  dlCsv.addEventListener("click", function (event) {
    if (dlCsv.getAttribute("href") !== "#") { return; }
    event.preventDefault();
    post(lastQuery, "text/csv").then(function (resp) {
      return resp.text().then(function (text) {
        if (!resp.ok) { throw new Error(problemText(resp, text)); }
        dlCsv.href = blobUrl(text, "text/csv");
        dlCsv.click();
      });
    }).catch(function (err) { showError(String(err.message || err)); });
  });

  example.addEventListener("change", function () {
    var chosen = examples.filter(function (e) { return e.name === example.value; })[0];
    if (chosen) {
      textarea.value = chosen.sparql;
      textarea.focus();
    }
  });

  textarea.addEventListener("keydown", function (event) {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) { run(event); }
  });

  form.addEventListener("submit", run);

  if (new URL(window.location.href).searchParams.get("query")) { run(); }
}());

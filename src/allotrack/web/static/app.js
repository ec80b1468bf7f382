// htmx leaves 4xx answers unswapped: a form refused with its reasons (422) or a conflicting change (409) would
// then show nothing. Swap them like a success, so the refused form and its message replace the page.
document.addEventListener("htmx:beforeSwap", function (event) {
  var status = event.detail.xhr.status;
  if (status === 422 || status === 409) {
    event.detail.shouldSwap = true;
    event.detail.isError = false;
  }
});

// A number field holding text the browser cannot read as a number ("1e", "-", "0,5" in some locales) is sent
// as blank, which a form would take as "not given" (the GVHD form: stage 0). Nothing is graded or saved while
// one is there: the live grade clears and says which input is not a number; a save is held back with the
// message next to the field.
function allotrackBadInputs(form) {
  var bad = [];
  form.querySelectorAll("input").forEach(function (input) {
    if (input.validity && input.validity.badInput) {
      bad.push(input);
    }
  });
  return bad;
}

function allotrackLabel(input) {
  var field = input.closest(".field");
  var label = field ? field.querySelector("label") : input.closest("label");
  return (label ? label.textContent : input.name).replace(/\s*\*$/, "").trim();
}

function allotrackMark(input) {
  var holder = input.closest(".field") || input.closest("label") || input;
  holder.classList.add("invalid");
  var id = "err-" + input.name;
  var message = document.getElementById(id);
  if (!message) {
    message = document.createElement("p");
    message.className = "field-error";
    message.id = id;
    holder.insertAdjacentElement("afterend", message);
  }
  message.textContent = allotrackLabel(input) + ": not a number — correct it or clear it.";
  input.setAttribute("aria-invalid", "true");
}

document.addEventListener("htmx:beforeRequest", function (event) {
  var elt = event.detail.elt;
  var form = elt && elt.closest ? elt.closest("form") : null;
  if (!form || elt.tagName === "SELECT") {
    return;  // the item select of an entry form re-renders the form: nothing is graded or saved
  }
  var bad = allotrackBadInputs(form);
  if (!bad.length) {
    return;
  }
  event.preventDefault();
  var grade = form.querySelector("#grade");
  if (grade) {
    var p = document.createElement("p");
    p.className = "error";
    p.id = "grade-invalid";
    p.textContent = "No grade: " + bad.map(allotrackLabel).join(", ") + " is not a number.";
    grade.replaceChildren(p);
  }
  if (elt.tagName === "BUTTON") {
    bad.forEach(allotrackMark);
  }
});

// htmx checks a form before it sends it: with an input out of its range or not a number the live grade is not
// asked for at all. Clear the grade shown (it belongs to the values before) and say which input is invalid.
function allotrackProblem(input) {
  var v = input.validity;
  if (v.badInput) {
    return "is not a number";
  }
  if (v.rangeOverflow) {
    return "is above the highest allowed value " + input.max;
  }
  if (v.rangeUnderflow) {
    return "is below the lowest allowed value " + input.min;
  }
  return input.validationMessage;
}

document.addEventListener("htmx:validation:halted", function (event) {
  var form = event.detail.elt;
  var grade = form && form.querySelector ? form.querySelector("#grade") : null;
  if (!grade) {
    return;
  }
  var invalid = Array.prototype.filter.call(form.querySelectorAll("input"), function (input) {
    return input.validity && !input.validity.valid;
  });
  var p = document.createElement("p");
  p.className = "error";
  p.id = "grade-invalid";
  p.textContent = "No grade: " + invalid.map(function (input) {
    return allotrackLabel(input) + " " + allotrackProblem(input);
  }).join("; ") + ".";
  grade.replaceChildren(p);
});

document.addEventListener("submit", function (event) {
  var bad = allotrackBadInputs(event.target);
  if (bad.length) {
    event.preventDefault();
    bad.forEach(allotrackMark);
    bad[0].focus();
  }
}, true);

// Charts (allotrack.web.charts): each <script type="application/json" class="chart-spec"> holds a plotly figure
// (data, layout, config) that is drawn into the element before it, when the page loads and after every htmx swap
// (htmx.onLoad), e.g. the dashboard's figures for another grouping. plotly.js comes from our own origin and only
// pages with charts load it. Plots about to be swapped out are purged (their resize listeners go with them).
function allotrackCharts(root) {
  if (!window.Plotly || !root || !root.querySelectorAll) {
    return;
  }
  root.querySelectorAll("script.chart-spec").forEach(function (node) {
    var target = node.previousElementSibling;
    if (!target || target.classList.contains("js-plotly-plot")) {
      return;
    }
    var figure = JSON.parse(node.textContent);
    window.Plotly.newPlot(target, figure.data, figure.layout, figure.config);
  });
}

htmx.onLoad(allotrackCharts);

document.addEventListener("htmx:beforeSwap", function (event) {
  var target = event.detail.target;
  if (window.Plotly && target && target.querySelectorAll) {
    target.querySelectorAll(".js-plotly-plot").forEach(function (plot) { window.Plotly.purge(plot); });
  }
});

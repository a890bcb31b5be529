/* Stakehouse web pages: draws each <figure class="chart" data-chart="..."> with uPlot.
   The data comes from the server as JSON in the attribute; the same numbers are in the table
   beside each chart, so nothing is lost without script. No inline script anywhere (CSP). */
(function () {
  "use strict";
  function draw(el) {
    var spec;
    try { spec = JSON.parse(el.getAttribute("data-chart")); } catch (e) { return; }
    if (!spec || !spec.x || spec.x.length === 0 || typeof uPlot === "undefined") { return; }
    var width = Math.max(260, Math.min(el.clientWidth || 600, 900));
    var series = [{}];
    var data = [spec.x];
    spec.series.forEach(function (s, i) {
      series.push({ label: s.label, stroke: ["#0b57d0", "#c2410c", "#0d6b2f"][i % 3], width: 2,
                    fill: i === 0 && spec.fill ? "rgba(11,87,208,0.08)" : undefined,
                    paths: spec.bars ? uPlot.paths.bars({ size: [0.6, 40] }) : undefined });
      data.push(s.y.map(Number));
    });
    // bars: half a day of room either side, so the first and last bars are whole
    var pad = spec.bars ? 43200 : 0;
    var xScale = { time: true, range: function (u, min, max) {
      var p = pad || (min === max ? 43200 : 0);
      return [min - p, max + p];
    } };
    var plot = new uPlot({ width: width, height: 220, series: series, scales: { x: xScale },
                           axes: [{}, { size: 70 }] }, data, el.querySelector(".plot"));
    el.setAttribute("data-drawn", "1");
    window.addEventListener("resize", function () {
      plot.setSize({ width: Math.max(260, Math.min(el.clientWidth || 600, 900)), height: 220 });
    });
  }
  document.querySelectorAll("figure.chart[data-chart]").forEach(draw);

  /* The console's clock advance: poll its progress until it is done, then show the result. */
  var advance = document.getElementById("advance");
  if (advance) {
    var bar = document.getElementById("advance-bar"), text = document.getElementById("advance-text");
    var poll = function () {
      fetch(advance.getAttribute("data-poll"), { credentials: "same-origin", cache: "no-store" })
        .then(function (r) { return r.ok ? r.json() : Promise.reject(r.status); })
        .then(function (st) {
          if (!st.running) { window.location.assign(advance.getAttribute("data-done")); return; }
          bar.max = st.total; bar.value = st.progress;
          text.textContent = "at " + st.reached + " UTC, " + st.runs + " job runs so far";
          window.setTimeout(poll, 400);
        })
        .catch(function () { window.setTimeout(poll, 2000); });
    };
    window.setTimeout(poll, 200);
  }
})();

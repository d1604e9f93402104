// Stats page: counts per bucket from the rollups, as a chart and a table.
(function () {
  "use strict";
  const el = document.getElementById("stats-chart");
  const TYPES = ["sent", "delivered", "bounced", "complained", "opened", "clicked"];
  const COLORS = ["#6b7280", "#16a34a", "#dc2626", "#f59e0b", "#2563eb", "#a855f7"];
  fetch(el.dataset.src + location.search, { credentials: "same-origin" })
    .then((r) => r.json())
    .then((body) => {
      const rows = body.buckets;
      const xs = rows.map((r) => Date.parse(r.time) / 1000);
      const data = [xs].concat(TYPES.map((t) => rows.map((r) => r[t] || 0)));
      new uPlot({
        width: el.clientWidth - 16, height: 300, title: "Events per bucket",
        series: [{}].concat(TYPES.map((t, i) => ({ label: t, stroke: COLORS[i], width: 2, points: { show: false } }))),
      }, data, el);
      const table = document.getElementById("stats-table");
      const head = table.insertRow();
      ["time"].concat(TYPES).forEach((h) => { const th = document.createElement("th"); th.textContent = h; head.appendChild(th); });
      rows.filter((r) => TYPES.some((t) => r[t])).forEach((r) => {
        const tr = table.insertRow();
        tr.insertCell().textContent = r.time;
        TYPES.forEach((t) => { tr.insertCell().textContent = r[t] || 0; });
      });
    });
})();

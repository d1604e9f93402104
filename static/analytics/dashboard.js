// Live dashboard: one websocket update per second, cards and a moving chart (uPlot).
(function () {
  "use strict";
  const root = document.getElementById("live");
  const TYPES = ["sent", "delivered", "bounced", "opened", "clicked"];
  const COLORS = ["#6b7280", "#16a34a", "#dc2626", "#2563eb", "#a855f7"];
  let chart = null;

  function text(id, value) {
    const el = document.getElementById(id);
    if (el) el.textContent = value;
  }
  function pct(x, digits) { return (x * 100).toFixed(digits) + "%"; }

  function draw(update) {
    const n = update.series.sent.length;
    const xs = [];
    for (let i = 0; i < n; i++) xs.push(update.second - n + 1 + i);
    const data = [xs].concat(TYPES.map((t) => update.series[t]));
    if (!chart && window.uPlot) {
      const el = document.getElementById("chart");
      chart = new uPlot({
        width: el.clientWidth - 16, height: 300, title: "Events per second (last 60 s)",
        series: [{}].concat(TYPES.map((t, i) => ({ label: t, stroke: COLORS[i], width: 2, points: { show: false } }))),
        axes: [{}, { label: "per second" }],
      }, data, el);
    } else if (chart) {
      chart.setData(data);
    }
  }

  function apply(update) {
    TYPES.forEach((t) => {
      text("rate-" + t, update.rates[t]);
      text("hour-" + t, update.hour[t]);
    });
    text("queue-depth", update.queue_depth);
    text("oldest-queued", update.oldest_queued_seconds);
    text("lat-p50", update.latency.p50 ?? "–");
    text("lat-p95", update.latency.p95 ?? "–");
    text("lat-p99", update.latency.p99 ?? "–");
    text("bounce-rate", pct(update.bounce_rate, 2));
    text("complaint-rate", pct(update.complaint_rate, 3));
    text("last-update", new Date(update.second * 1000).toISOString().slice(11, 19));
    draw(update);
  }

  function connect() {
    const org = root.dataset.org;
    const scheme = location.protocol === "https:" ? "wss://" : "ws://";
    const socket = new WebSocket(scheme + location.host + "/ws/analytics/" + (org ? "?org=" + org : ""));
    socket.onopen = () => { root.dataset.state = "open"; text("stream-state", "live"); };
    socket.onmessage = (event) => apply(JSON.parse(event.data));
    socket.onclose = () => {
      root.dataset.state = "closed";
      text("stream-state", "reconnecting");
      setTimeout(connect, 2000);
    };
  }
  connect();
})();

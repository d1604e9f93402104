/* Mailroom webmail: live updates over /ws/mail/.
   Reconnects with exponential backoff and jitter; after a reconnect it catches up over HTTP
   (folder counts and the open list), since pushes sent while away are gone. */
(function () {
  "use strict";

  const status = document.getElementById("live-status");
  const MAX_DELAY = 30000;
  let socket = null;
  let attempts = 0;
  let everOpened = false;
  let retryTimer = null;
  let pingTimer = null;

  function setStatus(state, title) {
    if (!status) return;
    status.dataset.state = state;
    status.title = title;
  }

  function app() { return window.Mailroom; }

  async function catchUp() {
    try {
      const response = await fetch("/state/", { credentials: "same-origin" });
      if (response.ok) app().updateCounts((await response.json()).folders);
      await app().refreshList();
    } catch (e) { /* the next reconnect tries again */ }
  }

  function notify(title, body) {
    if (!("Notification" in window) || Notification.permission !== "granted") return;
    if (document.visibilityState === "visible" && document.hasFocus()) return;
    try {
      const note = new Notification(title, { body, tag: "mailroom-new-mail" });
      note.onclick = () => { window.focus(); note.close(); };
    } catch (e) { /* some browsers only allow notifications from a service worker */ }
  }

  async function onNewMail(data) {
    app().updateCounts(data.folders);
    const here = app().currentFolderId();
    const count = (data.message_ids || []).length;
    let newest = null;
    if ((data.folders || []).some((f) => String(f.id) === here)) {
      const result = await app().fetchNewRows();
      newest = result && result.newest;
    }
    if (newest) notify(newest.from || "New message", newest.subject || "(no subject)");
    else notify("New mail", count === 1 ? "1 new message" : count + " new messages");
  }

  function onMessage(event) {
    let data;
    try { data = JSON.parse(event.data); } catch (e) { return; }
    if (data.event === "new_mail") onNewMail(data);
    else if (data.event !== "pong") app().applyPush(data);
  }

  function connect() {
    clearTimeout(retryTimer);
    if (socket && (socket.readyState === WebSocket.OPEN || socket.readyState === WebSocket.CONNECTING)) return;
    const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
    setStatus(attempts ? "retrying" : "connecting", "Connecting…");
    socket = new WebSocket(scheme + window.location.host + "/ws/mail/");
    socket.addEventListener("open", () => {
      const reconnected = everOpened;
      everOpened = true;
      attempts = 0;
      setStatus("open", "Live updates on");
      clearInterval(pingTimer);
      pingTimer = setInterval(() => {
        if (socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({ action: "ping" }));
      }, 25000);
      if (reconnected) catchUp();
    });
    socket.addEventListener("message", onMessage);
    socket.addEventListener("close", (event) => {
      clearInterval(pingTimer);
      if (event.code === 4401) { setStatus("closed", "Signed out"); return; }
      scheduleReconnect();
    });
  }

  function scheduleReconnect() {
    clearTimeout(retryTimer);
    const base = Math.min(MAX_DELAY, 1000 * Math.pow(2, attempts));
    const delay = base / 2 + Math.random() * base / 2;
    attempts += 1;
    setStatus("retrying", "Reconnecting in " + Math.round(delay / 1000) + "s");
    retryTimer = setTimeout(connect, delay);
  }

  window.addEventListener("online", () => { attempts = 0; connect(); });
  document.addEventListener("visibilitychange", () => {
    if (document.visibilityState === "visible" && (!socket || socket.readyState === WebSocket.CLOSED)) {
      attempts = 0;
      connect();
    }
  });

  const button = document.getElementById("enable-notifications");
  if (button && "Notification" in window && Notification.permission === "default") {
    button.hidden = false;
    button.addEventListener("click", async () => {
      await Notification.requestPermission();
      button.hidden = Notification.permission !== "default";
    });
  }

  if (window.WebSocket && window.Mailroom) connect();
})();

/* Mailroom webmail: lists, selection, actions with undo, conversations, keyboard shortcuts.
   Plain script, no build step. Everything works without it; this makes it quick. */
(function () {
  "use strict";

  const csrf = () => (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  async function post(url, data) {
    const body = data instanceof FormData ? data : new FormData();
    if (!(data instanceof FormData)) {
      for (const [key, value] of Object.entries(data || {})) {
        (Array.isArray(value) ? value : [value]).forEach((v) => body.append(key, v));
      }
    }
    const response = await fetch(url, {
      method: "POST",
      body,
      credentials: "same-origin",
      headers: { Accept: "application/json", "X-CSRFToken": csrf() },
    });
    let payload = {};
    try { payload = await response.json(); } catch (e) { payload = {}; }
    if (!response.ok || payload.ok === false) {
      throw new Error(payload.error || payload.message || "Something went wrong (" + response.status + ").");
    }
    return payload;
  }

  /* --- Toast with undo ------------------------------------------------------------------ */
  const toast = document.getElementById("toast");
  let toastTimer = null;
  function showToast(text, undo) {
    if (!toast) return;
    toast.querySelector(".toast-text").textContent = text;
    const button = toast.querySelector(".toast-undo");
    button.hidden = !undo;
    button.onclick = undo ? async () => {
      toast.hidden = true;
      try {
        const result = await post("/actions/undo/", { token: undo });
        showToast(result.message);
        refreshList();
      } catch (error) { showToast(error.message); }
    } : null;
    toast.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(() => { toast.hidden = true; }, undo ? 10000 : 5000);
  }

  /* --- Colors (CSP forbids inline styles; the CSSOM is fine) ------------------------------ */
  function paintColors(root) {
    (root || document).querySelectorAll("[data-color]").forEach((el) => {
      if (/^#[0-9a-fA-F]{6}$/.test(el.dataset.color)) el.style.setProperty("--label", el.dataset.color);
    });
  }

  /* --- Counts ------------------------------------------------------------------------------ */
  function updateCounts(folders) {
    (folders || []).forEach((f) => {
      document.querySelectorAll('[data-count="' + f.id + '"]').forEach((el) => {
        const link = el.closest("[data-role]");
        const value = link && link.dataset.role === "drafts" ? f.total : f.unread;
        el.textContent = value ? String(value) : "";
        el.classList.toggle("empty", !value);
      });
      document.querySelectorAll('[data-total="' + f.id + '"]').forEach((el) => {
        el.textContent = f.total + (f.total === 1 ? " message" : " messages");
      });
    });
    const current = document.querySelector(".folder-link.current [data-count]");
    const base = document.title.replace(/^\(\d+\) /, "");
    const unread = current && current.textContent ? current.textContent : "";
    document.title = unread ? "(" + unread + ") " + base : base;
  }

  /* --- The message list -------------------------------------------------------------------- */
  const listForm = document.getElementById("list-form");
  const rowsBody = document.getElementById("rows");
  const rows = () => (rowsBody ? Array.from(rowsBody.querySelectorAll("tr.row")) : []);
  let focusIndex = -1;

  function syncEmpty() {
    const empty = document.querySelector(".empty-list");
    if (empty) empty.hidden = rows().length > 0;
  }

  function selectedIds() {
    const checked = rows().filter((r) => r.querySelector("input[name=ids]").checked);
    if (checked.length) return checked.map((r) => r.dataset.id);
    const focused = rows()[focusIndex];
    return focused ? [focused.dataset.id] : [];
  }

  function setFocus(index) {
    const all = rows();
    if (!all.length) return;
    focusIndex = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((r, i) => r.classList.toggle("focused", i === focusIndex));
    all[focusIndex].scrollIntoView({ block: "nearest" });
  }

  function removeRows(ids) {
    const wanted = new Set(ids.map(String));
    rows().forEach((r) => { if (wanted.has(r.dataset.id)) r.remove(); });
    if (focusIndex >= rows().length) focusIndex = rows().length - 1;
    if (focusIndex >= 0) setFocus(focusIndex);
    syncEmpty();
  }

  function setFlags(ids, data) {
    const wanted = new Set(ids.map(String));
    document.querySelectorAll("tr.row, section.message").forEach((el) => {
      if (!wanted.has(el.dataset.id)) return;
      if ("is_seen" in data && el.tagName === "TR") el.classList.toggle("unread", !data.is_seen);
      if ("is_flagged" in data) {
        el.classList.toggle("flagged", data.is_flagged);
        const star = el.querySelector(".star-button");
        if (star) {
          star.setAttribute("aria-pressed", data.is_flagged ? "true" : "false");
          star.textContent = data.is_flagged ? "★" : "☆";
        }
      }
    });
  }

  async function refreshList() {
    if (!listForm || !listForm.dataset.rowsUrl || !listForm.dataset.firstPage) return false;
    const response = await fetch(listForm.dataset.rowsUrl, { credentials: "same-origin" });
    if (!response.ok) return false;
    const data = await response.json();
    rowsBody.innerHTML = data.html;
    paintColors(rowsBody);
    focusIndex = -1;
    syncEmpty();
    return true;
  }

  async function fetchNewRows() {
    if (!listForm || !listForm.dataset.rowsUrl || !listForm.dataset.firstPage) return null;
    const first = rows()[0];
    const url = listForm.dataset.rowsUrl + (first ? "?after=" + encodeURIComponent(first.dataset.cursor) : "");
    const response = await fetch(url, { credentials: "same-origin" });
    if (!response.ok) return null;
    const data = await response.json();
    if (!data.count) return data;
    const template = document.createElement("tbody");
    template.innerHTML = data.html;
    const fresh = Array.from(template.querySelectorAll("tr.row")).filter(
      (r) => !rowsBody.querySelector('tr.row[data-id="' + r.dataset.id + '"]'));
    fresh.reverse().forEach((r) => { r.classList.add("fresh"); rowsBody.prepend(r); });
    paintColors(rowsBody);
    if (focusIndex >= 0) focusIndex += fresh.length;
    syncEmpty();
    return data;
  }

  const REMOVING = new Set(["archive", "trash", "spam", "inbox", "move", "delete"]);

  async function runAction(action, ids, extra) {
    if (!ids.length) { showToast("Select a message first."); return; }
    const data = Object.assign({ action, ids }, extra || {});
    try {
      const result = await post("/actions/", data);
      if (REMOVING.has(action)) removeRows(ids);
      if (action === "read" || action === "unread") setFlags(ids, { is_seen: action === "read" });
      if (action === "flag" || action === "unflag") setFlags(ids, { is_flagged: action === "flag" });
      if (action === "label" || action === "unlabel") refreshList();
      rows().forEach((r) => { r.querySelector("input[name=ids]").checked = false; r.classList.remove("selected"); });
      const all = document.querySelector(".select-all");
      if (all) all.checked = false;
      showToast(result.message, result.undo);
    } catch (error) {
      showToast(error.message);
    }
  }

  if (listForm) {
    listForm.addEventListener("submit", (event) => {
      const button = event.submitter;
      if (!button || button.name !== "action") return;
      event.preventDefault();
      const extra = {};
      if (button.value === "move") extra.folder = listForm.querySelector("select[name=folder]").value;
      if (button.value === "label" || button.value === "unlabel") {
        extra.label = button.closest(".select-group").querySelector("select[name=label]").value;
      }
      runAction(button.value, selectedIds(), extra);
    });
    listForm.addEventListener("change", (event) => {
      const box = event.target;
      if (box.classList.contains("select-all")) {
        rows().forEach((r) => {
          r.querySelector("input[name=ids]").checked = box.checked;
          r.classList.toggle("selected", box.checked);
        });
      } else if (box.name === "ids") {
        box.closest("tr").classList.toggle("selected", box.checked);
      }
    });
    listForm.addEventListener("click", (event) => {
      const star = event.target.closest(".star-button");
      if (star) {
        event.preventDefault();
        const on = star.getAttribute("aria-pressed") !== "true";
        runAction(on ? "flag" : "unflag", [star.dataset.star]);
        return;
      }
      const row = event.target.closest("tr.row");
      if (!row || event.target.closest("input, button, a, select, label")) return;
      window.location.href = row.dataset.href;
    });
  }

  /* --- Conversation ----------------------------------------------------------------------- */
  const thread = document.getElementById("thread");
  const sections = () => (thread ? Array.from(thread.querySelectorAll("section.message")) : []);
  let messageIndex = -1;

  function focusMessage(index) {
    const all = sections();
    if (!all.length) return;
    messageIndex = Math.max(0, Math.min(all.length - 1, index));
    all.forEach((s, i) => s.classList.toggle("focused", i === messageIndex));
    all[messageIndex].scrollIntoView({ block: "nearest" });
  }

  function toggleMessage(section, expand) {
    const open = expand === undefined ? section.classList.contains("collapsed") : expand;
    section.classList.toggle("collapsed", !open);
    section.classList.toggle("expanded", open);
  }

  if (thread) {
    thread.querySelectorAll("iframe.html-body").forEach((frame) => {
      const height = parseInt(frame.dataset.height || "300", 10);
      frame.style.height = Math.max(160, Math.min(2400, height)) + "px";
    });
    thread.addEventListener("click", (event) => {
      const star = event.target.closest(".star-button");
      if (star) {
        event.stopPropagation();
        const on = star.getAttribute("aria-pressed") !== "true";
        post("/actions/", { action: on ? "flag" : "unflag", ids: [star.dataset.star] })
          .then(() => setFlags([star.dataset.star], { is_flagged: on }))
          .catch((error) => showToast(error.message));
        return;
      }
      const show = event.target.closest(".show-images");
      if (show) {
        event.preventDefault();
        const section = show.closest("section.message");
        section.querySelector("iframe.html-body").src = show.dataset.bodyUrl;
        show.closest(".images-banner").hidden = true;
        return;
      }
      const head = event.target.closest("[data-toggle]");
      if (head && !event.target.closest("a, button")) toggleMessage(head.closest("section.message"));
    });
    const opened = thread.querySelector("section.message.opened");
    const all = sections();
    messageIndex = opened ? all.indexOf(opened) : all.length - 1;
    if (opened && all.length > 1) opened.scrollIntoView({ block: "start" });
  }

  function replyLink(kind) {
    const all = sections();
    let section = all[messageIndex];
    if (!section || section.classList.contains("collapsed")) {
      section = all.filter((s) => s.classList.contains("expanded")).pop() || all[all.length - 1];
    }
    const link = section && section.querySelector('[data-reply="' + kind + '"]');
    if (link) window.location.href = link.href;
  }

  function threadAction(action) {
    const form = document.getElementById("thread-form");
    const button = form && form.querySelector('button[value="' + action + '"]');
    if (button) button.click();
  }

  /* --- Confirmations, drawer, notices --------------------------------------------------------- */
  document.addEventListener("click", (event) => {
    const guarded = event.target.closest("[data-confirm]");
    if (guarded && !window.confirm(guarded.dataset.confirm)) event.preventDefault();
  }, true);

  const menu = document.querySelector(".menu-toggle");
  function setDrawer(open) {
    document.body.classList.toggle("drawer-open", open);
    if (menu) menu.setAttribute("aria-expanded", open ? "true" : "false");
  }
  if (menu) menu.addEventListener("click", () => setDrawer(!document.body.classList.contains("drawer-open")));
  const scrim = document.querySelector(".scrim");
  if (scrim) { scrim.hidden = false; scrim.addEventListener("click", () => setDrawer(false)); }

  /* --- Undo send banner -------------------------------------------------------------------- */
  const banner = document.getElementById("sending-banner");
  if (banner) {
    const sendAt = Date.parse(banner.dataset.sendAt);
    const text = banner.querySelector(".sending-text");
    const undoForm = banner.querySelector("form.undo-send");
    let finished = false;
    undoForm.addEventListener("submit", async (event) => {
      event.preventDefault();
      finished = true;
      try {
        const result = await post(undoForm.action, {});
        window.location.href = result.compose_url;
      } catch (error) { text.textContent = error.message; }
    });
    const sendNow = async () => {
      if (finished) return;
      finished = true;
      try {
        const result = await post(banner.dataset.sendUrl, {});
        text.textContent = result.message;
        undoForm.hidden = true;
        banner.querySelectorAll("form").forEach((f) => { f.hidden = true; });
        banner.classList.replace("info", "success");
        refreshList();
      } catch (error) {
        text.textContent = error.message;
        banner.classList.replace("info", "error");
      }
    };
    banner.querySelectorAll("form:not(.undo-send)").forEach((form) => form.addEventListener("submit", (event) => {
      event.preventDefault();
      sendNow();
    }));
    if (sendAt - Date.now() < 60000) {
      const tick = () => {
        if (finished) return;
        const left = Math.ceil((sendAt - Date.now()) / 1000);
        if (left <= 0) { sendNow(); return; }
        text.textContent = "Sending in " + left + "s…";
        setTimeout(tick, 250);
      };
      tick();
    }
  }

  /* --- Keyboard shortcuts ----------------------------------------------------------------- */
  const dialog = document.getElementById("shortcuts");
  document.addEventListener("keydown", (event) => {
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    const target = event.target;
    if (target.closest && target.closest("input, textarea, select, [contenteditable]")) {
      if (event.key === "Escape") target.blur();
      return;
    }
    if (dialog && dialog.open) return;
    const key = event.key;
    const inList = Boolean(listForm);
    const handled = () => event.preventDefault();
    if (key === "?") { handled(); if (dialog) dialog.showModal(); return; }
    if (key === "/") { handled(); const q = document.querySelector(".search input"); if (q) q.focus(); return; }
    if (key === "c") { handled(); window.location.href = "/compose/"; return; }
    if (inList) {
      const all = rows();
      if (key === "j") { handled(); setFocus(focusIndex + 1); }
      else if (key === "k") { handled(); setFocus(focusIndex < 0 ? 0 : focusIndex - 1); }
      else if ((key === "o" || key === "Enter") && all[focusIndex]) { handled(); window.location.href = all[focusIndex].dataset.href; }
      else if (key === "x" && all[focusIndex]) {
        handled();
        const box = all[focusIndex].querySelector("input[name=ids]");
        box.checked = !box.checked;
        all[focusIndex].classList.toggle("selected", box.checked);
      }
      else if (key === "s" && all[focusIndex]) { handled(); all[focusIndex].querySelector(".star-button").click(); }
      else if (key === "e" && listForm.dataset.folderRole !== "archive") { handled(); runAction("archive", selectedIds()); }
      else if (key === "#") {
        handled();
        const forever = ["trash", "junk"].includes(listForm.dataset.folderRole);
        if (!forever || window.confirm("Delete the selected messages forever?")) runAction(forever ? "delete" : "trash", selectedIds());
      }
      else if (key === "!") { handled(); runAction("spam", selectedIds()); }
      else if (key === "I") { handled(); runAction("read", selectedIds()); }
      else if (key === "U") { handled(); runAction("unread", selectedIds()); }
      return;
    }
    if (thread) {
      if (key === "j") { handled(); focusMessage(messageIndex + 1); }
      else if (key === "k") { handled(); focusMessage(messageIndex - 1); }
      else if (key === "o" || key === "Enter") { handled(); const s = sections()[messageIndex]; if (s) toggleMessage(s); }
      else if (key === "u") { handled(); window.location.href = thread.dataset.back; }
      else if (key === "r") { handled(); replyLink("reply"); }
      else if (key === "a") { handled(); replyLink("reply_all"); }
      else if (key === "f") { handled(); replyLink("forward"); }
      else if (key === "e") { handled(); threadAction("archive"); }
      else if (key === "#") { handled(); threadAction("trash"); }
      else if (key === "!") { handled(); threadAction("spam"); }
      else if (key === "U") { handled(); threadAction("unread"); }
      else if (key === "s") { handled(); const s = sections()[messageIndex]; if (s) s.querySelector(".star-button").click(); }
    }
  });

  paintColors(document);
  syncEmpty();

  /* For live.js: apply what the server pushes. */
  window.Mailroom = {
    post,
    showToast,
    updateCounts,
    refreshList,
    fetchNewRows,
    currentFolderId: () => (listForm && listForm.dataset.folderId) || (thread && thread.dataset.folderId) || "",
    applyPush(data) {
      updateCounts(data.folders);
      const ids = data.message_ids || [];
      if (data.event === "flags") setFlags(ids, data);
      else if (data.event === "deleted") removeRows(ids);
      else if (data.event === "moved") {
        const here = listForm && listForm.dataset.folderId;
        if (here && (String(data.folder_id) === here || !data.folder_id)) refreshList();
        else removeRows(ids);
      } else if (data.event === "labels") refreshList();
    },
  };
})();

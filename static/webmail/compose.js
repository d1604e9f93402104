/* Mailroom webmail: compose. Autosave every few seconds and when the page goes away,
   uploads with a progress bar, send later in the browser's time zone, Ctrl+Enter sends. */
(function () {
  "use strict";

  const form = document.getElementById("compose");
  if (!form) return;
  const AUTOSAVE_MS = 4000;
  const status = document.getElementById("autosave-status");
  const attachmentList = document.getElementById("attachment-list");
  const uploadList = document.getElementById("upload-list");
  const fileInput = document.getElementById("file-input");
  const draftInput = form.querySelector("input[name=draft]");
  const csrf = form.querySelector("input[name=csrfmiddlewaretoken]").value;
  let dirty = false;
  let saving = false;
  let submitting = false;
  let attachmentsVersion = 0;
  let pendingUploads = 0;

  function markDirty() { dirty = true; if (status) status.textContent = ""; }
  form.addEventListener("input", (event) => { if (event.target !== fileInput) markDirty(); });

  function formData() {
    const data = new FormData(form);
    data.delete("files");
    data.delete("action");
    return data;
  }

  function attachmentItem(token, filename, size) {
    const li = document.createElement("li");
    li.dataset.token = token;
    const input = document.createElement("input");
    input.type = "hidden"; input.name = "attachment"; input.value = token;
    const name = document.createElement("span");
    name.className = "filename"; name.textContent = filename;
    const sizeLabel = document.createElement("span");
    sizeLabel.className = "muted"; sizeLabel.textContent = formatSize(size);
    const remove = document.createElement("button");
    remove.type = "button"; remove.className = "link-button remove-attachment";
    remove.setAttribute("aria-label", "Remove " + filename); remove.textContent = "✕";
    const clip = form.querySelector(".file-button svg");
    li.append(input, clip ? clip.cloneNode(true) : "", " ", name, " ", sizeLabel, " ", remove);
    return li;
  }

  function formatSize(size) {
    if (size < 1024) return size + " B";
    if (size < 1024 * 1024) return (size / 1024).toFixed(1) + " KB";
    return (size / 1024 / 1024).toFixed(1) + " MB";
  }

  async function save(reason) {
    if (saving || submitting || !dirty || pendingUploads) return;
    saving = true;
    dirty = false;
    const version = attachmentsVersion;
    try {
      const response = await fetch(form.dataset.autosaveUrl, {
        method: "POST", body: formData(), credentials: "same-origin",
        headers: { Accept: "application/json", "X-CSRFToken": csrf },
      });
      const data = await response.json();
      if (!response.ok || !data.ok) throw new Error(data.error || "Draft not saved");
      if (data.draft) {
        draftInput.value = data.draft;
        if (version === attachmentsVersion) {
          attachmentList.replaceChildren(...data.attachments.map((a) => attachmentItem(a.token, a.filename, a.size)));
        }
        if (status) status.textContent = "Draft saved " + new Date().toLocaleTimeString([], { hour: "2-digit", minute: "2-digit" });
      }
    } catch (error) {
      dirty = true;
      if (status) status.textContent = error.message;
    } finally {
      saving = false;
    }
  }

  setInterval(() => save("timer"), AUTOSAVE_MS);
  const flush = () => {
    if (!dirty || submitting || pendingUploads) return;
    dirty = false;
    navigator.sendBeacon(form.dataset.autosaveUrl, formData());
  };
  window.addEventListener("pagehide", flush);
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") flush(); });

  attachmentList.addEventListener("click", (event) => {
    const remove = event.target.closest(".remove-attachment");
    if (!remove) return;
    remove.closest("li").remove();
    attachmentsVersion += 1;
    markDirty();
  });

  function upload(file) {
    const row = document.createElement("li");
    const label = document.createElement("span");
    label.textContent = file.name;
    const bar = document.createElement("progress");
    bar.max = 100; bar.value = 0;
    row.append(label, bar);
    uploadList.append(row);
    pendingUploads += 1;
    updateSendState();
    const request = new XMLHttpRequest();
    request.open("POST", form.dataset.uploadUrl);
    request.setRequestHeader("X-CSRFToken", csrf);
    request.setRequestHeader("Accept", "application/json");
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) bar.value = Math.round((event.loaded / event.total) * 100);
    });
    request.addEventListener("loadend", () => {
      pendingUploads -= 1;
      let data = {};
      try { data = JSON.parse(request.responseText); } catch (e) { data = {}; }
      if (request.status === 200 && data.ok) {
        row.remove();
        attachmentList.append(attachmentItem(data.token, data.filename, data.size));
        attachmentsVersion += 1;
        markDirty();
      } else {
        bar.remove();
        label.textContent = file.name + ": " + (data.error || "upload failed");
        label.className = "field-error";
      }
      updateSendState();
    });
    const body = new FormData();
    body.append("file", file);
    request.send(body);
  }

  function updateSendState() {
    form.querySelectorAll("button[value=send]").forEach((b) => { b.disabled = pendingUploads > 0; });
  }

  fileInput.addEventListener("change", () => {
    Array.from(fileInput.files).forEach(upload);
    fileInput.value = "";
  });

  form.querySelectorAll("[data-reveal]").forEach((button) => button.addEventListener("click", () => {
    const row = document.getElementById(button.dataset.reveal);
    row.hidden = false;
    row.querySelector("input").focus();
    button.hidden = true;
  }));

  const sendAt = form.querySelector("input[name=send_at]");
  const sendAtUtc = form.querySelector("input[name=send_at_utc]");
  form.addEventListener("submit", (event) => {
    const button = event.submitter;
    if (pendingUploads && button && button.value === "send") { event.preventDefault(); return; }
    if (button && button.id === "schedule-button") {
      if (!sendAt.value) { event.preventDefault(); sendAt.focus(); return; }
      sendAtUtc.value = new Date(sendAt.value).toISOString();
    } else {
      sendAt.value = "";
      sendAtUtc.value = "";
    }
    submitting = true;
  });

  form.addEventListener("keydown", (event) => {
    if (event.key === "Enter" && (event.ctrlKey || event.metaKey)) {
      event.preventDefault();
      document.getElementById("send-button").click();
    }
  });

  const body = form.querySelector("textarea[name=body]");
  const to = form.querySelector("input[name=to]");
  if (to && !to.value) to.focus();
  else if (body) { body.focus(); body.setSelectionRange(0, 0); body.scrollTop = 0; }
})();

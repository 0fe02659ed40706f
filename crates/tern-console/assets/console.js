// Tern's console: progressive additions to server-rendered pages.
// Uploads with progress, and the replication lag chart. No framework.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const upload = document.getElementById("upload");
  if (upload) wireUpload(upload);
  const chart = document.getElementById("lag-chart");
  if (chart) drawLag(chart);
});

// Sends the chosen file as the body of one request, showing its progress,
// then reloads the listing. The session's CSRF token travels in a header.
function wireUpload(form) {
  const bar = document.getElementById("upload-progress");
  const status = document.getElementById("upload-status");
  form.hidden = false;
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const file = form.querySelector("input[type=file]").files[0];
    if (!file) { status.textContent = "Choose a file first."; return; }
    const key = form.dataset.prefix + file.name;
    const url = form.action + "?bucket=" + encodeURIComponent(form.dataset.bucket) +
      "&key=" + encodeURIComponent(key);
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("x-tern-csrf", form.dataset.csrf);
    request.upload.addEventListener("progress", (e) => {
      if (e.lengthComputable) bar.value = e.loaded / e.total;
    });
    request.addEventListener("load", () => {
      if (request.status === 200) {
        status.textContent = "Uploaded " + key + ".";
        window.location.reload();
      } else {
        status.textContent = "Refused: " + request.responseText;
      }
    });
    request.addEventListener("error", () => { status.textContent = "The upload failed."; });
    bar.value = 0;
    status.textContent = "Uploading " + key + "…";
    request.send(file);
  });
}

// Polls the bucket's replication state and plots PENDING versions and the
// oldest one's age over the last minutes.
function drawLag(svg) {
  const points = [];
  const width = 720, height = 180, keep = 90;
  const pending = document.getElementById("lag-pending");
  const oldest = document.getElementById("lag-oldest");
  const line = (values, max) => values.map((v, i) =>
    (i * width / (keep - 1)).toFixed(1) + "," + (height - 10 - (v / max) * (height - 20)).toFixed(1)).join(" ");
  const poll = async () => {
    try {
      const response = await fetch(svg.dataset.source, { credentials: "same-origin" });
      if (response.ok) {
        const report = await response.json();
        points.push([report.counts.PENDING, report.oldest_pending_seconds]);
        if (points.length > keep) points.shift();
        const max = Math.max(1, ...points.map((p) => Math.max(p[0], p[1])));
        pending.setAttribute("points", line(points.map((p) => p[0]), max));
        oldest.setAttribute("points", line(points.map((p) => p[1]), max));
        document.getElementById("lag-now").textContent =
          report.counts.PENDING + " pending, oldest " + report.oldest_pending_seconds + " s, " +
          report.counts.COMPLETED + " completed, " + report.counts.FAILED + " failed";
      }
    } catch (e) { /* the next poll tries again */ }
  };
  poll();
  setInterval(poll, 2000);
}

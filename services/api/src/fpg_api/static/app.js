// Face Privacy Guard: the upload page. Plain ES modules (this one and its strings), no
// dependencies, no build step. It talks to the gateway's own API only (same origin): POST
// /v1/images, /v1/videos and /v1/batches, then polls GET /v1/jobs/{id}, /v1/videos/{id} and
// /v1/batches/{id} until the work is finished.

import { STRINGS } from "./strings.js";

// ---------------------------------------------------------------------------------------------
// Settings, language, small helpers
// ---------------------------------------------------------------------------------------------
const LANGUAGE_KEY = "fpg.language";
const API_KEY_KEY = "fpg.apiKey"; // sessionStorage: forgotten when the tab closes
const UPLOADS_AT_ONCE = 3;
const IMAGE_NAME = /\.(jpe?g|png|webp)$/i;
const ZIP_NAME = /\.zip$/i;
const VIDEO_NAME = /\.(mp4|m4v|mov|mkv|webm|avi)$/i;
// Sent with videos only: the image and batch endpoints refuse a field they do not know.
const VIDEO_ONLY_OPTIONS = new Set(["audio"]);
const ZIP_TYPES = new Set(["application/zip", "application/x-zip-compressed", "application/x-zip"]);
const EXTENSION_FOR_TYPE = { "image/jpeg": "jpg", "image/png": "png", "image/webp": "webp" };
const SVG = "http://www.w3.org/2000/svg";

function positive(value) {
  const number = Number(value);
  return Number.isFinite(number) && number > 0 ? number : null;
}

const LIMITS = {
  image: positive(document.body.dataset.maxImageBytes),
  batch: positive(document.body.dataset.maxBatchBytes),
  entries: positive(document.body.dataset.maxBatchEntries),
  video: positive(document.body.dataset.maxVideoBytes),
  videoSeconds: positive(document.body.dataset.maxVideoSeconds),
  retention: positive(document.body.dataset.retentionSeconds) ?? 3600,
};

function storedLanguage() {
  try {
    return localStorage.getItem(LANGUAGE_KEY);
  } catch {
    return null; // storage blocked: fall back to the browser's language
  }
}

function browserLanguage() {
  const preferred = navigator.language || (navigator.languages || [])[0] || "en";
  return preferred.toLowerCase().startsWith("zh") ? "zh" : "en";
}

let language = STRINGS[storedLanguage()] ? storedLanguage() : browserLanguage();

function t(key, params = {}) {
  const template = STRINGS[language][key] ?? STRINGS.en[key] ?? key;
  return template.replace(/\{(\w+)\}/g, (whole, name) => (name in params ? params[name] : whole));
}

function formatNumber(value, digits = 1, minimumDigits = 0) {
  return new Intl.NumberFormat(language === "zh" ? "zh-CN" : "en", {
    minimumFractionDigits: minimumDigits,
    maximumFractionDigits: digits,
  }).format(value);
}

function formatBytes(bytes) {
  if (bytes == null) return "?";
  const units = [
    [1024 ** 3, "GB"],
    [1024 ** 2, "MB"],
    [1024, "KB"],
  ];
  for (const [size, unit] of units) {
    if (bytes >= size) return `${formatNumber(bytes / size)} ${unit}`;
  }
  return `${bytes} B`;
}

/** A span of time in the page's language, to the second under an hour ("1 min, 5 sec"), never
 * less than a second. */
function formatDuration(seconds) {
  if (seconds == null) return "?";
  const whole = Math.max(1, Math.round(seconds));
  const parts =
    whole >= 3600
      ? { hours: Math.floor(whole / 3600), minutes: Math.floor((whole % 3600) / 60) }
      : { minutes: Math.floor(whole / 60), seconds: whole % 60 };
  const locale = language === "zh" ? "zh-CN" : "en";
  return new Intl.DurationFormat(locale, { style: "short" }).format(parts);
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function element(tag, attributes = {}, ...children) {
  const node = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (name === "className") node.className = value;
    else if (value === true) node.setAttribute(name, "");
    else if (value !== false && value != null) node.setAttribute(name, value);
  }
  node.append(...children);
  return node;
}

function stem(name) {
  const base = name.split("/").pop();
  const dot = base.lastIndexOf(".");
  return dot > 0 ? base.slice(0, dot) : base;
}

function isZip(file) {
  return ZIP_NAME.test(file.name) || ZIP_TYPES.has(file.type);
}

function isVideo(file) {
  return VIDEO_NAME.test(file.name) || file.type.startsWith("video/");
}

// ---------------------------------------------------------------------------------------------
// Talking to the API, and turning its answers into words
// ---------------------------------------------------------------------------------------------
function parseJson(text) {
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** POST a form with upload progress (fetch cannot report it). Never rejects: status 0 is a
 * network failure, -1 an upload the user cancelled. */
function postForm(url, form, onProgress, registerAbort) {
  return new Promise((resolve) => {
    const request = new XMLHttpRequest();
    request.open("POST", url);
    request.setRequestHeader("Accept", "application/json");
    for (const [name, value] of Object.entries(authHeaders())) {
      request.setRequestHeader(name, value);
    }
    request.upload.addEventListener("progress", (event) => {
      if (event.lengthComputable) onProgress(event.loaded, event.total);
    });
    request.addEventListener("load", () =>
      resolve({ status: request.status, body: parseJson(request.responseText) }),
    );
    request.addEventListener("error", () => resolve({ status: 0, body: null }));
    request.addEventListener("timeout", () => resolve({ status: 0, body: null }));
    request.addEventListener("abort", () => resolve({ status: -1, body: null }));
    registerAbort(() => request.abort());
    request.send(form);
  });
}

async function getJson(url) {
  try {
    const response = await fetch(url, {
      headers: { Accept: "application/json", ...authHeaders() },
      cache: "no-store",
    });
    return { status: response.status, body: parseJson(await response.text()) };
  } catch {
    return { status: 0, body: null };
  }
}

/** The API key the user entered, as a header; none when the field is empty (local use). */
function authHeaders() {
  const key = ui.apiKey.value.trim();
  return key ? { Authorization: `Bearer ${key}` } : {};
}

/** A result the page may show or save: its own URL without a key, else a blob fetched with
 * the key (an <img> or a download link cannot send a header). Null when it cannot be had. */
async function resultUrl(url) {
  const headers = authHeaders();
  if (!headers.Authorization) return url;
  try {
    const response = await fetch(url, { headers, cache: "no-store" });
    return response.ok ? URL.createObjectURL(await response.blob()) : null;
  } catch {
    return null;
  }
}

function transient(status) {
  return status === 0 || status === 429 || status === 502 || status === 503 || status === 504;
}

/** An error to show: a dictionary key, its values, the server's own words, and whether trying
 * again may help. */
function problem(key, params = {}, detail = null, retryable = false) {
  return { key, params, detail, retryable };
}

function describeAnswer({ status, body }) {
  const code = body?.code;
  const detail = body?.message ?? null;
  if (status === 0) return problem("errNetwork", {}, null, true);
  if (status === 401) return problem("errKeyNeeded", {}, detail, true);
  if (status === 403) return problem("errKeyRole", {}, detail, true);
  if (transient(status)) return problem("errBusy", {}, detail, true);
  if (status === 413 && code === "too_many_entries") {
    return problem("errTooManyEntries", { limit: LIMITS.entries ?? "?" }, detail);
  }
  if (status === 413) {
    const stated = Number((detail ?? "").match(/(\d+) bytes/)?.[1]);
    return problem("errTooLarge", { limit: formatBytes(stated || null) }, detail);
  }
  if (status === 415) return problem("errNotImage", {}, detail);
  if (code === "invalid_zip") return problem("errInvalidZip", {}, detail);
  if (code === "empty_file") return problem("errEmptyFile", {}, detail);
  if (code === "validation_error") {
    const fields = (body.details ?? []).map((item) => item.field).join(", ");
    return problem("errBadOption", { fields }, detail);
  }
  if (code === "unprocessable_image" || code === "job_failed") return describeFailure(detail);
  if (status === 404) return problem("errExpired", {}, detail);
  if (status >= 500) return problem("errServer", {}, detail, true);
  return problem("errUnexpected", { status }, detail, true);
}

/** A job the worker marked failed; its error names the reason in English. */
function describeFailure(error) {
  const text = error ?? "";
  if (/pixels/.test(text)) return problem("errTooManyPixels", {}, text);
  if (/time limit/.test(text)) return problem("errTookTooLong", {}, text, true);
  if (/expired|deleted/.test(text)) return problem("errExpired", {}, text);
  if (/internal error/.test(text)) return problem("errServer", {}, text, true);
  if (/not a JPEG/.test(text)) return problem("errNotImage", {}, text);
  if (/empty/.test(text)) return problem("errEmptyFile", {}, text);
  return problem("errUnreadable", {}, text);
}

/** An answer about a video, in a video's words; the rest as for any file. */
function describeVideoAnswer(answer) {
  const code = answer.body?.code;
  const detail = answer.body?.message ?? null;
  if (answer.status === 415) return problem("errNotVideo", {}, detail);
  if (code === "video_too_large" && /pixels/.test(detail ?? "")) {
    return problem("errFramesTooLarge", {}, detail);
  }
  if (code === "unreadable_video") return problem("errUnreadableVideo", {}, detail);
  if (code === "video_too_long") {
    return problem("errTooLong", { limit: formatDuration(LIMITS.videoSeconds) }, detail);
  }
  return describeAnswer(answer);
}

/** A video the worker marked failed; its error names the reason in English. */
function describeVideoFailure(error) {
  const text = error ?? "";
  if (/expired|deleted/.test(text)) return problem("errExpired", {}, text);
  if (/internal error|time limit/.test(text)) return problem("errServer", {}, text, true);
  return problem("errUnreadableVideo", {}, text);
}

// ---------------------------------------------------------------------------------------------
// The page's elements
// ---------------------------------------------------------------------------------------------
const ui = {
  fileInput: document.getElementById("file-input"),
  folderInput: document.getElementById("folder-input"),
  dropzone: document.getElementById("dropzone"),
  notice: document.getElementById("notice"),
  options: document.getElementById("options"),
  mode: document.getElementById("opt-mode"),
  strength: document.getElementById("opt-strength"),
  strengthOut: document.getElementById("out-strength"),
  padding: document.getElementById("opt-padding"),
  paddingOut: document.getElementById("out-padding"),
  resultsSection: document.getElementById("results-section"),
  results: document.getElementById("results"),
  overall: document.getElementById("overall-progress"),
  overallText: document.getElementById("overall-text"),
  outlineToggle: document.getElementById("outline-toggle"),
  removeAll: document.getElementById("remove-all"),
  languageToggle: document.getElementById("lang-toggle"),
  apiKey: document.getElementById("api-key"),
};

let noticeState = null; // { key, params } of the page-level message, kept to re-translate it

function showNotice(key, params = {}) {
  noticeState = key ? { key, params } : null;
  ui.notice.hidden = !key;
  ui.notice.textContent = key ? t(key, params) : "";
}

function facesText(count) {
  if (count === 0) return t("facesNone");
  return count === 1 ? t("facesOne") : t("facesMany", { count });
}

// ---------------------------------------------------------------------------------------------
// One card per file: an image (before and after) or a ZIP batch (progress and a ZIP to download)
// ---------------------------------------------------------------------------------------------
const items = new Set();
const waiting = [];
let uploading = 0;

function pump() {
  while (uploading < UPLOADS_AT_ONCE && waiting.length) {
    const item = waiting.shift();
    if (item.removed) continue;
    uploading += 1;
    let released = false;
    const release = () => {
      if (!released) {
        released = true;
        uploading -= 1;
        pump();
      }
    };
    item.run(release).finally(release);
  }
}

class Item {
  constructor(file, name, params) {
    this.file = file;
    this.name = name;
    this.params = params; // the option values when the file was added: [[name, value], ...]
    this.state = "waiting"; // waiting | uploading | queued | running | done | failed
    this.uploaded = 0; // the fraction of the request sent
    this.sent = null; // { loaded, total } bytes of the request, once the browser reports them
    this.problem = null;
    this.removed = false;
    this.generation = 0; // bumped by "Try again", so a stale poll loop stops
    this.abort = () => {};
    this.build();
    items.add(this);
    ui.results.append(this.node);
  }

  build() {
    this.title = element("h3", { className: "file-name", title: this.name }, this.name);
    this.status = element("span", { className: "status" }); // the overall count is announced
    this.progress = element("progress", { "data-testid": "progress", max: "100", value: "0" });
    this.errorText = element("span");
    this.errorDetail = element("span", { className: "detail" });
    this.error = element(
      "p",
      { className: "error", "data-testid": "error", role: "alert", hidden: true },
      this.errorText,
      this.errorDetail,
    );
    this.download = element("a", {
      className: "button primary",
      "data-testid": "download",
      hidden: true,
    });
    this.retryButton = element("button", {
      type: "button",
      className: "button secondary",
      hidden: true,
    });
    this.removeButton = element("button", { type: "button", className: "button ghost" });
    this.retryButton.addEventListener("click", () => this.retry());
    this.removeButton.addEventListener("click", () => this.remove());
    this.actions = element(
      "div",
      { className: "actions" },
      this.download,
      this.retryButton,
      this.removeButton,
    );
    this.faces = element("span", { className: "faces", "data-testid": "face-count", hidden: true });
    this.head = element(
      "div",
      { className: "card-head" },
      element("div", { className: "card-title" }, this.title, this.status, this.faces),
      this.actions,
    );
    this.node = element("li", { className: "card" }, this.head, this.progress, this.error);
  }

  set(changes) {
    Object.assign(this, changes);
    this.render();
    renderOverall();
  }

  get finished() {
    return this.state === "done" || this.state === "failed";
  }

  form() {
    const form = new FormData();
    form.append("file", this.file, this.file.name);
    for (const [name, value] of this.params) {
      if (this.takesOption(name)) form.append(name, value);
    }
    return form;
  }

  /** Whether this kind of file's endpoint takes the option `name`. */
  takesOption(name) {
    return !VIDEO_ONLY_OPTIONS.has(name);
  }

  /** The words for an answer that is not what was hoped for. */
  describe(answer) {
    return describeAnswer(answer);
  }

  /** Refuse an oversize file before sending a byte of it. */
  tooLarge(limit) {
    if (limit != null && this.file.size > limit) {
      this.fail(problem("errTooLarge", { limit: formatBytes(limit) }));
      return true;
    }
    return false;
  }

  async upload(url, release) {
    this.set({ state: "uploading", uploaded: 0, sent: null, problem: null });
    const answer = await postForm(
      url,
      this.form(),
      (loaded, total) => this.set({ uploaded: loaded / total, sent: { loaded, total } }),
      (abort) => {
        this.abort = abort;
      },
    );
    release();
    if (this.removed || answer.status === -1) return null;
    if (answer.status !== 202 || !answer.body?.id) {
      this.fail(this.describe(answer));
      return null;
    }
    return answer.body;
  }

  /** The finished result's URL for a player or a download link (see resultUrl); null, with the
   * card failed, when it is gone. */
  async fetchResult() {
    const url = await resultUrl(`${this.serverUrl}/result`);
    if (url === null) {
      this.fail(problem("errExpired"));
      return null;
    }
    if (url.startsWith("blob:")) this.resultObjectUrl = url;
    return url;
  }

  /** A photo or a video: upload it to `endpoint`, then follow its status under `statusPath`
   * until it is done (`finish`) or failed (`failure` puts the worker's reason into words). */
  async follow(release, limit, endpoint, statusPath, failure) {
    if (this.tooLarge(limit)) return;
    const accepted = await this.upload(endpoint, release);
    if (!accepted) return;
    this.serverUrl = `${statusPath}/${accepted.id}`;
    this.set({ state: accepted.status === "running" ? "running" : "queued", latest: null });
    await this.poll(this.serverUrl, (latest) => {
      if (latest.status === "done") {
        this.finish(latest);
        return true;
      }
      if (latest.status === "failed") {
        this.fail(failure(latest.error));
        return true;
      }
      this.set({ state: latest.status, latest });
      return false;
    });
  }

  /** Poll `url` until `step` says the work is over; a few network hiccups are tolerated. */
  async poll(url, step) {
    const generation = this.generation;
    let delay = 200;
    let misses = 0;
    while (!this.removed && generation === this.generation) {
      await sleep(delay);
      delay = Math.min(delay * 1.4, 1500);
      const answer = await getJson(url);
      if (this.removed || generation !== this.generation) return;
      if (answer.status === 200 && answer.body) {
        misses = 0;
        if (step(answer.body)) return;
      } else if (transient(answer.status) && misses < 10) {
        misses += 1;
      } else {
        this.fail(this.describe(answer));
        return;
      }
    }
  }

  fail(found) {
    this.set({ state: "failed", problem: found });
  }

  retry() {
    this.generation += 1;
    this.set({ state: "waiting", problem: null, uploaded: 0, serverUrl: null, latest: null });
    waiting.push(this);
    pump();
  }

  remove() {
    this.removed = true;
    this.abort();
    if (this.serverUrl) {
      fetch(this.serverUrl, { method: "DELETE", headers: authHeaders() }).catch(() => {});
    }
    items.delete(this);
    this.node.remove();
    this.dispose();
    renderOverall();
  }

  dispose() {
    if (this.resultObjectUrl) URL.revokeObjectURL(this.resultObjectUrl);
  }

  statusText() {
    switch (this.state) {
      case "uploading":
        return t("statusUploading", { percent: Math.round(this.uploaded * 100) });
      case "queued":
        return t("statusQueued");
      case "running":
        return t("statusRunning");
      case "done":
        return t("statusDone");
      case "failed":
        return t("statusFailed");
      default:
        return t("statusWaiting");
    }
  }

  render() {
    this.node.dataset.state = this.state;
    this.status.textContent = this.statusText();
    this.progress.setAttribute("aria-label", `${this.name}: ${this.statusText()}`);
    this.progress.classList.toggle("failed", this.state === "failed");
    this.error.hidden = !this.problem;
    this.errorText.textContent = this.problem ? t(this.problem.key, this.problem.params) : "";
    this.errorDetail.textContent = this.problem?.detail
      ? t("details", { message: this.problem.detail })
      : "";
    this.retryButton.hidden = !(this.state === "failed" && this.problem?.retryable);
    this.retryButton.textContent = t("retry");
    this.removeButton.textContent = t("remove");
    this.removeButton.setAttribute("aria-label", `${t("remove")}: ${this.name}`);
  }

  /** The link to the result, once it is in; `label` is its dictionary key. */
  renderDownload(label) {
    this.download.hidden = this.state !== "done";
    this.download.textContent = t(label);
    this.download.setAttribute("aria-label", `${t(label)}: ${this.name}`);
  }

  /** How many faces were found; hidden while `count` is unknown (null). */
  renderFaces(count) {
    this.faces.hidden = count == null;
    if (count == null) return;
    this.faces.dataset.count = String(count);
    this.faces.textContent = facesText(count);
    this.faces.classList.toggle("none", count === 0);
  }
}

class ImageItem extends Item {
  build() {
    super.build();
    this.node.classList.add("image-card");

    this.objectUrl = URL.createObjectURL(this.file);
    this.before = element("img", { className: "photo", src: this.objectUrl, alt: "" });
    this.beforeMissing = element("span", { className: "placeholder", hidden: true });
    this.before.addEventListener("error", () => {
      this.before.hidden = true;
      this.beforeMissing.hidden = false;
    });
    this.beforeCaption = element("figcaption");

    this.after = element("img", {
      className: "photo",
      "data-testid": "result-image",
      alt: "",
      hidden: true,
    });
    this.outlines = document.createElementNS(SVG, "svg");
    this.outlines.setAttribute("class", "outlines");
    this.outlines.setAttribute("aria-hidden", "true");
    this.outlines.setAttribute("data-testid", "outlines");
    this.outlines.setAttribute("preserveAspectRatio", "none");
    this.afterPending = element("span", { className: "placeholder" });
    this.afterCaption = element("figcaption");
    this.after.addEventListener("load", () => this.drawOutlines());
    this.after.addEventListener("error", () => {
      if (this.state === "done") this.fail(problem("errExpired"));
    });

    this.compare = element(
      "div",
      { className: "compare" },
      element(
        "figure",
        {},
        element(
          "div",
          { className: "frame" },
          element("div", { className: "stack" }, this.before),
          this.beforeMissing,
        ),
        this.beforeCaption,
      ),
      element(
        "figure",
        {},
        element(
          "div",
          { className: "frame" },
          element("div", { className: "stack" }, this.after, this.outlines),
          this.afterPending,
        ),
        this.afterCaption,
      ),
    );
    this.node.append(this.compare);
  }

  run(release) {
    return this.follow(release, LIMITS.image, "v1/images", "v1/jobs", describeFailure);
  }

  async finish(job) {
    this.job = job;
    const extension = EXTENSION_FOR_TYPE[job.content_type] ?? "jpg";
    const url = await this.fetchResult();
    if (url === null) return;
    this.after.src = url;
    this.download.href = url;
    this.download.download = `${stem(this.name)}-anonymized.${extension}`;
    this.set({ state: "done" });
  }

  drawOutlines() {
    const { naturalWidth: width, naturalHeight: height } = this.after;
    this.outlines.setAttribute("viewBox", `0 0 ${width} ${height}`);
    this.outlines.replaceChildren();
    for (const [x, y, w, h] of this.job?.regions ?? []) {
      for (const kind of ["halo", "box"]) {
        const rect = document.createElementNS(SVG, "rect");
        for (const [name, value] of Object.entries({ x, y, width: w, height: h, class: kind })) {
          rect.setAttribute(name, value);
        }
        this.outlines.append(rect);
      }
    }
  }

  retry() {
    this.job = null;
    this.after.removeAttribute("src");
    super.retry();
  }

  dispose() {
    URL.revokeObjectURL(this.objectUrl);
    super.dispose();
  }

  render() {
    super.render();
    const done = this.state === "done";
    // Uploading fills the first half; then queued, running, finished.
    const steps = { waiting: 0, uploading: 5 + 45 * this.uploaded, queued: 60, running: 80 };
    const value = steps[this.state];
    this.progress.max = 100;
    this.progress.value = value ?? 100;
    this.compare.hidden = this.state === "failed"; // the message says it all; no empty frames
    this.after.hidden = !done;
    this.afterPending.hidden = done;
    this.afterPending.textContent = t("afterPending");
    this.beforeMissing.textContent = t("noPreview");
    this.before.alt = t("beforeAlt", { name: this.name });
    this.after.alt = t("afterAlt", { name: this.name });
    this.beforeCaption.textContent = t("before");
    this.afterCaption.textContent = t("after");
    this.renderDownload("download");
    this.renderFaces(done ? (this.job.faces ?? 0) : null);
  }
}

class BatchItem extends Item {
  build() {
    super.build();
    this.node.classList.add("batch-card");
    this.title.prepend(element("span", { className: "badge" }, STRINGS.en.zipBadge), " ");
    this.counts = element("p", { className: "counts", hidden: true });
    this.node.append(this.counts);
  }

  async run(release) {
    if (this.tooLarge(LIMITS.batch)) return;
    const accepted = await this.upload("v1/batches", release);
    if (!accepted) return;
    this.serverUrl = `v1/batches/${accepted.id}`;
    const total = accepted.total;
    const summary = { total, done: 0, failed: 0, skipped: 0, pending: total, faces: 0 };
    this.set({ state: "running", summary });
    await this.poll(this.serverUrl, (summary) => {
      if (summary.finished) {
        this.finish(summary);
        return true;
      }
      this.set({ summary });
      return false;
    });
  }

  async finish(summary) {
    const url = await this.fetchResult();
    if (url === null) return;
    this.download.href = url;
    this.download.download = `${stem(this.name)}-anonymized.zip`;
    this.set({ state: "done", summary });
  }

  retry() {
    this.summary = null;
    super.retry();
  }

  statusText() {
    if ((this.state === "running" || this.state === "done") && this.summary) {
      const { total, pending } = this.summary;
      return t("statusBatch", { processed: total - pending, total });
    }
    return super.statusText();
  }

  render() {
    super.render();
    const summary = this.summary;
    if (summary && (this.state === "running" || this.state === "done")) {
      this.progress.max = Math.max(summary.total, 1);
      this.progress.value = summary.total === 0 ? 1 : summary.total - summary.pending;
    } else {
      this.progress.max = 100;
      const steps = { uploading: 100 * this.uploaded, failed: 100 };
      this.progress.value = steps[this.state] ?? 0;
    }
    this.counts.hidden = !summary;
    if (summary) this.counts.textContent = t("batchCounts", summary);
    this.renderFaces(summary ? summary.faces : null);
    this.renderDownload("downloadZip");
  }
}

class VideoItem extends Item {
  build() {
    super.build();
    this.node.classList.add("video-card");
    this.badge = element("span", { className: "badge" });
    this.title.prepend(this.badge, " ");
    this.detail = element("p", { className: "counts", "data-testid": "progress-detail" });
    this.player = element("video", {
      className: "player",
      "data-testid": "result-video",
      controls: true,
      preload: "metadata",
      playsinline: true,
      hidden: true,
    });
    this.playerPending = element("span", { className: "placeholder" });
    this.player.addEventListener("error", () => this.playbackFailed());
    this.screen = element("div", { className: "frame" }, this.player, this.playerPending);
    this.node.append(this.detail, this.screen);
  }

  takesOption() {
    return true;
  }

  describe(answer) {
    return describeVideoAnswer(answer);
  }

  run(release) {
    return this.follow(release, LIMITS.video, "v1/videos", "v1/videos", describeVideoFailure);
  }

  async finish(latest) {
    const url = await this.fetchResult();
    if (url === null) return;
    this.player.src = url;
    this.download.href = url;
    // The result is written in the container it came in.
    const extension = VIDEO_NAME.exec(this.name)?.[1].toLowerCase() ?? "mp4";
    this.download.download = `${stem(this.name)}-anonymized.${extension}`;
    this.set({ state: "done", latest, playable: true });
  }

  /** The player refused the result: gone from the server (the card fails), or a kind of video
   * this browser does not play (the download still works). */
  async playbackFailed() {
    if (this.state !== "done") return;
    const answer = await getJson(this.serverUrl);
    if (answer.status === 200) this.set({ playable: false });
    else this.fail(this.describe(answer));
  }

  retry() {
    this.player.removeAttribute("src");
    super.retry();
  }

  statusText() {
    if (this.state === "running" && this.latest) {
      return t("statusAnonymizing", { percent: formatNumber(this.latest.percent ?? 0, 0) });
    }
    return super.statusText();
  }

  /** Bytes sent while uploading; frames and time left while the worker runs. */
  detailText() {
    const { state, sent, latest: video } = this;
    if (state === "uploading" && sent) {
      return t("bytesSent", { sent: formatBytes(sent.loaded), total: formatBytes(sent.total) });
    }
    if (state !== "running" || !video?.frames_total) return "";
    const frames = t("framesDone", { done: video.frames_done, total: video.frames_total });
    if (video.seconds_left == null) return frames;
    return `${frames} · ${t("timeLeft", { time: formatDuration(video.seconds_left) })}`;
  }

  render() {
    super.render();
    const done = this.state === "done";
    this.badge.textContent = t("videoBadge");
    // Each stage fills the bar once: the upload's bytes, then the worker's frames.
    const steps = { uploading: 100 * this.uploaded, running: this.latest?.percent ?? 0 };
    this.progress.max = 100;
    this.progress.value = done || this.state === "failed" ? 100 : (steps[this.state] ?? 0);
    this.detail.textContent = this.detailText();
    this.detail.hidden = !this.detail.textContent;
    this.screen.hidden = this.state === "failed";
    this.player.hidden = !done || !this.playable;
    this.player.setAttribute("aria-label", t("afterAlt", { name: this.name }));
    // Until the result is in, what will be there; after, why it cannot be shown, if it cannot.
    this.playerPending.hidden = done && this.playable;
    this.playerPending.textContent = t(done ? "noPlayback" : "videoPending");
    this.renderDownload("download");
    // A track is one face followed through the frames: the number of people, not sightings.
    this.renderFaces(done ? (this.latest.tracks ?? 0) : null);
  }
}

function renderOverall() {
  const all = [...items];
  ui.resultsSection.hidden = all.length === 0;
  const finished = all.filter((item) => item.finished).length;
  ui.overall.max = Math.max(all.length, 1);
  ui.overall.value = finished;
  ui.overallText.textContent = t("overall", { finished, total: all.length });
}

// ---------------------------------------------------------------------------------------------
// Adding files: picked, dropped (folders too) or chosen as a folder
// ---------------------------------------------------------------------------------------------
function optionValues() {
  return [...new FormData(ui.options).entries()].map(([name, value]) => [name, String(value)]);
}

/** Files from a folder keep only photos, videos and ZIPs; hidden files are ignored silently. */
function fromFolder(file, path, accepted, skipped) {
  const base = path.split("/").pop();
  if (base.startsWith(".")) return;
  if (IMAGE_NAME.test(base) || isVideo(file) || isZip(file)) accepted.push({ file, name: path });
  else skipped.push(path);
}

function addFiles(entries, skipped = [], fromFolders = false) {
  if (skipped.length) {
    const names = skipped.slice(0, 5).join(", ") + (skipped.length > 5 ? ", …" : "");
    showNotice("skippedFiles", { count: skipped.length, names });
  } else if (fromFolders && entries.length === 0) {
    showNotice("errFolderEmpty");
  } else {
    showNotice(null);
  }
  const params = optionValues();
  for (const { file, name } of entries) {
    const Kind = isZip(file) ? BatchItem : isVideo(file) ? VideoItem : ImageItem;
    const item = new Kind(file, name, params);
    item.render();
    waiting.push(item);
  }
  renderOverall();
  pump();
}

function readEntries(reader) {
  return new Promise((resolve, reject) => reader.readEntries(resolve, reject));
}

async function walk(entry, accepted, skipped) {
  if (entry.isFile) {
    const file = await new Promise((resolve, reject) => entry.file(resolve, reject));
    fromFolder(file, entry.fullPath.replace(/^\//, ""), accepted, skipped);
  } else if (entry.isDirectory) {
    const reader = entry.createReader();
    for (let batch = await readEntries(reader); batch.length; batch = await readEntries(reader)) {
      for (const child of batch) await walk(child, accepted, skipped);
    }
  }
}

async function onDrop(dataTransfer) {
  // The items are only readable during the drop event: take everything synchronously first.
  const files = [];
  const folders = [];
  for (const item of dataTransfer.items ?? []) {
    if (item.kind !== "file") continue;
    const entry = item.webkitGetAsEntry?.();
    if (entry?.isDirectory) folders.push(entry);
    else {
      const file = item.getAsFile();
      if (file) files.push({ file, name: file.name });
    }
  }
  if (!dataTransfer.items) {
    for (const file of dataTransfer.files) files.push({ file, name: file.name });
  }
  const skipped = [];
  for (const folder of folders) {
    try {
      await walk(folder, files, skipped);
    } catch {
      // an unreadable folder adds nothing
    }
  }
  addFiles(files, skipped, folders.length > 0);
}

function setUpDropping() {
  let depth = 0;
  const hasFiles = (event) => [...(event.dataTransfer?.types ?? [])].includes("Files");
  window.addEventListener("dragenter", (event) => {
    if (!hasFiles(event)) return;
    depth += 1;
    ui.dropzone.classList.add("dragging");
  });
  window.addEventListener("dragleave", () => {
    depth = Math.max(0, depth - 1);
    if (depth === 0) ui.dropzone.classList.remove("dragging");
  });
  window.addEventListener("dragover", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault(); // the whole window accepts the drop; never navigate to the file
    event.dataTransfer.dropEffect = "copy";
  });
  window.addEventListener("drop", (event) => {
    if (!hasFiles(event)) return;
    event.preventDefault();
    depth = 0;
    ui.dropzone.classList.remove("dragging");
    onDrop(event.dataTransfer);
  });
}

// ---------------------------------------------------------------------------------------------
// Options, language, start-up
// ---------------------------------------------------------------------------------------------
function syncOptions() {
  ui.strengthOut.value = `${formatNumber(Number(ui.strength.value), 1, 1)}×`;
  ui.paddingOut.value = `${formatNumber(Number(ui.padding.value), 1, 1)}×`;
  // A solid fill has no strength: disabled fields are not sent, so the server keeps its default.
  const fill = ui.mode.value === "fill";
  ui.strength.disabled = fill;
  document.getElementById("strength-field").classList.toggle("disabled", fill);
}

function applyLanguage() {
  document.documentElement.lang = language === "zh" ? "zh-CN" : "en";
  document.title = t("pageTitle");
  const values = {
    image: formatBytes(LIMITS.image),
    batch: formatBytes(LIMITS.batch),
    video: formatBytes(LIMITS.video),
    duration: formatDuration(LIMITS.videoSeconds),
    minutes: formatNumber(LIMITS.retention / 60, 0),
  };
  for (const node of document.querySelectorAll("[data-i18n]")) {
    node.textContent = t(node.dataset.i18n, values);
  }
  ui.languageToggle.textContent = t("otherLanguage");
  ui.languageToggle.lang = language === "zh" ? "en" : "zh-CN";
  ui.languageToggle.setAttribute("aria-label", t("switchLanguage"));
  if (noticeState) showNotice(noticeState.key, noticeState.params);
  syncOptions();
  for (const item of items) item.render();
  renderOverall();
}

function setLanguage(next) {
  language = next;
  try {
    localStorage.setItem(LANGUAGE_KEY, next);
  } catch {
    // not remembered, still switched
  }
  applyLanguage();
}

function start() {
  ui.fileInput.addEventListener("change", () => {
    addFiles([...ui.fileInput.files].map((file) => ({ file, name: file.name })));
    ui.fileInput.value = ""; // the same file can be picked again
  });
  ui.folderInput.addEventListener("change", () => {
    const accepted = [];
    const skipped = [];
    for (const file of ui.folderInput.files) {
      fromFolder(file, file.webkitRelativePath || file.name, accepted, skipped);
    }
    addFiles(accepted, skipped, true);
    ui.folderInput.value = "";
  });
  ui.options.addEventListener("input", syncOptions);
  ui.options.addEventListener("reset", () => setTimeout(syncOptions));
  ui.outlineToggle.addEventListener("change", () => {
    ui.results.classList.toggle("show-outlines", ui.outlineToggle.checked);
  });
  ui.removeAll.addEventListener("click", () => {
    for (const item of [...items]) item.remove();
    showNotice(null);
  });
  ui.languageToggle.addEventListener("click", () => setLanguage(language === "zh" ? "en" : "zh"));
  try {
    ui.apiKey.value = sessionStorage.getItem(API_KEY_KEY) ?? "";
  } catch {
    // storage blocked: the key is typed again after a reload
  }
  ui.apiKey.addEventListener("change", () => {
    try {
      sessionStorage.setItem(API_KEY_KEY, ui.apiKey.value.trim());
    } catch {
      // not remembered, still used
    }
  });
  setUpDropping();
  applyLanguage();
  document.body.dataset.ready = "true";
}

start();

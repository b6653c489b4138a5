/*
 * offchat-notify's inbox client: a live unread badge and a drop-down list.
 * No dependencies, no build step. {% notification_inbox %} loads it; it sets
 * window.OffchatInbox and mounts every element with a data-offchat-inbox
 * attribute. Without the markup (React, Vue...), use the headless part:
 *
 *   const inbox = OffchatInbox.connect({ base: "/notifications/" });
 *   document.addEventListener("offchat:unread", (e) => show(e.detail.unread));
 *   inbox.markRead(id); inbox.markAllRead(); inbox.close();
 *
 * Events, bubbling CustomEvents dispatched on `target` (the mounted element,
 * else document):
 *   offchat:notification  detail {item, unread}  a notification newer than any seen
 *   offchat:unread        detail {unread}        the unread count changed
 *   offchat:items         detail {items}         the list changed (newest first)
 *   offchat:mode          detail {mode}          "stream", "polling" or "closed"
 *
 * It listens to the stream (EventSource). When the stream fails or answers an
 * error (under WSGI, over the per-user connection cap...), it polls unread/
 * every pollInterval ms, backs off on errors, and tries the stream again
 * later. Server data is only ever set as text, never parsed as HTML.
 */
(function (root) {
  "use strict";

  const DEFAULTS = {
    limit: 10, // items kept and shown
    pollInterval: 15000, // ms between two polls of unread/
    maxPollInterval: 120000, // ms: the longest wait after failed polls
    streamRetry: 30000, // ms before trying the stream again after it failed
    maxStreamRetry: 600000, // ms: the longest wait between two stream attempts
    streamTimeout: 10000, // ms for the stream to open (a buffering proxy may hold it) before polling
  };

  function cookie(name) {
    const match = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return match ? decodeURIComponent(match[1]) : "";
  }

  function withQuery(url, params) {
    const full = new URL(url, document.baseURI);
    for (const [key, value] of Object.entries(params)) {
      if (value !== null && value !== undefined) full.searchParams.set(key, value);
    }
    return full.href;
  }

  /** The URLs of an include mounted at `base` ("/notifications/"), then `urls` on top. */
  function endpoints(base, urls) {
    const derived = base
      ? {
          list: base,
          unread: base + "unread/",
          read: base + "{id}/read/",
          readAll: base + "read/",
          stream: base + "stream/",
        }
      : {};
    return Object.assign(derived, urls || {});
  }

  /** Keep the unread count and the newest items; no DOM. Returns the inbox's handle. */
  function connect(options) {
    const opts = Object.assign({}, DEFAULTS, options || {});
    const urls = endpoints(opts.base, opts.urls);
    const target = opts.target || document;
    const state = { unread: null, items: [], lastId: null, mode: "closed", closed: false, loaded: false };
    let source = null;
    let pollTimer = null;
    let retryTimer = null;
    let openTimer = null;
    let pollDelay = opts.pollInterval;
    let retryDelay = opts.streamRetry;

    const emit = (name, detail) =>
      target.dispatchEvent(new CustomEvent("offchat:" + name, { bubbles: true, detail }));
    const emitItems = () => emit("items", { items: state.items.slice() });

    function setMode(mode) {
      if (state.mode === mode) return;
      state.mode = mode;
      emit("mode", { mode });
    }

    function setUnread(count) {
      if (typeof count !== "number" || count === state.unread) return;
      state.unread = Math.max(0, count);
      emit("unread", { unread: state.unread });
    }

    function request(url, method) {
      const init = { method: method || "GET", credentials: "same-origin", headers: { Accept: "application/json" } };
      if (init.method !== "GET") {
        init.headers["X-CSRFToken"] = opts.csrfToken || cookie("csrftoken");
        init.keepalive = true; // a click on an item's link leaves the page at once
      }
      return fetch(url, init).then((response) => {
        if (!response.ok) throw new Error(init.method + " " + url + ": HTTP " + response.status);
        return response.json();
      });
    }

    // Newer than any item seen so far? (The first load announces nothing.)
    function isNew(item) {
      return state.lastId === null || item.id > state.lastId;
    }

    function remember(id) {
      if (state.lastId === null || id > state.lastId) state.lastId = id;
    }

    /** Reload the newest items and the count; announce the ones newer than any seen. */
    function refresh() {
      return request(withQuery(urls.list, { limit: opts.limit })).then((page) => {
        const newest = page.results.length ? page.results[0].id : 0;
        const later = state.items.filter((item) => item.id > newest); // from the stream, meanwhile
        const fresh = state.lastId === null ? [] : page.results.filter(isNew);
        state.items = later.concat(page.results).slice(0, opts.limit);
        state.loaded = true;
        remember(newest);
        setUnread(page.unread);
        fresh.reverse().forEach((item) => emit("notification", { item, unread: state.unread }));
        emitItems();
      });
    }

    function receive(event) {
      const item = JSON.parse(event.data);
      const unread = item.unread;
      delete item.unread;
      const announce = isNew(item);
      remember(item.id);
      state.items = [item]
        .concat(state.items.filter((known) => known.id !== item.id))
        .sort((a, b) => b.id - a.id)
        .slice(0, opts.limit);
      setUnread(unread);
      if (announce) emit("notification", { item, unread: state.unread });
      emitItems();
    }

    function openStream() {
      retryTimer = null;
      if (state.closed) return;
      if (!urls.stream || typeof EventSource === "undefined") return startPolling();
      source = new EventSource(withQuery(urls.stream, { last_event_id: state.lastId }));
      source.addEventListener("notification", receive);
      clearTimeout(openTimer);
      openTimer = setTimeout(startPolling, opts.streamTimeout);
      source.onopen = () => {
        clearTimeout(openTimer);
        stopPolling();
        retryDelay = opts.streamRetry;
        setMode("stream");
        refresh().catch(warn); // what arrived while nothing listened
      };
      source.onerror = () => {
        // CONNECTING: the browser reconnects by itself, with Last-Event-ID; poll
        // meanwhile. CLOSED: an error answer (no ASGI, 401, 429): poll, retry later.
        startPolling();
        if (source && source.readyState === EventSource.CLOSED) {
          source = null;
          retryTimer = setTimeout(openStream, retryDelay);
          retryDelay = Math.min(retryDelay * 2, opts.maxStreamRetry);
        }
      };
    }

    function poll() {
      pollTimer = null;
      if (state.mode !== "polling") return;
      if (document.hidden) return schedulePoll(); // a hidden tab asks nothing
      request(urls.unread)
        .then((answer) => {
          pollDelay = opts.pollInterval;
          if (answer.unread !== state.unread) return refresh();
        })
        .catch((error) => {
          pollDelay = Math.min(pollDelay * 2, opts.maxPollInterval);
          warn(error);
        })
        .then(schedulePoll);
    }

    function schedulePoll() {
      if (state.mode === "polling" && pollTimer === null) pollTimer = setTimeout(poll, pollDelay);
    }

    function startPolling() {
      if (state.closed || state.mode === "polling") return;
      setMode("polling");
      pollDelay = opts.pollInterval;
      if (!state.loaded) refresh().catch(warn);
      schedulePoll();
    }

    function stopPolling() {
      clearTimeout(pollTimer);
      pollTimer = null;
    }

    // Back on the tab: ask now (polling), or catch up on reads made in other tabs (stream).
    function onVisibility() {
      if (document.hidden) return;
      if (state.mode === "polling") {
        stopPolling();
        poll();
      } else if (state.mode === "stream") {
        refresh().catch(warn);
      }
    }

    function markRead(id) {
      return request(urls.read.replace("{id}", encodeURIComponent(id)), "POST").then((answer) => {
        const item = state.items.find((known) => known.id === id);
        const wasUnread = Boolean(item && !item.read_at);
        if (wasUnread) item.read_at = (answer && answer.read_at) || new Date().toISOString();
        emitItems();
        if (answer && typeof answer.unread === "number") setUnread(answer.unread);
        else if (wasUnread) setUnread(state.unread - 1);
        return answer;
      });
    }

    function markAllRead() {
      return request(urls.readAll, "POST").then((answer) => {
        const now = new Date().toISOString();
        state.items.forEach((item) => (item.read_at = item.read_at || now));
        emitItems();
        setUnread(answer && typeof answer.unread === "number" ? answer.unread : 0);
        return answer;
      });
    }

    function close() {
      state.closed = true;
      stopPolling();
      clearTimeout(retryTimer);
      clearTimeout(openTimer);
      if (source) source.close();
      source = null;
      document.removeEventListener("visibilitychange", onVisibility);
      setMode("closed");
    }

    if (typeof opts.unread === "number") state.unread = opts.unread;
    document.addEventListener("visibilitychange", onVisibility);
    openStream();
    return {
      markRead,
      markAllRead,
      refresh,
      close,
      get unread() { return state.unread; },
      get items() { return state.items.slice(); },
      get mode() { return state.mode; },
    };
  }

  function warn(error) {
    if (root.console) root.console.warn("offchat-notify:", error && error.message ? error.message : error);
  }

  // The markup of {% notification_inbox %}, or a host's own: parts are found by
  // data attributes, and every part is optional.

  function el(tag, className, text) {
    const node = document.createElement(tag);
    node.className = className;
    if (text) node.textContent = text;
    return node;
  }

  /** An http(s) URL, or null: never a javascript: or data: URL from the server. */
  function safeUrl(url) {
    if (!url) return null;
    try {
      const parsed = new URL(url, document.baseURI);
      return parsed.protocol === "http:" || parsed.protocol === "https:" ? parsed.href : null;
    } catch (error) {
      return null;
    }
  }

  function when(iso) {
    const date = new Date(iso);
    return isNaN(date) ? "" : date.toLocaleString(undefined, { dateStyle: "medium", timeStyle: "short" });
  }

  function renderItem(inbox, item) {
    const li = el("li", "offchat-item" + (item.read_at ? "" : " offchat-unread"));
    li.dataset.id = item.id;
    const title = el("strong", "offchat-title", item.title || item.verb);
    const href = safeUrl(item.target_url);
    if (href) {
      const link = el("a", "offchat-link");
      link.href = href;
      link.append(title);
      link.addEventListener("click", () => item.read_at || inbox.markRead(item.id).catch(warn));
      li.append(link);
    } else {
      li.append(title);
    }
    if (item.body) li.append(el("p", "offchat-body", item.body));
    li.append(el("small", "offchat-meta", [item.actor, when(item.created_at)].filter(Boolean).join(" · ")));
    if (!item.read_at) {
      const button = el("button", "offchat-mark-read", "Mark read");
      button.type = "button";
      button.addEventListener("click", () => inbox.markRead(item.id).catch(warn));
      li.append(button);
    }
    return li;
  }

  /** Bring the markup inside `node` to life; returns connect()'s handle (once per node). */
  function mount(node) {
    if (node.offchatInbox) return node.offchatInbox;
    const part = (name) => node.querySelector("[data-offchat-" + name + "]");
    const [badge, toggle, panel, list, empty, readAll] =
      ["badge", "toggle", "panel", "list", "empty", "read-all"].map(part);
    const data = node.dataset;
    const inbox = connect({
      urls: { list: data.listUrl, unread: data.unreadUrl, read: data.readUrl, readAll: data.readAllUrl, stream: data.streamUrl },
      csrfToken: data.csrfToken,
      limit: Number(data.limit) || DEFAULTS.limit,
      unread: data.unread ? Number(data.unread) : undefined,
      target: node,
    });
    node.offchatInbox = inbox;

    node.addEventListener("offchat:mode", (event) => node.setAttribute("data-mode", event.detail.mode));
    node.addEventListener("offchat:unread", (event) => {
      const count = event.detail.unread;
      if (badge) {
        badge.textContent = count > 99 ? "99+" : String(count);
        badge.hidden = !count;
      }
      if (readAll) readAll.hidden = !count;
    });
    node.addEventListener("offchat:items", (event) => {
      const items = event.detail.items;
      if (list) list.replaceChildren(...items.map((item) => renderItem(inbox, item)));
      if (empty) empty.hidden = items.length > 0;
    });
    if (readAll) readAll.addEventListener("click", () => inbox.markAllRead().catch(warn));

    if (toggle && panel) {
      const setOpen = (open) => {
        panel.hidden = !open;
        toggle.setAttribute("aria-expanded", String(open));
      };
      toggle.addEventListener("click", () => {
        setOpen(panel.hidden);
        if (!panel.hidden && list && !list.children.length) inbox.refresh().catch(warn);
      });
      node.addEventListener("keydown", (event) => event.key === "Escape" && setOpen(false));
      document.addEventListener("click", (event) => node.contains(event.target) || setOpen(false));
    }
    return inbox;
  }

  function mountAll() {
    document.querySelectorAll("[data-offchat-inbox]").forEach(mount);
  }

  const api = { connect, mount, mountAll, endpoints, DEFAULTS };
  root.OffchatInbox = api;
  if (typeof module === "object" && module.exports) module.exports = api;
  if (typeof document === "undefined") return; // imported on a server (SSR): nothing to mount
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mountAll);
  else mountAll();
})(typeof window !== "undefined" ? window : this);

/*
 * offchat-notify's "turn on notifications": asks permission, subscribes the
 * browser with the site's VAPID key and POSTs the subscription.
 *
 *   <button data-offchat-push>Turn on notifications</button>
 *   <script src="{% static 'offchat_notify/push.js' %}"
 *           data-base="/notifications/" data-worker="/sw.js"></script>
 *
 * or headless: OffchatPush.enable({base, worker}) and OffchatPush.disable({base}),
 * promises of true/false. Sends the csrftoken cookie as X-CSRFToken.
 */
(function (root) {
  "use strict";

  function cookie(name) {
    const found = document.cookie.split("; ").find((c) => c.startsWith(name + "="));
    return found ? decodeURIComponent(found.slice(name.length + 1)) : "";
  }

  function keyBytes(b64url) {
    const b64 = (b64url + "=".repeat((4 - (b64url.length % 4)) % 4))
      .replace(/-/g, "+")
      .replace(/_/g, "/");
    return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
  }

  function post(url, body, csrfToken) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken || cookie("csrftoken") },
      body: JSON.stringify(body),
    }).then((r) => {
      if (!r.ok) throw new Error("offchat push: " + url + " answered " + r.status);
      return r.json();
    });
  }

  function supported() {
    return "serviceWorker" in navigator && "PushManager" in root && "Notification" in root;
  }

  async function enable(opts) {
    const base = opts.base || "/notifications/";
    if (!supported()) return false;
    if ((await Notification.requestPermission()) !== "granted") return false;
    const registration = await navigator.serviceWorker.register(opts.worker || "/sw.js");
    await navigator.serviceWorker.ready;
    const key = await fetch(base + "push/key/", { credentials: "same-origin" }).then((r) => {
      if (!r.ok) throw new Error("offchat push: web push is not configured");
      return r.json();
    });
    const subscription =
      (await registration.pushManager.getSubscription()) ||
      (await registration.pushManager.subscribe({
        userVisibleOnly: true,
        applicationServerKey: keyBytes(key.public_key),
      }));
    await post(base + "push/subscribe/", subscription.toJSON(), opts.csrfToken);
    return true;
  }

  async function disable(opts) {
    const base = opts.base || "/notifications/";
    if (!supported()) return false;
    const registration = await navigator.serviceWorker.getRegistration(opts.worker || "/sw.js");
    const subscription = registration && (await registration.pushManager.getSubscription());
    if (!subscription) return false;
    await post(base + "push/unsubscribe/", { endpoint: subscription.endpoint }, opts.csrfToken);
    return subscription.unsubscribe();
  }

  root.OffchatPush = { enable, disable, supported };

  // What went wrong, shown after the button (role=alert) rather than only in
  // the console: a browser without a push service rejects the subscription.
  function say(button, text) {
    let note = button.nextElementSibling;
    if (!note || !note.hasAttribute("data-offchat-push-error")) {
      if (!text) return;
      note = document.createElement("span");
      note.setAttribute("data-offchat-push-error", "");
      note.setAttribute("role", "alert");
      button.after(note);
    }
    note.textContent = text;
    note.hidden = !text;
  }

  const script = document.currentScript;
  const opts = script ? { base: script.dataset.base, worker: script.dataset.worker } : {};
  function mount() {
    document.querySelectorAll("[data-offchat-push]").forEach((button) => {
      if (!supported()) {
        button.hidden = true;
        return;
      }
      button.addEventListener("click", () => {
        button.disabled = true;
        enable(opts)
          .then((on) => {
            say(button, "");
            button.textContent = on ? "Notifications on" : "Notifications blocked";
          })
          .catch((e) => {
            button.disabled = false;
            say(button, "Could not turn on notifications: " + ((e && e.message) || e));
            console.error(e);
          });
      });
    });
  }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", mount);
  else mount();
})(window);

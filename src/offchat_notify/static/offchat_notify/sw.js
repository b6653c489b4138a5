/*
 * offchat-notify's service worker: shows each web push message as a
 * notification, and opens its url when it is clicked.
 *
 * Serve it from the root of the site (a worker only controls pages under its
 * own path), e.g. a view answering /sw.js with this file and the header
 * "Service-Worker-Allowed: /", or register it with a narrower scope.
 * The payload is JSON: {title, body, url, tag, verb, id}.
 */
/* eslint-env serviceworker */
"use strict";

self.addEventListener("push", (event) => {
  let data = {};
  try {
    data = event.data ? event.data.json() : {};
  } catch (e) {
    data = { body: event.data ? event.data.text() : "" };
  }
  const title = data.title || data.verb || "Notification";
  event.waitUntil(
    self.registration.showNotification(title, {
      body: data.body || "",
      tag: data.tag || undefined, // a repeat of one message replaces it
      data: { url: data.url || "/", id: data.id },
    })
  );
});

self.addEventListener("notificationclick", (event) => {
  event.notification.close();
  // Only a URL of this site: a payload never sends the browser elsewhere.
  const target = new URL(event.notification.data.url || "/", self.location.origin);
  if (target.origin !== self.location.origin) return;
  event.waitUntil(
    self.clients.matchAll({ type: "window", includeUncontrolled: true }).then((windows) => {
      for (const client of windows) {
        if (client.url === target.href && "focus" in client) return client.focus();
      }
      return self.clients.openWindow(target.href);
    })
  );
});

// The portal's service worker (served at /sw.js, scope /): shows Web Push notices and opens the
// inbox item when one is clicked. A push carries only the notice's title and its inbox link.
"use strict";

self.addEventListener("install", function () { self.skipWaiting(); });
self.addEventListener("activate", function (event) { event.waitUntil(self.clients.claim()); });

self.addEventListener("push", function (event) {
  var data = {};
  try { data = event.data ? event.data.json() : {}; } catch (e) { data = {}; }
  var title = data.title || "お知らせ / Notice";
  var url = (typeof data.url === "string") ? data.url : "/";
  event.waitUntil(self.registration.showNotification(title, {
    tag: data.tag || undefined,
    data: { url: url },
    icon: "/static/favicon.svg",
    requireInteraction: data.category === "disaster"
  }));
});

self.addEventListener("notificationclick", function (event) {
  event.notification.close();
  var target = new URL((event.notification.data && event.notification.data.url) || "/", self.location.origin);
  if (target.origin !== self.location.origin) { target = new URL("/", self.location.origin); }
  event.waitUntil(self.clients.matchAll({ type: "window", includeUncontrolled: true }).then(function (list) {
    for (var i = 0; i < list.length; i++) {
      if (list[i].url === target.href && "focus" in list[i]) { return list[i].focus(); }
    }
    return self.clients.openWindow(target.href);
  }));
});

self.addEventListener("pushsubscriptionchange", function (event) {
  // The browser renewed the subscription: the page re-registers it on the next visit.
  event.waitUntil(Promise.resolve());
});

// Package webui serves the web dashboard: the Svelte application in web/
// (a module of its own to Go, so its node_modules stay out of this one),
// built by Vite into this package's dist/ (make build) and embedded into
// proximity-coordinator, which serves it at / beside the API.
//
// Handler answers every GET that is not an API path: a file of the build
// when one matches (hashed assets under /assets/ cached for a year as
// immutable), else index.html, so that the application's own routes
// (/apps/app_…) load on a reload or from a bookmark. Every answer carries a
// strict Content-Security-Policy (no inline script or style, no other
// origin) and the usual security headers. A binary built without the
// front end (go build alone) serves a page that says how to build it.
package webui

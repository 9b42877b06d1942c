// Package httpheader reads the response headers the hub's clients of LTI
// Advantage services act on: Link (RFC 8288), which pages a roster or a
// list of line items, and Retry-After (RFC 9110 §10.2.3), which tells a
// throttled or unavailable platform's wait.
//
// Both are read from platforms the hub does not control, so the readers
// never fail: what cannot be read is left out (a link) or read as no
// wait, and a wait is bounded.
package httpheader

// Package ags is the hub's client of LTI Assignment and Grade Services
// 2.0: it finds or creates the gradebook columns (line items) of a course
// and posts learners' scores into them. It speaks the protocol only: it
// stores nothing, retries nothing and keeps no state between calls.
//
// Grade passback flows: the launch's AGS endpoint claim names the
// course's line item container (lineitems) and, when the link has one
// column of its own, that line item (lineitem), with the scopes the tool
// may ask a token for. The caller obtains a bearer token for the scope a
// call needs (lineitem or lineitem.readonly to list and read line items,
// lineitem to create them, score to post scores) and:
//
//   - LineItems lists the container, filtered by resource link, resource
//     id or tag, following Link rel="next" pages on the container's own
//     origin, up to Client.MaxPages;
//   - GetLineItem reads one line item, CreateLineItem adds one;
//   - PostScore posts a Score to the line item's score endpoint: the line
//     item URL with /scores appended to its path, its query kept
//     (ScoresURL), since Moodle's and others' line item URLs carry one.
//
// The token goes wherever a call is pointed: only LineItems, which
// follows links it was not given, keeps to one origin. A caller that
// posts to a line item id the platform listed decides whether a host
// other than the container's is to be trusted with it.
//
// A score carries the time the hub recorded it, and platforms keep only
// the newest: a score whose timestamp is not after the last one the
// platform accepted for the same line item and user is refused (Moodle
// answers 409 Conflict, comparing whole seconds; Canvas 400 Bad Request,
// for an older one only). The caller sends each score with the time of
// the result it reports, and reads such a refusal as "superseded".
//
// Requests carry the specification's media types (Accept for reads,
// Content-Type for writes); answers are judged by their bodies, not their
// Content-Type, as platforms label them loosely. Failures come in four
// kinds: ErrInvalid for a line item or score the hub must not send (no
// request is made), a *StatusError for a request the platform refused or
// failed (Temporary, Throttled and RetryAfter tell a scheduler whether
// and when to try again; 401 asks for a new token; 404 means the line item
// is gone; 400, 403 and 422 will not succeed as sent), ErrMalformed for
// an answer that is not what the specification promises, and transport
// errors as the HTTP client returns them.
package ags

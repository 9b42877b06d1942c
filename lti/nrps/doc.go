// Package nrps is the hub's client of LTI Names and Role Provisioning
// Services 2.0: it reads a course's roster from the platform, one page at a
// time.
//
// A roster pull flows: the launch names the context_memberships_url;
// PageURL adds the hub's limit (and, when asked, a role filter or a
// resource link id) to it; Fetch GETs that page with a bearer token for
// the contextmembership.readonly scope and decodes it into a Page, whose
// Next link names the following page and whose last page may offer a
// Differences link for the next pull. The caller drives the pages,
// applying each before it fetches the next, so memory stays flat however
// large the course; this package keeps no state between pages, retries
// nothing and stores nothing.
//
// Failures come in three kinds: a *StatusError for a page the platform
// refused or failed (with Temporary and RetryAfter telling a scheduler
// whether and when to try again), ErrMalformed for a page that is not a
// membership container, and transport errors as the HTTP client returns
// them.
package nrps

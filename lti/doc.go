// Package lti is the hub's LTI 1.3 tool: platform registrations per tenant,
// OIDC login initiation, the launch validation pipeline, and what a launch
// records.
//
// A launch flows: the platform calls /lti/login with iss, client_id and a
// login hint; the hub finds the registration, seals a state (registration,
// nonce, target link, and a hash of a secret it also sets as a cookie) and
// redirects the browser to the platform's authorization endpoint (inside a
// frame, once it knows the cookie stuck: window.go). The
// platform posts an id_token back to /lti/launch. Validation is a pipeline
// of small HTTP-free steps, each failing with a reason code: state →
// registration → signature → claims (iss, aud, azp, exp/iat) → nonce →
// deployment → version and message type → message claims. Only a fully
// valid launch writes anything: the nonce, the user and identity, the
// context, resource link and membership, in one transaction.
//
// This package is HTTP-free: its calls take and return plain Go values
// (LoginRequest and LoginResult, LaunchRequest and Launch, Picker,
// OpenedLink) and fail with a *Failure naming a Reason. The browser side,
// the echo handlers with their pages, cookies, Content Security Policy
// and templates, is package lti/web, which translates between HTTP and
// these calls. Outbound HTTP (platform keysets, dynamic registration) stays
// here, through the guarded client.
package lti

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
package lti

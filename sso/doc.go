// Package sso is employer sign-in over OpenID Connect: a tenant's
// connections to its OpenID providers, the email domains that route
// sign-ins to them, the sign-in itself, the hub's sessions and logout.
//
// A sign-in (flow.go) runs the authorization code flow with PKCE (RFC
// 7636, S256): Start picks the connection (by the email's domain, or a
// tenant and connection named), keeps the state, nonce and PKCE verifier
// sealed in a short-lived cookie bound to the browser and the state's hash
// in sso_sign_ins, and sends the browser to the provider. Finish, at the
// connection's own redirect URI, consumes that row once (a replayed
// callback finds none), checks the RFC 9207 iss parameter, exchanges the
// code, verifies the id_token with go-oidc over the hub's own JWKS cache
// (keys.Cache: unknown kids refetched within a rate limit, the last good
// keys kept through an outage) and then what go-oidc leaves to its caller:
// nonce, azp, email_verified. The userinfo endpoint fills claims the
// id_token lacks.
//
// The employee is then one hub user (match.go): the identity linked
// before; else the user the directory provisioned with the mapped employee
// id; else the one with that verified email; else, when the connection
// allows it, a new one. A user the directory deactivated is refused, and a
// refusal writes nothing. A session (session.go) is opened, server-side,
// its cookie holding a random id whose SHA-256 is stored: logout, an
// admin, the provider's back-channel logout (logout.go) and the user's
// deactivation (a trigger on users) end it.
//
// The browser pages (web.go) only translate between HTTP and this core;
// the handoff to the learning app, with the consent page before it when
// the tenant's agreement asks, is the one LTI launches use.
package sso

// Package ssotest is an in-process OpenID Provider for tests and the demo,
// in the spirit of net/http/httptest and of the fake LMS in lti/ltitest:
// an employer's identity provider that the hub signs people in with.
//
// It implements, on a loopback HTTP server of its own:
//
//   - OpenID Connect Discovery 1.0 §4 (/.well-known/openid-configuration)
//     and a JWKS of RS256 keys, each with a kid (/jwks);
//   - the authorization code flow of OpenID Connect Core 1.0 §3.1: the
//     authorization endpoint (/authorize) checks the client and its exact
//     redirect_uri (§3.1.2.1), requires the openid scope, echoes state and
//     puts the nonce in the id_token; the token endpoint (/token)
//     authenticates the client (client_secret_basic or client_secret_post),
//     spends the code once, within 60 s, for the redirect_uri it was issued
//     to, and answers an access token and a signed id_token (§3.1.3.3); the
//     userinfo endpoint (/userinfo, §5.3) answers a bearer of that token;
//   - Proof Key for Code Exchange, RFC 7636, with S256 required and plain
//     refused;
//   - the authorization response's iss parameter, RFC 9207;
//   - OpenID Connect RP-Initiated Logout 1.0 §2 (/end_session): requests
//     are recorded and answered with a redirect to a registered
//     post_logout_redirect_uri, or a "signed out" page;
//   - OpenID Connect Back-Channel Logout 1.0 §2.4–2.5: BackChannelLogout
//     signs a logout token and posts it to the client.
//
// Errors follow RFC 6749 §4.1.2.1 (redirected to a valid redirect_uri with
// error, error_description and state; a plain 400 page when the client or
// redirect_uri cannot be trusted) and §5.2 (JSON from the token endpoint).
//
// A test signs in at once with SignInAs; without it the authorization
// endpoint shows a page listing the users, each a button, as the demo's
// stand-in for an employer's sign-in page. Misbehave makes the provider
// issue the wrong tokens a relying party must refuse; RotateKey and
// JWKSDown exercise its key handling. It shares no code with the relying
// party it tests.
package ssotest

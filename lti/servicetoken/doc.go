// Package servicetoken obtains the access tokens the hub presents to a
// platform's LTI Advantage services (Names and Role Provisioning, Assignment
// and Grade Services).
//
// A platform grants them through the OAuth 2.0 client credentials grant
// (RFC 6749 §4.4) in which the tool authenticates with a signed JWT instead
// of a secret (RFC 7523 §2.2, as the 1EdTech Security Framework 1.0 §4.1
// profiles it). For each token the hub:
//
//  1. builds a client assertion: iss and sub the registration's client_id,
//     aud the platform's token audience (its token URL unless the
//     registration names another), iat now, exp a few minutes later and a
//     fresh random jti, so a captured assertion is soon useless and never
//     good twice;
//  2. signs it with the hub's LTI key (the kid in its header names the key
//     the platform finds in the hub's published keyset);
//  3. posts grant_type=client_credentials, client_assertion_type
//     urn:ietf:params:oauth:client-assertion-type:jwt-bearer, the
//     client_assertion and the scopes (sorted, space-separated) to the
//     token URL, without a client_id or client_secret: the assertion is the
//     client's authentication;
//  4. keeps the token per registration and scope set until shortly before
//     it expires.
//
// Concurrent callers that need the same token share one request, and a
// caller that gives up does not cancel it for the others. A service that
// answers 401 to a cached token means the platform forgot or revoked it:
// the caller drops it with Invalidate and asks once more. A refusal by the
// token endpoint is an *Error carrying the platform's OAuth error code,
// description and Retry-After.
package servicetoken

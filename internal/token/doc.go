// Package token makes the hub's random tokens and hashes them for storage
// and comparison.
//
// Random gives n random bytes as unpadded base64url text: the secrets of
// login states, picker sessions and registration links, the ids of
// handoff tokens, the nonces of the hub's pages. Hash gives the SHA-256 a
// token is stored or compared by, never the token itself. Each use names a
// purpose ("lti registration link"), hashed in front of the token, so a
// token of one kind never matches the stored hash of another; the empty
// purpose hashes the bare token, which API keys and the browser bindings
// of logins and pickers were stored by before purposes existed.
package token

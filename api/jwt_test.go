package api_test

import (
	"encoding/json"
	"testing"

	"github.com/lestrrat-go/jwx/v2/jwk"
	"github.com/lestrrat-go/jwx/v2/jws"
)

// verifyES256 verifies a handoff token with the hub's published JWKS, as
// the learning app does.
func verifyES256(jwks []byte, token string) (map[string]any, error) {
	set, err := jwk.Parse(jwks)
	if err != nil {
		return nil, err
	}
	payload, err := jws.Verify([]byte(token), jws.WithKeySet(set, jws.WithRequireKid(true)))
	if err != nil {
		return nil, err
	}
	var claims map[string]any
	return claims, json.Unmarshal(payload, &claims)
}

func kidOf(t *testing.T, token string) string {
	msg, err := jws.ParseString(token)
	if err != nil {
		t.Fatal(err)
	}
	return msg.Signatures()[0].ProtectedHeaders().KeyID()
}

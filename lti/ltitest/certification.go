package ltitest

import (
	"crypto/rand"
	"crypto/rsa"
	"strings"
	"time"

	"github.com/lestrrat-go/jwx/v2/jwk"

	"github.com/klasterina/hub/lti"
)

// BadLaunch is a launch a tool must refuse, with the reason code the hub
// gives it.
type BadLaunch struct {
	Name   string
	Launch Launch
	Reason lti.Reason
}

// BadLaunches are the "known bad payloads" of the 1EdTech LTI Advantage
// certification guide (§6.1.1), and the other refusals a tool owes: a bad
// signature, a wrong issuer or audience, a target link that differs from
// the login's, and the algorithm attacks ("none", HMAC, a key carried in
// the token). otherTarget is a URL of the tool other than its launch URL.
func (p *Platform) BadLaunches(otherTarget string) []BadLaunch {
	remove := func(claim string) Launch { return Launch{Claims: map[string]any{claim: nil}} }
	tamper := func(f func(h, c map[string]any)) Launch { return Launch{Tamper: f} }
	return []BadLaunch{
		{"no kid in the header", tamper(func(h, _ map[string]any) { delete(h, "kid") }), lti.ReasonNoKID},
		{"incorrect kid", tamper(func(h, _ map[string]any) { h["kid"] = "not-a-platform-key" }), lti.ReasonUnknownKID},
		{"wrong LTI version", Launch{Claims: map[string]any{lti.ClaimVersion: "1.2.0"}}, lti.ReasonWrongVersion},
		{"no LTI version", remove(lti.ClaimVersion), lti.ReasonMissingVersion},
		{"not an LTI 1.3 JWT", Launch{Raw: "this.is-not.a-jwt"}, lti.ReasonNotAJWT},
		{"missing LTI claims", tamper(func(_, c map[string]any) {
			for k := range c {
				if strings.HasPrefix(k, "https://purl.imsglobal.org/") {
					delete(c, k)
				}
			}
		}), lti.ReasonMissingDeployment},
		{"timestamps incorrect", tamper(func(_, c map[string]any) {
			c["iat"], c["exp"] = time.Now().Add(-2*time.Hour).Unix(), time.Now().Add(-time.Hour).Unix()
		}), lti.ReasonExpired},
		{"message_type missing", remove(lti.ClaimMessageType), lti.ReasonMissingMessageType},
		{"roles claim missing", remove(lti.ClaimRoles), lti.ReasonMissingRoles},
		{"deployment_id missing", tamper(func(_, c map[string]any) { delete(c, lti.ClaimDeploymentID) }), lti.ReasonMissingDeployment},
		{"resource_link id missing", Launch{Claims: map[string]any{lti.ClaimResourceLink: map[string]any{"title": "x"}}}, lti.ReasonMissingResourceLink},
		{"user sub missing", remove("sub"), lti.ReasonMissingSubject},
		{"issued in the future", tamper(func(_, c map[string]any) { c["iat"] = time.Now().Add(time.Hour).Unix() }), lti.ReasonIssuedInFuture},
		{"bad signature", Launch{CorruptSignature: true}, lti.ReasonBadSignature},
		{"wrong issuer", tamper(func(_, c map[string]any) { c["iss"] = "https://evil.example" }), lti.ReasonWrongIssuer},
		{"wrong audience", tamper(func(_, c map[string]any) { c["aud"] = "someone-else" }), lti.ReasonWrongAudience},
		{"audience array with an audience the tool does not trust", tamper(func(_, c map[string]any) {
			c["aud"], c["azp"] = []string{p.ClientID, "other"}, p.ClientID
		}), lti.ReasonWrongAudience},
		{"azp names another party", tamper(func(_, c map[string]any) { c["azp"] = "someone-else" }), lti.ReasonWrongAZP},
		{"unknown deployment", tamper(func(_, c map[string]any) { c[lti.ClaimDeploymentID] = "not-registered" }), lti.ReasonUnknownDeployment},
		{"signed target_link_uri differs from the login's", tamper(func(_, c map[string]any) { c[lti.ClaimTargetLinkURI] = otherTarget }), lti.ReasonTargetLinkMismatch},
		{"unsupported message type", Launch{Claims: map[string]any{lti.ClaimMessageType: "LtiSubmissionReviewRequest"}}, lti.ReasonUnsupportedMessage},
		// {"alg":"HS256","kid":"k","typ":"JWT"}.{"sub":"x"}
		{"HMAC-signed", Launch{Raw: "eyJhbGciOiJIUzI1NiIsImtpZCI6ImsiLCJ0eXAiOiJKV1QifQ.eyJzdWIiOiJ4In0.c2lnbmF0dXJl"}, lti.ReasonBadAlgorithm},
		// {"alg":"none","kid":"k"}.{"sub":"x"}
		{"unsigned (alg none)", Launch{Raw: "eyJhbGciOiJub25lIiwia2lkIjoiayJ9.eyJzdWIiOiJ4In0."}, lti.ReasonBadAlgorithm},
		{"signed by a key carried in the token", Launch{ForeignKey: true}, lti.ReasonBadSignature},
	}
}

// foreignKey signs with a key of the attacker's own, naming the platform's
// kid and carrying the public key in the header: a tool that trusted the
// header's key would accept it.
func foreignKey(header map[string]any) *rsa.PrivateKey {
	priv, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	pub, _ := jwk.FromRaw(priv.Public())
	header["jwk"] = pub
	return priv
}

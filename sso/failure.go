package sso

import (
	"errors"
	"fmt"
	"time"

	"github.com/klasterina/hub/internal/apperr"
)

// Reason says why a sign-in was refused: shown on the page with the
// request id, counted, and logged with the detail the browser never sees.
type Reason string

// Reasons of a refused sign-in.
const (
	ReasonBadRequest          Reason = "bad_request"          // neither a usable email nor tenant and connection
	ReasonUnknownDomain       Reason = "unknown_domain"       // no tenant signs in this email's domain
	ReasonUnknownConnection   Reason = "unknown_connection"   // no such connection, or disabled
	ReasonNoConnectionChosen  Reason = "no_connection_chosen" // the domain names no connection and the tenant has several
	ReasonTenantSuspended     Reason = "tenant_suspended"     // the tenant is suspended
	ReasonProviderError       Reason = "provider_error"       // the provider answered with an error (access_denied…)
	ReasonAccessDenied        Reason = "access_denied"        // the provider or the person declined
	ReasonStateMissing        Reason = "state_missing"        // no sign-in cookie: another browser, or cookies blocked
	ReasonStateInvalid        Reason = "state_invalid"        // state does not match this browser's sign-in
	ReasonStateUsed           Reason = "state_used"           // the callback was used already, or expired
	ReasonMixUp               Reason = "mix_up"               // another connection's callback or issuer (RFC 9207)
	ReasonCodeExchange        Reason = "code_exchange"        // the token endpoint refused the code
	ReasonIDToken             Reason = "id_token_invalid"     // signature, issuer, audience or expiry wrong
	ReasonNonce               Reason = "nonce_mismatch"       // the id_token's nonce is not this sign-in's
	ReasonAuthorizedParty     Reason = "azp_invalid"          // azp missing with several audiences, or another client's
	ReasonEmailUnverified     Reason = "email_unverified"     // the provider does not vouch for the email
	ReasonSubjectMissing      Reason = "subject_missing"      // the mapped subject claim is absent
	ReasonDeactivated         Reason = "deactivated"          // the directory deactivated the user
	ReasonNotProvisioned      Reason = "not_provisioned"      // JIT off and the directory never listed them
	ReasonProviderUnavailable Reason = "provider_unavailable" // discovery, keys or token endpoint unreachable
	ReasonRateLimited         Reason = "rate_limited"         // too many sign-ins started from one source
	ReasonUnavailable         Reason = "unavailable"          // the hub's database
	ReasonInternal            Reason = "internal"
)

// Failure is a refused sign-in.
type Failure struct {
	Reason Reason
	Detail string
	Err    error
	// RetryAfter is how long a rate-limited source should wait.
	RetryAfter time.Duration
}

func (f *Failure) Error() string {
	if f.Err != nil {
		return fmt.Sprintf("sso: %s: %s: %v", f.Reason, f.Detail, f.Err)
	}
	return fmt.Sprintf("sso: %s: %s", f.Reason, f.Detail)
}

func (f *Failure) Unwrap() error { return f.Err }

func fail(r Reason, format string, args ...any) *Failure {
	return &Failure{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

func failErr(r Reason, err error, detail string) *Failure {
	return &Failure{Reason: r, Detail: detail, Err: err}
}

// ReasonOf classifies err: a Failure's reason, Unavailable for the
// database, Internal for anything else.
func ReasonOf(err error) Reason {
	var f *Failure
	switch {
	case errors.As(err, &f):
		return f.Reason
	case apperr.Is(err, apperr.Unavailable):
		return ReasonUnavailable
	}
	return ReasonInternal
}

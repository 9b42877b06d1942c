package lti

import (
	"errors"
	"fmt"
	"time"

	"github.com/klasterina/hub/internal/apperr"
)

// Reason is a stable code for why a login or launch was refused; it is
// shown on the error page, counted in metrics and logged.
type Reason string

const (
	ReasonBadRequest          Reason = "bad_request"
	ReasonUnknownRegistration Reason = "unknown_registration"
	ReasonAmbiguousIssuer     Reason = "ambiguous_issuer"
	ReasonUnknownDeployment   Reason = "unknown_deployment"
	ReasonTargetNotOurs       Reason = "target_link_uri_not_ours"
	ReasonTenantSuspended     Reason = "tenant_suspended"
	ReasonInvalidState        Reason = "invalid_state"
	ReasonStateExpired        Reason = "state_expired"
	ReasonStateNotBound       Reason = "state_not_bound"
	ReasonNotAJWT             Reason = "not_a_jwt"
	ReasonBadAlgorithm        Reason = "bad_algorithm"
	ReasonNoKID               Reason = "no_kid"
	ReasonUnknownKID          Reason = "unknown_kid"
	ReasonKeysetUnavailable   Reason = "keyset_unavailable"
	ReasonBadSignature        Reason = "bad_signature"
	ReasonMalformedClaims     Reason = "malformed_claims"
	ReasonWrongIssuer         Reason = "wrong_issuer"
	ReasonWrongAudience       Reason = "wrong_audience"
	ReasonWrongAZP            Reason = "wrong_azp"
	ReasonExpired             Reason = "token_expired"
	ReasonIssuedInFuture      Reason = "token_issued_in_future"
	ReasonMissingTimestamps   Reason = "missing_timestamps"
	ReasonNonceMismatch       Reason = "nonce_mismatch"
	ReasonNonceReplayed       Reason = "nonce_replayed"
	ReasonMissingDeployment   Reason = "missing_deployment_id"
	ReasonMissingVersion      Reason = "missing_version"
	ReasonWrongVersion        Reason = "wrong_version"
	ReasonMissingMessageType  Reason = "missing_message_type"
	ReasonUnsupportedMessage  Reason = "unsupported_message_type"
	ReasonMissingSubject      Reason = "missing_sub"
	ReasonMissingRoles        Reason = "missing_roles"
	ReasonMissingResourceLink Reason = "missing_resource_link_id"
	ReasonMissingDeepLinking  Reason = "missing_deep_linking_settings"
	ReasonTargetLinkMismatch  Reason = "target_link_uri_mismatch"
	ReasonMissingTargetLink   Reason = "missing_target_link_uri"
	// ReasonUnavailable is no fault of the launch: the hub's database did
	// not answer in time. The page says to try again; the status is 503.
	ReasonUnavailable Reason = "temporarily_unavailable"
	// ReasonInternal is an unexpected failure of the hub itself (500); the
	// detail is in the log under the page's reference.
	ReasonInternal Reason = "internal"
	// ReasonInvalidIdentifier: an identifier claim (sub, iss, aud,
	// deployment_id, context or resource link id, nonce, roles, service
	// URLs) holds a NUL character or bytes that were not UTF-8. The hub
	// cannot store it, and changing it would make it name someone else.
	ReasonInvalidIdentifier Reason = "invalid_identifier"
	// ReasonInvalidParameter: a login parameter is not text, or too long.
	ReasonInvalidParameter Reason = "invalid_parameter"
	// ReasonRateLimited: the source sent more logins than the hub looks up.
	ReasonRateLimited Reason = "rate_limited"
	// ReasonStorageSecretUnexpected: a launch posted a platform-storage
	// secret, but its login did not use platform storage.
	ReasonStorageSecretUnexpected Reason = "storage_secret_unexpected"
	// ReasonStorageSecretCrossOrigin: a launch posted a platform-storage
	// secret from a page that is not the hub's own (or named no Origin).
	ReasonStorageSecretCrossOrigin Reason = "storage_secret_cross_origin"
)

// Failure is a refused login or launch. Detail is for the log only; the
// browser sees the reason code.
type Failure struct {
	Reason Reason
	Detail string
	Err    error
	// RetryAfter, for ReasonRateLimited, is when the client may try again.
	RetryAfter time.Duration
}

func (f *Failure) Error() string {
	s := fmt.Sprintf("lti: %s", f.Reason)
	if f.Detail != "" {
		s += ": " + f.Detail
	}
	if f.Err != nil {
		s += ": " + f.Err.Error()
	}
	return s
}

func (f *Failure) Unwrap() error { return f.Err }

func fail(r Reason, format string, args ...any) *Failure {
	return &Failure{Reason: r, Detail: fmt.Sprintf(format, args...)}
}

func failErr(r Reason, err error) *Failure { return &Failure{Reason: r, Err: err} }

// ReasonOf is the reason code a refusal shows: the Failure's, or
// unavailable or internal for errors that are no fault of the launch.
func ReasonOf(err error) Reason { return reasonOf(err) }

func reasonOf(err error) Reason {
	var f *Failure
	switch {
	case apperr.Is(err, apperr.Unavailable):
		return ReasonUnavailable
	case errors.As(err, &f):
		return f.Reason
	}
	return ReasonInternal
}

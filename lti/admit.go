package lti

import (
	"context"
	"net/url"

	"github.com/google/uuid"

	"github.com/klasterina/hub/internal/handoff"
)

// Admit validates a launch and records it: the one call the launch
// endpoint makes. A refusal of a launch whose registration was found goes
// to the tenant's launch log under requestID; an admitted launch is
// counted. A launch refused as not bound to its browser
// (ReasonStateNotBound) is refused before its registration is known:
// Unbound goes on with it.
func (t *Tool) Admit(ctx context.Context, in LaunchRequest, requestID string) (*Launch, Recorded, error) {
	l := &Launch{}
	err := t.validate(ctx, in, l)
	var rec Recorded
	if err == nil {
		rec, err = t.Record(ctx, l, requestID)
	}
	if err != nil {
		if l.target.ID != uuid.Nil {
			t.logRefusal(ctx, l, reasonOf(err), requestID, in.Source)
		}
		return nil, Recorded{}, err
	}
	t.Metrics.launches.WithLabelValues(l.target.TenantSlug, OutcomeLaunched).Inc()
	return l, rec, nil
}

// StorageFetch says where a launch page finds the browser's secret in
// platform storage: in the LMS's frame Target, under Key, answered from
// the platform's Origin.
type StorageFetch struct {
	Target string
	Key    string
	Origin string
}

// Unbound goes on with a launch whose browser lost the login cookie. When
// the login offered platform storage and the launch did not post the
// secret from it, it says where to fetch it. Otherwise the login could not
// tell the cookie would be lost (a browser that does not say it is
// framed), and the launch is refused with ReasonStateNotBound, counted and
// logged: the learner must launch again in a new window from the LMS.
// Restarting the login here would replay hints the platform has already
// spent. Any other error is a refusal like Admit's.
func (t *Tool) Unbound(ctx context.Context, in LaunchRequest, requestID string) (StorageFetch, error) {
	st, err := openState(t.sealer, in.State)
	if err != nil {
		return StorageFetch{}, failErr(ReasonInvalidState, err)
	}
	reg, err := t.targetOf(ctx, st.Registration, st.Tenant)
	if err != nil {
		return StorageFetch{}, err
	}
	if st.Storage != "" && in.StorageSecret == "" {
		t.Metrics.refused.WithLabelValues("launch", "state_fetch_from_platform_storage").Inc()
		return StorageFetch{Target: st.Storage, Key: st.cookieName(), Origin: origin(reg.AuthLoginURL)}, nil
	}
	t.Metrics.refused.WithLabelValues("launch", string(ReasonStateNotBound)).Inc()
	t.logRefusal(ctx, &Launch{target: reg, Registration: reg.Registration}, ReasonStateNotBound, requestID, in.Source)
	return StorageFetch{}, fail(ReasonStateNotBound, "the login cookie was lost and no platform storage was offered")
}

// origin is the scheme and host of an absolute URL, as browsers name the
// origin of a page there.
func origin(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// Subject is what the learning app is told of a recorded launch: who, in
// which tenant, course and activity.
func (l *Launch) Subject(rec Recorded) handoff.Subject {
	claims := l.Claims
	sub := handoff.Subject{UserID: rec.UserID.String(), Tenant: l.target.TenantSlug, Roles: l.Roles, MessageType: l.Message, Locale: locale(claims),
		Name: claims.Name, GivenName: claims.GivenName, FamilyName: claims.FamilyName, Email: claims.Email, Picture: claims.Picture}
	if claims.Context != nil {
		sub.Context = &handoff.Ref{ID: claims.Context.ID, Title: claims.Context.Title}
	}
	if claims.ResourceLink != nil {
		sub.Activity = &handoff.Ref{ID: claims.ResourceLink.ID, Title: claims.ResourceLink.Title}
		// Links made by deep linking carry the catalog id as a custom
		// parameter (custom keys may lose their case on some platforms).
		if id, ok := claims.Custom["activity_id"].(string); ok {
			sub.Activity.CatalogID = id
		}
	}
	return sub
}

// TenantName is the display name of the launch's tenant.
func (l *Launch) TenantName() string { return l.target.TenantName }

package agreements

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"
	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/tenants/audit"
)

// Consent is one answer a learner gave, naming the agreement version it
// was given for.
type Consent struct {
	ID               uuid.UUID     `db:"id" json:"id"`
	AgreementID      uuid.UUID     `db:"agreement_id" json:"agreement_id"`
	AgreementVersion int           `db:"agreement_version" json:"agreement_version"`
	Answer           ConsentAnswer `db:"answer" json:"answer"`
	Via              string        `db:"via" json:"via"`
	AnsweredAt       time.Time     `db:"answered_at" json:"answered_at"`
}

// Where an answer was given.
const (
	ViaConsentPage = "consent_page" // the learner, on the hub's consent page
	ViaAPI         = "api"          // the learning app, for the learner, over REST
)

// LearnerConsent is where a learner stands with the tenant's active
// agreement: its consent rule, their answers newest first, the state the
// policy reads, whether they must be asked (opt-in with no answer for
// this version, or a version that widened what is shared since), and
// whether they must be told (opt-out, not yet told of this version, and
// not objecting already).
type LearnerConsent struct {
	Agreement  *AgreementRef `json:"agreement"`
	State      ConsentState  `json:"-"`
	Current    *Consent      `json:"current"`
	MustAsk    bool          `json:"must_ask"`
	MustNotify bool          `json:"must_notify"`
	History    []Consent     `json:"history"`
}

// AgreementRef names the active agreement version and its consent rule.
type AgreementRef struct {
	ID      uuid.UUID   `json:"id"`
	Version int         `json:"version"`
	Consent ConsentRule `json:"consent"`
}

// maxHistory bounds the answers a consent read returns.
const maxHistory = 100

// ConsentOf reads the learner's consent as it stands now, in tx: what the
// policy reads at the moment a record is sent, never a copy kept in a job
// or a session. NotFound for a learner the tenant does not have (or who
// was erased).
func ConsentOf(ctx context.Context, tx *sqlx.Tx, tenant, user uuid.UUID) (LearnerConsent, error) {
	if err := lockLearner(ctx, tx, tenant, user, "FOR SHARE"); err != nil {
		return LearnerConsent{}, err
	}
	var lc LearnerConsent
	if err := tx.SelectContext(ctx, &lc.History, `SELECT id, agreement_id, agreement_version, answer, via, answered_at
		FROM consents WHERE tenant_id = $1 AND user_id = $2 ORDER BY answered_at DESC, id DESC LIMIT $3`, tenant, user, maxHistory); err != nil {
		return LearnerConsent{}, pg.MapError(fmt.Errorf("agreements: read consent: %w", err))
	}
	if len(lc.History) > 0 {
		lc.Current = &lc.History[0]
		lc.State = ConsentState{Answer: lc.Current.Answer, Version: lc.Current.AgreementVersion}
	}
	active, err := activeIn(ctx, tx, tenant)
	if err != nil || active == nil {
		return lc, err
	}
	lc.Agreement = &AgreementRef{ID: active.ID, Version: active.Version, Consent: active.Consent}
	if lc.State, err = carry(ctx, tx, tenant, lc.State, active); err != nil {
		return lc, err
	}
	lc.MustAsk = active.Consent == ConsentOptIn && mustAsk(lc.State, active.Version)
	if active.Consent == ConsentOptOut && mustAsk(lc.State, active.Version) {
		var told bool
		if err := tx.GetContext(ctx, &told, `SELECT EXISTS (SELECT 1 FROM consent_notices
			WHERE tenant_id = $1 AND user_id = $2 AND agreement_version = $3)`, tenant, user, active.Version); err != nil {
			return lc, pg.MapError(fmt.Errorf("agreements: read consent notices: %w", err))
		}
		lc.MustNotify = !told
	}
	return lc, nil
}

// NoticeShown records that the learner was shown the notice of the
// tenant's active opt-out agreement, so it is shown once per version. A
// repeat, or a tenant with no active agreement, records nothing; NotFound
// for an unknown or erased learner.
func (s *Store) NoticeShown(ctx context.Context, tenant, user uuid.UUID) error {
	return pg.MapError(pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if err := lockLearner(ctx, tx, tenant, user, "FOR SHARE"); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO consent_notices (tenant_id, user_id, agreement_id, agreement_version, shown_at)
			SELECT tenant_id, $2, id, version, $3 FROM agreements WHERE tenant_id = $1 AND status = 'active'
			ON CONFLICT DO NOTHING`, tenant, user, s.Now())
		return err
	}))
}

// mustAsk: an opt-in learner is asked unless they granted this version
// (or one it does not widen) or refused (a refusal stands until they
// change it, whatever the version).
func mustAsk(st ConsentState, version int) bool {
	switch st.Answer {
	case ConsentDeclined, ConsentWithdrawn:
		return false
	case ConsentGranted:
		return st.Version != version
	}
	return true
}

// carriesOver reports whether a grant given for version still covers the
// active agreement: it shares no category, field or destination the
// granted version did not, and asks no weaker consent rule.
func carriesOver(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID, version int, active *Agreement) (bool, error) {
	var r row
	err := tx.GetContext(ctx, &r, `SELECT `+columns+` FROM agreements WHERE tenant_id = $1 AND version = $2`, tenant, version)
	if pg.IsNoRows(err) {
		return false, nil
	}
	if err != nil {
		return false, pg.MapError(err)
	}
	old, err := r.agreement()
	if err != nil {
		return false, err
	}
	return !Widens(old.Terms, active.Terms), nil
}

// Widens reports whether next shares more than prev: a category, field or
// destination prev did not allow, or a consent rule that asks less of the
// learner (opt-in to opt-out or not required). A learner's grant for prev
// does not cover next then.
func Widens(prev, next Terms) bool {
	for _, c := range next.Categories {
		if !slices.Contains(prev.Categories, c) {
			return true
		}
	}
	for _, f := range next.Fields {
		if !slices.Contains(prev.Fields, f) {
			return true
		}
	}
	for _, d := range next.Destinations {
		if !slices.ContainsFunc(prev.Destinations, func(p Destination) bool { return sameDestination(p, d) }) {
			return true
		}
	}
	return prev.Consent == ConsentOptIn && next.Consent != ConsentOptIn
}

func sameDestination(a, b Destination) bool {
	return a.Kind == b.Kind && ((a.ID == nil && b.ID == nil) || (a.ID != nil && b.ID != nil && *a.ID == *b.ID))
}

// LearnerConsent reads a learner's consent (see ConsentOf).
func (s *Store) LearnerConsent(ctx context.Context, tenant, user uuid.UUID) (LearnerConsent, error) {
	var lc LearnerConsent
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		var err error
		lc, err = ConsentOf(ctx, tx, tenant, user)
		return err
	})
	return lc, err
}

// SetConsent records a learner's answer to the tenant's active agreement
// (given via the consent page or, for them, the learning app), audited
// without personal data. Conflict when the tenant has no active agreement
// to answer; NotFound for an unknown learner.
func (s *Store) SetConsent(ctx context.Context, by audit.Actor, tenant, user uuid.UUID, answer ConsentAnswer, via string) (LearnerConsent, error) {
	var v apperr.Validator
	v.Check(answer == ConsentGranted || answer == ConsentDeclined || answer == ConsentWithdrawn, "answer", "must be granted, declined or withdrawn")
	v.Check(via == ViaConsentPage || via == ViaAPI, "via", "must be consent_page or api")
	if err := v.Err(); err != nil {
		return LearnerConsent{}, err
	}
	var lc LearnerConsent
	err := pg.InTenant(ctx, s.db, tenant, func(tx *sqlx.Tx) error {
		if err := lockLearner(ctx, tx, tenant, user, "FOR UPDATE"); err != nil {
			return err
		}
		active, err := activeIn(ctx, tx, tenant)
		if err != nil {
			return err
		}
		if active == nil {
			return apperr.New(apperr.Conflict, "the tenant has no active agreement to consent to")
		}
		now := s.Now()
		if _, err := tx.ExecContext(ctx, `INSERT INTO consents (id, tenant_id, user_id, agreement_id, agreement_version, answer, via, answered_at)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, uuid.New(), tenant, user, active.ID, active.Version, answer, via, now); err != nil {
			return err
		}
		_, err = s.chain.Append(ctx, tx, &tenant, by, audit.Event{Action: "consent.changed", TargetType: "learner", TargetID: user.String(),
			Details: map[string]string{"answer": string(answer), "agreement_version": fmt.Sprint(active.Version), "via": via}}, now)
		if err != nil {
			return err
		}
		lc, err = ConsentOf(ctx, tx, tenant, user)
		return err
	})
	return lc, pg.MapError(err)
}

func activeIn(ctx context.Context, tx *sqlx.Tx, tenant uuid.UUID) (*Agreement, error) {
	var r row
	err := tx.GetContext(ctx, &r, `SELECT `+columns+` FROM agreements WHERE tenant_id = $1 AND status = 'active'`, tenant)
	if pg.IsNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, pg.MapError(err)
	}
	a, err := r.agreement()
	return &a, err
}

package delivery

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/klasterina/hub/tenants/agreements"
)

// Webhook is a webhook destination as a sender needs it.
type Webhook struct {
	URL string
	// Secrets sign every attempt, one signature each: the current secret
	// and, while a rotation lasts, the previous one (whsec_…).
	Secrets []string
	DryRun  bool
}

// Event is one webhook event. Its payload is Standard Webhooks' shape:
// {"type", "timestamp", "data"}.
type Event struct {
	// ID is the webhook-id: the same for every attempt at one event, so a
	// receiver can drop repeats. At most 255 characters of printable ASCII,
	// without spaces or full stops.
	ID        string
	Type      string    // e.g. "completion.recorded"
	Timestamp time.Time // when it happened, not when it is sent
	Data      any
}

// TestEventType is the type of the event an admin's test sends.
const TestEventType = "destination.test"

// maxEventID bounds a webhook-id.
const maxEventID = 255

// SendWebhook signs ev with each of w's secrets (Standard Webhooks:
// HMAC-SHA256 over id.timestamp.payload, in webhook-signature as
// "v1,<base64>", space separated) and POSTs it to w.URL. In a dry run it
// sends nothing and returns the signed request. ErrInvalid when ev or the
// secrets cannot make a request.
func (s *Sender) SendWebhook(ctx context.Context, w Webhook, ev Event) (Result, error) {
	if err := checkEventID(ev.ID); err != nil {
		return Result{}, err
	}
	payload, err := json.Marshal(struct {
		Type      string `json:"type"`
		Timestamp string `json:"timestamp"`
		Data      any    `json:"data"`
	}{ev.Type, ev.Timestamp.UTC().Format(time.RFC3339Nano), ev.Data})
	if err != nil {
		return Result{}, fmt.Errorf("%w: event %s: %v", ErrInvalid, ev.ID, err)
	}
	at := s.Now()
	signature, err := sign(w.Secrets, ev.ID, at, payload)
	if err != nil {
		return Result{}, err
	}
	req, err := newRequest(http.MethodPost, w.URL, payload)
	if err != nil {
		return Result{}, err
	}
	req.Header.Set(standardwebhooks.HeaderWebhookID, ev.ID)
	req.Header.Set(standardwebhooks.HeaderWebhookTimestamp, strconv.FormatInt(at.Unix(), 10))
	req.Header.Set(standardwebhooks.HeaderWebhookSignature, signature)
	return s.send(ctx, req, payload, w.DryRun, classify), nil
}

// sign is the webhook-signature header: one v1 signature per secret.
func sign(secrets []string, id string, at time.Time, payload []byte) (string, error) {
	if len(secrets) == 0 {
		return "", fmt.Errorf("%w: event %s: no signing secret", ErrInvalid, id)
	}
	sigs := make([]string, len(secrets))
	for i, secret := range secrets {
		if !strings.HasPrefix(secret, "whsec_") || len(secret) == len("whsec_") {
			return "", fmt.Errorf("%w: event %s: a signing secret is not a whsec_ secret", ErrInvalid, id)
		}
		wh, err := standardwebhooks.NewWebhook(secret)
		if err != nil {
			return "", fmt.Errorf("%w: event %s: a signing secret does not decode", ErrInvalid, id)
		}
		if sigs[i], err = wh.Sign(id, at, payload); err != nil {
			return "", fmt.Errorf("%w: event %s: sign: %v", ErrInvalid, id, err)
		}
	}
	return strings.Join(sigs, " "), nil
}

// checkEventID refuses an id Standard Webhooks would not sign safely (a
// full stop would let one message's signed content pass for another's)
// or a header could not carry.
func checkEventID(id string) error {
	ok := id != "" && len(id) <= maxEventID
	for i := 0; ok && i < len(id); i++ {
		ok = id[i] > ' ' && id[i] < 0x7f && id[i] != '.'
	}
	if !ok {
		return fmt.Errorf("%w: webhook-id %q must be 1–%d printable ASCII characters without spaces or full stops", ErrInvalid, id, maxEventID)
	}
	return nil
}

// RecordEvent is the webhook event of a record: type "<category>.recorded"
// (completion.recorded, scores.recorded, …) and the record's fields, the
// identity fields only as r.Fields allows. id is the event's webhook-id,
// the delivery's own and stable across its attempts.
func RecordEvent(id string, r Record) Event {
	return Event{ID: id, Type: string(r.Category) + ".recorded", Timestamp: r.OccurredAt, Data: recordData(r)}
}

// RecordData is a record as a webhook's data carries it.
type RecordData struct {
	RecordID         string      `json:"record_id"`
	Category         string      `json:"category"`
	Learner          LearnerData `json:"learner"`
	Activity         *NamedData  `json:"activity,omitempty"`
	Course           *NamedData  `json:"course,omitempty"`
	Score            *ScoreData  `json:"score,omitempty"`
	Completed        *bool       `json:"completed,omitempty"`
	Success          *bool       `json:"success,omitempty"`
	TimeSpentSeconds int64       `json:"time_spent_seconds,omitempty"`
	OccurredAt       time.Time   `json:"occurred_at"`
}

// LearnerData names the learner: always by the hub's pseudonymous id, and
// by name, email and external id only as the agreement allows.
type LearnerData struct {
	ID         string `json:"id"`
	Name       string `json:"name,omitempty"`
	Email      string `json:"email,omitempty"`
	ExternalID string `json:"external_id,omitempty"`
}

// NamedData is an activity or course.
type NamedData struct {
	ID    string `json:"id,omitempty"`
	Title string `json:"title,omitempty"`
}

// ScoreData is a score; Scaled is Given/Maximum when Maximum is positive.
type ScoreData struct {
	Given   float64  `json:"given"`
	Maximum *float64 `json:"maximum,omitempty"`
	Scaled  *float64 `json:"scaled,omitempty"`
}

func recordData(r Record) RecordData {
	d := RecordData{RecordID: r.ID.String(), Category: string(r.Category), Learner: LearnerData{ID: r.Learner.String()},
		Completed: r.Completed, Success: r.Success, TimeSpentSeconds: r.TimeSpentSeconds, OccurredAt: r.OccurredAt.UTC()}
	if r.allows(agreements.FieldName, r.Name) {
		d.Learner.Name = r.Name
	}
	if r.allows(agreements.FieldEmail, r.Email) {
		d.Learner.Email = r.Email
	}
	if r.allows(agreements.FieldExternalID, r.ExternalID) {
		d.Learner.ExternalID = r.ExternalID
	}
	if r.ActivityID != "" || r.ActivityTitle != "" {
		d.Activity = &NamedData{ID: r.ActivityID, Title: r.ActivityTitle}
	}
	if r.CourseID != "" || r.CourseTitle != "" {
		d.Course = &NamedData{ID: r.CourseID, Title: r.CourseTitle}
	}
	if r.ScoreGiven != nil {
		d.Score = &ScoreData{Given: *r.ScoreGiven, Maximum: r.ScoreMax}
		if r.ScoreMax != nil && *r.ScoreMax > 0 {
			scaled := *r.ScoreGiven / *r.ScoreMax
			d.Score.Scaled = &scaled
		}
	}
	return d
}

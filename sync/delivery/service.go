package delivery

import (
	"context"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"time"

	"github.com/jmoiron/sqlx"

	"github.com/klasterina/hub/lti/ags"
	"github.com/klasterina/hub/lti/servicetoken"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/tenants/audit"
	"github.com/klasterina/hub/tenants/destinations"
)

// Policy says how deliveries are retried and how many run at once.
type Policy struct {
	// MaxAttempts is how many failed attempts (5xx, timeouts, broken
	// connections) a delivery gets before it is dead. Throttled attempts
	// (429, 503 with Retry-After, Canvas's rate-limit 403) do not count.
	MaxAttempts int
	// BaseDelay is the first wait after a failed attempt; it doubles with
	// each attempt, up to MaxDelay, with full jitter.
	BaseDelay, MaxDelay time.Duration
	// PerDestination is how many deliveries to one destination (one LMS
	// host, one webhook or LRS) one replica sends at once, so one slow
	// receiver cannot hold every worker.
	PerDestination int
	// Batch is how many deliveries to one webhook or LRS one worker sends
	// in one transaction: the one its job names, and the destination's
	// other pending ones that are due.
	Batch int
}

// DefaultPolicy: about a day of retries (12 attempts, waits from 10 s
// doubling to an hour), eight deliveries (or batches of up to 50) at once
// per destination.
var DefaultPolicy = Policy{MaxAttempts: 12, BaseDelay: 10 * time.Second, MaxDelay: time.Hour, PerDestination: 16, Batch: 50}

// backoff is the wait after the n-th failed attempt (from 1): full
// jitter over an exponentially growing ceiling.
func (p Policy) backoff(n int) time.Duration {
	ceiling := p.BaseDelay << min(n-1, 30)
	if ceiling <= 0 || ceiling > p.MaxDelay {
		ceiling = p.MaxDelay
	}
	return ceiling/2 + rand.N(ceiling/2+1)
}

// jitter is a random wait below d.
func jitter(d time.Duration) time.Duration { return rand.N(d) }

// throttleWait is the wait a throttled attempt snoozes for: the
// receiver's Retry-After, else a backoff over the throttles so far.
func (p Policy) throttleWait(retryAfter time.Duration, throttles int) time.Duration {
	if retryAfter > 0 {
		return retryAfter
	}
	return p.backoff(throttles)
}

// sendTimeout bounds a delivery's transaction: the longest chain of
// requests one run makes (an LMS score: a token, the line items listed, one
// created, the score posted, and after a deletion the line item made again
// and the score posted again; each within DefaultTimeout) and the
// bookkeeping.
const sendTimeout = 6*DefaultTimeout + 10*time.Second

// Service routes results to their destinations and delivers them: the
// River worker of the delivery queue, and the deliveries' REST reads.
type Service struct {
	db     *sqlx.DB // the job engine's pool: deliveries and their jobs are queued in its transactions
	sendDB *sqlx.DB // the workers' pool (jobs.OpenWorkers): deliveries are sent in its transactions
	Jobs   *jobs.Client
	sender *Sender
	ags    *ags.Client
	tokens *servicetoken.Source
	dests  *destinations.Store
	chain  *audit.Keyring
	m      *Metrics
	log    *slog.Logger
	// Home is the hub's public URL: xAPI actors' account home page and
	// the base of the IRIs of activities and courses.
	Home   string
	Policy Policy
	Now    func() time.Time

	limitsMu sync.Mutex
	limits   map[string]chan struct{}
}

// New makes the service. db is the job engine's pool (jobs.Open), where
// results are routed and deliveries redriven with their jobs; sendDB the
// delivery workers' (jobs.OpenWorkers), where they are sent. client is
// the hub's guarded outbound client; Jobs must be set before results are
// routed.
func New(db, sendDB *sqlx.DB, client *http.Client, tokens *servicetoken.Source, dests *destinations.Store, chain *audit.Keyring,
	home string, m *Metrics, log *slog.Logger) *Service {
	return &Service{db: db, sendDB: sendDB, sender: NewSender(client), ags: &ags.Client{HTTP: client}, tokens: tokens, dests: dests,
		chain: chain, m: m, log: log, Home: home, Policy: DefaultPolicy, Now: time.Now, limits: map[string]chan struct{}{}}
}

// slotWait is how long a delivery waits for its destination's slot
// before it gives its worker back and comes again later.
const slotWait = 250 * time.Millisecond

// acquire takes one of the destination's PerDestination slots, waiting
// up to wait (0: not at all), or reports false when all stay taken (the
// job comes back later, rather than holding a worker another destination
// could use).
func (s *Service) acquire(ctx context.Context, key string, wait time.Duration) (release func(), ok bool) {
	s.limitsMu.Lock()
	sem := s.limits[key]
	if sem == nil {
		sem = make(chan struct{}, max(s.Policy.PerDestination, 1))
		s.limits[key] = sem
	}
	s.limitsMu.Unlock()
	if wait <= 0 {
		select {
		case sem <- struct{}{}:
			return func() { <-sem }, true
		default:
			return nil, false
		}
	}
	timer := time.NewTimer(wait)
	defer timer.Stop()
	select {
	case sem <- struct{}{}:
		return func() { <-sem }, true
	case <-timer.C:
	case <-ctx.Done():
	}
	return nil, false
}

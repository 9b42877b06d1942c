package roster

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"net/http"
	neturl "net/url"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/semaphore"

	"github.com/klasterina/hub/internal/httpx"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/nrps"
	"github.com/klasterina/hub/lti/servicetoken"
)

// fetched is one page, or why there is none.
type fetched struct {
	page   *nrps.Page
	at     time.Time // when its request started: launches after it are newer
	err    error
	weight int64 // of the fetcher's budget: released once the page is applied
}

// MaxPages is the most pages one run follows: 5,000,000 members at the
// page size platforms cap.
const MaxPages = 100_000

// hashURL keeps the set of pages a run visited small.
func hashURL(u string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(u))
	return h.Sum64()
}

// maxWait bounds the wait a platform's Retry-After asks for: a run
// snoozed for longer would keep its course's sync (and its lease) idle.
const maxWait = time.Hour

// MaxPageMembers is the most members one page may hold. The hub asks
// for PageLimit; a platform that sends thousands more ignores it and
// would make a page too large to apply in one transaction.
const MaxPageMembers = 10_000

// bufferedMembers is how many members the pages fetched ahead of the
// applier may hold.
const bufferedMembers = 2_000

// jobMargin is the time a job keeps in hand before its deadline to record
// where it got to and snooze.
const jobMargin = 15 * time.Second

// fetchAll fetches the pages from first on into out, one ahead of the
// applier, and closes out. differences says first is a differences link,
// which a platform may refuse (expired): that ends with
// differencesRefused.
//
// The pages fetched and not yet applied hold at most bufferedMembers
// members (a page larger than that waits until the others are applied):
// memory stays flat however large the platform's pages.
func (s *Service) fetchAll(ctx context.Context, c course, first string, differences bool, deadline time.Time, budget *semaphore.Weighted,
	out chan<- fetched) {
	defer close(out)
	n := 0
	seen := map[uint64]bool{}
	for url := first; url != ""; differences = false {
		if n++; s.nrpsHook != nil {
			s.nrpsHook(n)
		}
		if h := hashURL(url); seen[h] || len(seen) >= MaxPages {
			// A platform whose next links go round in circles (or on and
			// on) would hold the worker for ever.
			send(ctx, out, fetched{err: &failure{CodeMalformedPage, fmt.Sprintf("the next links repeat a page or go past %d pages", MaxPages)}})
			return
		} else {
			seen[h] = true
		}
		if !sameOrigin(url, *c.MembershipsURL) && differences {
			// The saved differences link names a host the course's endpoint
			// no longer does: a full sync instead.
			send(ctx, out, fetched{err: &differencesRefused{status: 0}})
			return
		}
		if !sameOrigin(url, *c.MembershipsURL) {
			// The bearer token goes with every page: never to a host the
			// course's own endpoint does not name.
			send(ctx, out, fetched{err: &failure{CodeMalformedPage, "a link to another origin than the course's endpoint: " + truncate(url, 200)}})
			return
		}
		if !deadline.IsZero() && time.Until(deadline) < jobMargin {
			send(ctx, out, fetched{err: &snooze{after: time.Second}})
			return
		}
		f := s.fetchPage(ctx, c, url, differences, deadline)
		if f.err == nil {
			f.weight = min(int64(len(f.page.Members)), bufferedMembers)
			if err := budget.Acquire(ctx, f.weight); err != nil {
				return
			}
		}
		if !send(ctx, out, f) || f.err != nil {
			return
		}
		url = f.page.Next
	}
}

func send(ctx context.Context, out chan<- fetched, f fetched) bool {
	select {
	case out <- f:
		return true
	case <-ctx.Done():
		return false
	}
}

// fetchPage fetches one page, with the service token, waiting out
// throttling and transient faults as s.Retry says.
func (s *Service) fetchPage(ctx context.Context, c course, url string, differences bool, deadline time.Time) fetched {
	platform := servicetoken.Platform{RegistrationID: c.RegistrationID, ClientID: c.ClientID, TokenURL: c.TokenURL, Audience: c.TokenAudience}
	scopes := []string{lti.ScopeNRPS}
	refreshed := false
	var faults, throttles int
	for {
		at := s.Now()
		page, token, err := s.fetchOnce(ctx, platform, scopes, url)
		if err == nil && len(page.Members) > MaxPageMembers {
			return fetched{err: &failure{CodeMalformedPage, fmt.Sprintf("a page of %d members: more than %d (the hub asks for %d)",
				len(page.Members), MaxPageMembers, PageLimit)}}
		}
		if err == nil {
			return fetched{page: page, at: at}
		}
		var se *nrps.StatusError
		isStatus := errors.As(err, &se)
		switch {
		case ctx.Err() != nil:
			return fetched{err: ctx.Err()}
		case isStatus && se.Status == http.StatusUnauthorized && !refreshed:
			refreshed = true // a token the platform revoked early: one fresh one
			s.tokens.Invalidate(platform, scopes, token)
			continue
		case isStatus && differences && se.Status >= 400 && se.Status < 500 && !se.Throttled:
			return fetched{err: &differencesRefused{status: se.Status}}
		case isStatus && se.Status == http.StatusNotFound:
			return fetched{err: &failure{CodeContextGone, se.Error()}}
		case errors.Is(err, nrps.ErrMalformed):
			return fetched{err: &failure{CodeMalformedPage, err.Error()}}
		case errors.Is(err, httpx.ErrForbiddenAddress), errors.Is(err, httpx.ErrInsecureRedirect):
			return fetched{err: &failure{CodeNotAllowed, err.Error()}}
		}
		wait, ferr := s.backoff(err, &faults, &throttles)
		if ferr != nil {
			return fetched{err: ferr}
		}
		if wait > s.Retry.MaxInlineWait || (!deadline.IsZero() && time.Until(deadline)-wait < jobMargin) {
			return fetched{err: &snooze{after: wait}}
		}
		if !sleep(ctx, wait) {
			return fetched{err: ctx.Err()}
		}
	}
}

// fetchOnce asks for the token and the page, the page within PageTimeout.
func (s *Service) fetchOnce(ctx context.Context, platform servicetoken.Platform, scopes []string, url string) (*nrps.Page, string, error) {
	token, err := s.tokens.Token(ctx, platform, scopes)
	if err != nil {
		return nil, "", err
	}
	pctx, cancel := context.WithTimeout(ctx, s.PageTimeout)
	defer cancel()
	start := time.Now()
	page, err := s.nrps.Fetch(pctx, url, token)
	s.m.request(time.Since(start), err)
	return page, token, err
}

// backoff says how long to wait before trying again after err, or the
// failure that ends the run: a refusal, or faults beyond the policy.
func (s *Service) backoff(err error, faults, throttles *int) (time.Duration, error) {
	var te *servicetoken.Error
	if errors.As(err, &te) && !te.Temporary() {
		return 0, &failure{CodeTokenRefused, te.Error()}
	}
	var se *nrps.StatusError
	if errors.As(err, &se) && !se.Temporary() {
		return 0, &failure{CodeRefused, se.Error()}
	}
	retryAfter := time.Duration(0)
	throttled := false
	if se != nil {
		retryAfter, throttled = se.RetryAfter, se.Throttled
	} else if te != nil {
		retryAfter, throttled = te.RetryAfter, te.Status == http.StatusTooManyRequests || te.Status == http.StatusServiceUnavailable
	}
	if throttled {
		*throttles++
		if *throttles >= s.Retry.ThrottledAttempts {
			return 0, &failure{CodeUnavailable, "still throttled after " + strconv.Itoa(*throttles) + " tries: " + err.Error()}
		}
	} else {
		*faults++
		if *faults >= s.Retry.Attempts {
			return 0, &failure{CodeUnavailable, "gave up after " + strconv.Itoa(*faults) + " tries: " + err.Error()}
		}
	}
	if retryAfter > 0 {
		return min(retryAfter, maxWait), nil
	}
	return s.jittered(*faults + *throttles), nil
}

// jittered is exponential backoff with full jitter: a random wait up to
// BaseDelay·2^(n-1), capped at MaxDelay.
func (s *Service) jittered(n int) time.Duration {
	ceiling := s.Retry.BaseDelay << min(n-1, 20)
	if ceiling <= 0 || ceiling > s.Retry.MaxDelay {
		ceiling = s.Retry.MaxDelay
	}
	return time.Duration(rand.Int64N(int64(ceiling)) + 1)
}

func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// sameOrigin reports whether a and b have the same scheme, host and port.
func sameOrigin(a, b string) bool {
	ua, errA := neturl.Parse(a)
	ub, errB := neturl.Parse(b)
	return errA == nil && errB == nil && strings.EqualFold(ua.Scheme, ub.Scheme) && strings.EqualFold(ua.Host, ub.Host)
}

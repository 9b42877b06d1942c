package nrps

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/klasterina/hub/internal/httpheader"
	"github.com/klasterina/hub/internal/httpx"
)

// MediaType is the membership container's media type (NRPS 2.0),
// sent as the Accept header of every page request.
const MediaType = "application/vnd.ims.lti-nrps.v2.membershipcontainer+json"

// DefaultMaxPageBytes bounds a page when Client.MaxPageBytes is zero: a
// page of a thousand members with long names and several roles each is
// well under a megabyte.
const DefaultMaxPageBytes = 8 << 20

// Member statuses (NRPS 2.0 §2.3). A member without a status is Active.
const (
	StatusActive   = "Active"
	StatusInactive = "Inactive"
	StatusDeleted  = "Deleted" // only in a differences listing
)

// Member is one entry of a membership container, §2.3.
type Member struct {
	UserID string   // user_id: the platform's subject for the person (required, non-empty, ≤255 bytes, no NUL)
	Status string   // "Active" (also when absent), "Inactive" or "Deleted"
	Roles  []string // context roles expanded to full URIs as lti.Roles does; institution/system roles kept as sent (all in one slice, context roles first)

	Name, GivenName, FamilyName, MiddleName, Email, Picture string
	LISPersonSourcedID, LTI11LegacyUserID                   string

	Message []json.RawMessage // the message claims, when the request had rlid
}

// Page is one page of a membership container.
type Page struct {
	ContextID, ContextLabel, ContextTitle string
	Members                               []Member
	Next                                  string // Link rel="next" (absolute URL, resolved against the request URL), "" on the last page
	Differences                           string // Link rel="differences", "" when not offered
}

// Query is what the hub asks of a membership URL: a page size (Limit, the
// limit query parameter; zero leaves it to the platform), a role filter
// (Role, a full URI or a short context role name) and a resource link
// whose message claims each member should carry (RLID, the resource link
// membership of NRPS 2.0).
type Query struct {
	Limit int
	Role  string
	RLID  string
}

// PageURL adds limit, role and rlid to the context_memberships_url, keeping its own query parameters.
// Parameters of the same names already in the URL are replaced; the
// others keep their encoding byte for byte (a platform may sign or compare
// them).
func PageURL(membershipsURL string, q Query) (string, error) {
	u, err := url.Parse(membershipsURL)
	switch {
	case err != nil:
		return "", fmt.Errorf("nrps: memberships URL: %w", err)
	case (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return "", fmt.Errorf("nrps: memberships URL %q is not an absolute http(s) URL", membershipsURL)
	case q.Limit < 0:
		return "", fmt.Errorf("nrps: negative limit %d", q.Limit)
	}
	add := url.Values{}
	if q.Limit > 0 {
		add.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Role != "" {
		add.Set("role", q.Role)
	}
	if q.RLID != "" {
		add.Set("rlid", q.RLID)
	}
	u.RawQuery = mergeQuery(u.RawQuery, add)
	return u.String(), nil
}

// mergeQuery appends add to a raw query, dropping the raw query's
// parameters that add replaces.
func mergeQuery(raw string, add url.Values) string {
	var parts []string
	for part := range strings.SplitSeq(raw, "&") {
		key, _, _ := strings.Cut(part, "=")
		if k, err := url.QueryUnescape(key); part == "" || (err == nil && add.Has(k)) {
			continue
		}
		parts = append(parts, part)
	}
	if extra := add.Encode(); extra != "" {
		parts = append(parts, extra)
	}
	return strings.Join(parts, "&")
}

// Client fetches membership pages. HTTP nil uses the hub's guarded
// outbound client (no private addresses); MaxPageBytes zero means
// DefaultMaxPageBytes.
type Client struct {
	HTTP         *http.Client
	MaxPageBytes int64
}

// guarded is the client used when Client.HTTP is nil, made once so its
// connections are reused.
var guarded = sync.OnceValue(func() *http.Client { return httpx.New(false) })

// Fetch GETs one page with Accept: MediaType and Authorization: Bearer token and decodes it.
// A non-2xx answer is a *StatusError; a body that is not a membership
// container wraps ErrMalformed.
func (c *Client) Fetch(ctx context.Context, pageURL, token string) (*Page, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, pageURL, nil)
	if err != nil {
		return nil, fmt.Errorf("nrps: page URL: %w", err)
	}
	req.Header.Set("Accept", MediaType)
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("nrps: fetch %s: %w", req.URL.Redacted(), err)
	}
	defer closeBody(resp.Body)
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return nil, newStatusError(resp, time.Now())
	}
	// The Content-Type is not checked: platforms answer with the media
	// type, application/json, or text/html by mistake, and the body
	// decides whether this is a membership container.
	page, err := decodePage(resp.Body, c.maxPageBytes())
	if err != nil {
		return nil, fmt.Errorf("nrps: %s: %w", req.URL.Redacted(), err)
	}
	links := httpheader.Links(resp.Header.Values("Link"), resp.Request.URL)
	page.Next, page.Differences = links["next"], links["differences"]
	return page, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return guarded()
}

func (c *Client) maxPageBytes() int64 {
	if c.MaxPageBytes > 0 {
		return c.MaxPageBytes
	}
	return DefaultMaxPageBytes
}

// closeBody reads a little of what is left, so the connection can be
// reused, and closes the body.
func closeBody(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	_ = body.Close()
}

// ErrMalformed means a page is not a membership container the hub can
// apply.
var ErrMalformed = errors.New("nrps: malformed membership container") // wrapped with the detail (which field, which member index)

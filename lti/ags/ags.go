package ags

import (
	"bytes"
	"context"
	"encoding/json"
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

// Media types of AGS 2.0: a line item (read, created), a line item
// container (listed) and a score (posted).
const (
	MediaTypeLineItem          = "application/vnd.ims.lis.v2.lineitem+json"
	MediaTypeLineItemContainer = "application/vnd.ims.lis.v2.lineitemcontainer+json"
	MediaTypeScore             = "application/vnd.ims.lis.v1.score+json"
)

const (
	// DefaultMaxBodyBytes bounds an answer when Client.MaxBodyBytes is
	// zero: a page of a thousand line items with long labels is well
	// under a megabyte.
	DefaultMaxBodyBytes = 4 << 20
	// DefaultMaxPages bounds the pages LineItems follows when
	// Client.MaxPages is zero.
	DefaultMaxPages = 100
)

// Client calls a platform's line item and score services. HTTP nil uses
// the hub's guarded outbound client (no private addresses); MaxBodyBytes
// and MaxPages zero mean DefaultMaxBodyBytes and DefaultMaxPages.
type Client struct {
	HTTP         *http.Client
	MaxBodyBytes int64
	MaxPages     int
}

// guarded is the client used when Client.HTTP is nil, made once so its
// connections are reused.
var guarded = sync.OnceValue(func() *http.Client { return httpx.New(false) })

// Query filters a line item container: by the resource link a line item
// is bound to, by the tool's resource id, by tag; Limit asks for a page
// size (the limit parameter; zero leaves it to the platform, which may
// send fewer).
type Query struct {
	ResourceLinkID string
	ResourceID     string
	Tag            string
	Limit          int
}

// ContainerURL adds q's filters (resource_link_id, resource_id, tag,
// limit) to the lineitems URL, keeping its own query parameters:
// parameters of the same names already in the URL are replaced, the others
// keep their encoding byte for byte (Moodle's type_id must stay).
func ContainerURL(lineitemsURL string, q Query) (string, error) {
	u, err := serviceURL("lineitems", lineitemsURL)
	switch {
	case err != nil:
		return "", err
	case q.Limit < 0:
		return "", fmt.Errorf("ags: negative limit %d", q.Limit)
	}
	add := url.Values{}
	for _, p := range [][2]string{{"resource_link_id", q.ResourceLinkID}, {"resource_id", q.ResourceID}, {"tag", q.Tag}} {
		if p[1] != "" {
			add.Set(p[0], p[1])
		}
	}
	if q.Limit > 0 {
		add.Set("limit", strconv.Itoa(q.Limit))
	}
	u.RawQuery = mergeQuery(u.RawQuery, add)
	return u.String(), nil
}

// ScoresURL is the score endpoint of a line item: its URL with /scores
// appended to the path and the query kept as it is, so
// https://lms/x/lineitems/7?type_id=1 posts to
// https://lms/x/lineitems/7/scores?type_id=1. A fragment is dropped.
func ScoresURL(lineitemURL string) (string, error) {
	u, err := serviceURL("line item", lineitemURL)
	if err != nil {
		return "", err
	}
	if u.RawPath != "" {
		u.RawPath = strings.TrimSuffix(u.RawPath, "/") + "/scores"
	}
	u.Path = strings.TrimSuffix(u.Path, "/") + "/scores"
	u.Fragment, u.RawFragment = "", ""
	return u.String(), nil
}

// serviceURL parses a service URL, which must be absolute http(s).
func serviceURL(what, raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	switch {
	case err != nil:
		return nil, fmt.Errorf("ags: %s URL: %w", what, err)
	case (u.Scheme != "https" && u.Scheme != "http") || u.Host == "":
		return nil, fmt.Errorf("ags: %s URL %q is not an absolute http(s) URL", what, truncate(raw, 200))
	}
	return u, nil
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

// LineItems lists the container at lineitemsURL filtered by q, following
// Link rel="next" pages. A next link must stay on the container's origin
// (the same host; the scheme the same or https), so the token never goes
// elsewhere; a link that repeats a page, or pages past MaxPages, wrap
// ErrMalformed.
func (c *Client) LineItems(ctx context.Context, lineitemsURL, token string, q Query) ([]LineItem, error) {
	first, err := ContainerURL(lineitemsURL, q)
	if err != nil {
		return nil, err
	}
	origin, _ := url.Parse(first)
	items := []LineItem{}
	seen := map[string]bool{}
	for next := first; next != ""; {
		switch {
		case seen[next]:
			return nil, malformed("the next links return to %s", redact(next))
		case len(seen) >= c.maxPages():
			return nil, malformed("the line items run past %d pages", c.maxPages())
		}
		seen[next] = true
		page, link, err := c.containerPage(ctx, next, token)
		if err != nil {
			return nil, err
		}
		items = append(items, page...)
		if link != "" && !sameOrigin(origin, link) {
			return nil, malformed("a next link to another origin: %s", redact(link))
		}
		next = link
	}
	return items, nil
}

// containerPage GETs one page of a container: its line items and its next
// link.
func (c *Client) containerPage(ctx context.Context, pageURL, token string) ([]LineItem, string, error) {
	resp, err := c.do(ctx, http.MethodGet, pageURL, token, MediaTypeLineItemContainer, "", nil)
	if err != nil {
		return nil, "", err
	}
	defer closeBody(resp.Body)
	items, err := decodeContainer(resp.Body, c.maxBodyBytes())
	if err != nil {
		return nil, "", fmt.Errorf("ags: %s: %w", resp.Request.URL.Redacted(), err)
	}
	return items, httpheader.Links(resp.Header.Values("Link"), resp.Request.URL)["next"], nil
}

// GetLineItem reads the line item at lineitemURL.
func (c *Client) GetLineItem(ctx context.Context, lineitemURL, token string) (LineItem, error) {
	if _, err := serviceURL("line item", lineitemURL); err != nil {
		return LineItem{}, err
	}
	resp, err := c.do(ctx, http.MethodGet, lineitemURL, token, MediaTypeLineItem, "", nil)
	if err != nil {
		return LineItem{}, err
	}
	defer closeBody(resp.Body)
	li, err := decodeLineItem(resp.Body, c.maxBodyBytes())
	if err != nil {
		return LineItem{}, fmt.Errorf("ags: %s: %w", resp.Request.URL.Redacted(), err)
	}
	return li, nil
}

// CreateLineItem adds li (its ID empty, Validate passing) to the
// container at lineitemsURL and returns the line item as the platform made
// it, with its ID.
func (c *Client) CreateLineItem(ctx context.Context, lineitemsURL, token string, li LineItem) (LineItem, error) {
	if _, err := serviceURL("lineitems", lineitemsURL); err != nil {
		return LineItem{}, err
	}
	if err := li.Validate(); err != nil {
		return LineItem{}, err
	}
	w := li.wire()
	w.ID = ""
	body, err := json.Marshal(w)
	if err != nil {
		return LineItem{}, fmt.Errorf("ags: line item: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, lineitemsURL, token, MediaTypeLineItem, MediaTypeLineItem, body)
	if err != nil {
		return LineItem{}, err
	}
	defer closeBody(resp.Body)
	created, err := decodeLineItem(resp.Body, c.maxBodyBytes())
	if err != nil {
		return LineItem{}, fmt.Errorf("ags: %s: created: %w", resp.Request.URL.Redacted(), err)
	}
	return created, nil
}

// PostScore posts s (Validate passing) to the score endpoint of the line
// item at lineitemURL (ScoresURL). Any 2xx is success; its body, which
// the specification does not define (Canvas sends a resultUrl), is not
// read.
func (c *Client) PostScore(ctx context.Context, lineitemURL, token string, s Score) error {
	scoresURL, err := ScoresURL(lineitemURL)
	if err != nil {
		return err
	}
	if err := s.Validate(); err != nil {
		return err
	}
	body, err := json.Marshal(s.wire())
	if err != nil {
		return fmt.Errorf("ags: score: %w", err)
	}
	resp, err := c.do(ctx, http.MethodPost, scoresURL, token, "", MediaTypeScore, body)
	if err != nil {
		return err
	}
	closeBody(resp.Body)
	return nil
}

// do sends one request with the bearer token and returns a 2xx answer
// (the caller closes its body), or a *StatusError. A POST that a redirect
// turned into a GET (301, 302, 303) is refused: its 2xx would not be the
// answer to what was sent.
func (c *Client) do(ctx context.Context, method, target, token, accept, contentType string, body []byte) (*http.Response, error) {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, target, rd)
	if err != nil {
		return nil, fmt.Errorf("ags: request: %w", err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		return nil, fmt.Errorf("ags: %s %s: %w", method, req.URL.Redacted(), err)
	}
	if resp.Request.Method != method {
		closeBody(resp.Body)
		return nil, fmt.Errorf("%w: %s %s was redirected to %s %s", ErrMalformed, method, req.URL.Redacted(),
			resp.Request.Method, resp.Request.URL.Redacted())
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		defer closeBody(resp.Body)
		return nil, newStatusError(resp, time.Now())
	}
	return resp, nil
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	return guarded()
}

func (c *Client) maxBodyBytes() int64 {
	if c.MaxBodyBytes > 0 {
		return c.MaxBodyBytes
	}
	return DefaultMaxBodyBytes
}

func (c *Client) maxPages() int {
	if c.MaxPages > 0 {
		return c.MaxPages
	}
	return DefaultMaxPages
}

// sameOrigin reports whether link is on origin's host, by the same scheme
// or by https.
func sameOrigin(origin *url.URL, link string) bool {
	u, err := url.Parse(link)
	return err == nil && strings.EqualFold(u.Host, origin.Host) &&
		(strings.EqualFold(u.Scheme, origin.Scheme) || u.Scheme == "https")
}

// redact is a URL for an error message, without user information, cut
// short.
func redact(raw string) string {
	if u, err := url.Parse(raw); err == nil {
		raw = u.Redacted()
	}
	return truncate(raw, 200)
}

// closeBody reads a little of what is left, so the connection can be
// reused, and closes the body.
func closeBody(body io.ReadCloser) {
	_, _ = io.CopyN(io.Discard, body, 4<<10)
	_ = body.Close()
}

package scim

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/google/uuid"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/tenants/audit"
)

// ContentType is the SCIM media type (RFC 7644 §8.1); requests may send
// application/json too.
const ContentType = "application/scim+json"

// TenantFinder resolves a tenant slug: its id and whether it is active;
// an apperr NotFound when there is no such tenant.
type TenantFinder func(ctx context.Context, slug string) (id uuid.UUID, active bool, err error)

// Handlers serve /scim/v2/{tenant}/… as Echo handlers: the protocol
// surface an identity provider calls, outside the REST API.
type Handlers struct {
	Store     *Store
	Tokens    *Tokens
	Tenant    TenantFinder
	PublicURL string // the hub's external base URL, for locations
	Log       *slog.Logger
	// Refused, when set, is told of every refused token: the tenant whose
	// token it named (nil when it named none), the token's id, the reason.
	Refused func(c echo.Context, tenant *uuid.UUID, token uuid.UUID, reason string)
}

// principal is the authenticated directory of a request.
type principal struct {
	tenant uuid.UUID
	slug   string
	token  uuid.UUID
}

const principalKey = "scim.principal"

// Authenticate admits a request with a bearer token of the path's tenant;
// anything else answers 401 with a Bearer challenge (RFC 6750 §3), and a
// suspended tenant's token 403.
func (h *Handlers) Authenticate(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		scheme, tok, _ := strings.Cut(c.Request().Header.Get(echo.HeaderAuthorization), " ")
		tok = strings.TrimSpace(tok)
		if !strings.EqualFold(scheme, "Bearer") || tok == "" {
			return h.refuse(c, `Bearer realm="scim"`, nil, &Refusal{Reason: "missing"})
		}
		ctx := c.Request().Context()
		tenant, active, err := h.Tenant(ctx, c.Param("tenant"))
		if apperr.Is(err, apperr.NotFound) {
			return h.refuse(c, `Bearer realm="scim", error="invalid_token"`, nil, &Refusal{Reason: "unknown"})
		}
		if err != nil {
			return h.fail(c, err)
		}
		t, err := h.Tokens.Authenticate(ctx, tenant, tok)
		var ref *Refusal
		if errors.As(err, &ref) {
			return h.refuse(c, `Bearer realm="scim", error="invalid_token"`, &tenant, ref)
		}
		if err != nil {
			return h.fail(c, err)
		}
		if !active {
			return h.fail(c, &Error{Status: http.StatusForbidden, Detail: "the tenant is suspended"})
		}
		c.Set(principalKey, principal{tenant: tenant, slug: c.Param("tenant"), token: t.ID})
		return next(c)
	}
}

func (h *Handlers) refuse(c echo.Context, challenge string, tenant *uuid.UUID, ref *Refusal) error {
	if ref.Token == uuid.Nil {
		tenant = nil // the token named none of the tenant's: the operator's chain
	}
	if h.Refused != nil && ref.Reason != "missing" {
		h.Refused(c, tenant, ref.Token, ref.Reason)
	}
	c.Response().Header().Set(echo.HeaderWWWAuthenticate, challenge)
	return h.fail(c, errToken)
}

// TenantOf is the tenant a request Authenticate admitted is for.
func TenantOf(c echo.Context) uuid.UUID { return who(c).tenant }

func who(c echo.Context) principal {
	p, _ := c.Get(principalKey).(principal)
	return p
}

// actor is the token as the audit log names it.
func actor(c echo.Context) audit.Actor {
	return audit.Actor{Type: audit.ActorSCIMToken, ID: who(c).token.String(),
		RequestID: c.Response().Header().Get(echo.HeaderXRequestID)}
}

func (h *Handlers) base(c echo.Context) string {
	return strings.TrimSuffix(h.PublicURL, "/") + "/scim/v2/" + who(c).slug
}

// fail answers err as a SCIM error (RFC 7644 §3.12); an error that is not
// one is logged and answered 500 (503 when the database is unavailable)
// with a generic detail.
func (h *Handlers) fail(c echo.Context, err error) error {
	var se *Error
	if !errors.As(err, &se) {
		switch apperr.CodeOf(err) {
		case apperr.Unavailable:
			se = &Error{Status: http.StatusServiceUnavailable, Detail: "the directory is unavailable; try again"}
		case apperr.NotFound:
			se = &Error{Status: http.StatusNotFound, Detail: "not found"}
		default:
			h.Log.ErrorContext(c.Request().Context(), "scim request failed", "err", err)
			se = &Error{Status: http.StatusInternalServerError, Detail: "the directory failed; the hub's log has the reason"}
		}
	}
	return send(c, se.Status, se.body(), "")
}

// WriteError answers a SCIM error of status with detail and no scimType:
// for what the server refuses before a SCIM handler runs.
func WriteError(c echo.Context, status int, detail string) error {
	return send(c, status, (&Error{Status: status, Detail: detail}).body(), "")
}

// send writes v as application/scim+json, with its ETag when it has one.
func send(c echo.Context, status int, v any, etag string) error {
	if etag != "" {
		c.Response().Header().Set("ETag", etag)
	}
	c.Response().Header().Set(echo.HeaderContentType, ContentType) // c.JSON keeps a type set
	return c.JSON(status, v)
}

func (h *Handlers) resource(c echo.Context, status int, r Resource, err error) error {
	if err != nil {
		return h.fail(c, err)
	}
	proj := ParseProjection(c.QueryParam("attributes"), c.QueryParam("excludedAttributes"))
	proj.apply(r.Body)
	return send(c, status, r.Body, r.ETag)
}

func readBody(c echo.Context) ([]byte, error) {
	b, err := io.ReadAll(c.Request().Body)
	if err != nil {
		return nil, errorf(InvalidSyntax, "the body could not be read")
	}
	return b, nil
}

// CreateUser is POST /Users.
func (h *Handlers) CreateUser(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return h.fail(c, err)
	}
	r, err := h.Store.CreateUser(c.Request().Context(), actor(c), who(c).tenant, h.base(c), body)
	if err == nil {
		c.Response().Header().Set(echo.HeaderLocation, h.base(c)+"/Users/"+r.Body["id"].(string))
	}
	return h.resource(c, http.StatusCreated, r, err)
}

// GetUser is GET /Users/{id}.
func (h *Handlers) GetUser(c echo.Context) error {
	r, err := h.Store.GetUser(c.Request().Context(), who(c).tenant, h.base(c), c.Param("id"))
	return h.resource(c, http.StatusOK, r, err)
}

// ReplaceUser is PUT /Users/{id}.
func (h *Handlers) ReplaceUser(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return h.fail(c, err)
	}
	r, err := h.Store.ReplaceUser(c.Request().Context(), actor(c), who(c).tenant, h.base(c), c.Param("id"),
		c.Request().Header.Get("If-Match"), body)
	return h.resource(c, http.StatusOK, r, err)
}

// PatchUser is PATCH /Users/{id}: 200 with the user.
func (h *Handlers) PatchUser(c echo.Context) error {
	ops, err := h.operations(c)
	if err != nil {
		return h.fail(c, err)
	}
	r, err := h.Store.PatchUser(c.Request().Context(), actor(c), who(c).tenant, h.base(c), c.Param("id"),
		c.Request().Header.Get("If-Match"), ops)
	return h.resource(c, http.StatusOK, r, err)
}

func (h *Handlers) operations(c echo.Context) ([]Operation, error) {
	body, err := readBody(c)
	if err != nil {
		return nil, err
	}
	return ParsePatch(body)
}

// DeleteUser is DELETE /Users/{id}: 204.
func (h *Handlers) DeleteUser(c echo.Context) error {
	err := h.Store.DeleteUser(c.Request().Context(), actor(c), who(c).tenant, c.Param("id"), c.Request().Header.Get("If-Match"))
	if err != nil {
		return h.fail(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

// ListUsers is GET /Users.
func (h *Handlers) ListUsers(c echo.Context) error {
	page, err := pageOf(c)
	if err != nil {
		return h.fail(c, err)
	}
	l, err := h.Store.ListUsers(c.Request().Context(), who(c).tenant, h.base(c), c.QueryParam("filter"), page)
	return h.list(c, l, page, err)
}

// pageOf reads startIndex (1-based; less than 1 is 1) and count (default
// 100, at most MaxResults; negative is 0), RFC 7644 §3.4.2.4.
func pageOf(c echo.Context) (Page, error) {
	p := Page{StartIndex: 1, Count: DefaultCount}
	for name, dst := range map[string]*int{"startIndex": &p.StartIndex, "count": &p.Count} {
		if s := c.QueryParam(name); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil {
				return p, errorf(InvalidValue, "%s must be an integer", name)
			}
			*dst = n
		}
	}
	p.StartIndex = max(p.StartIndex, 1)
	p.Count = min(max(p.Count, 0), MaxResults)
	return p, nil
}

// listBody is a ListResponse (RFC 7644 §3.4.2).
type listBody struct {
	Schemas      []string         `json:"schemas"`
	TotalResults int              `json:"totalResults"`
	StartIndex   int              `json:"startIndex"`
	ItemsPerPage int              `json:"itemsPerPage"`
	Resources    []map[string]any `json:"Resources"`
}

func (h *Handlers) list(c echo.Context, l List, page Page, err error) error {
	if err != nil {
		return h.fail(c, err)
	}
	proj := ParseProjection(c.QueryParam("attributes"), c.QueryParam("excludedAttributes"))
	out := listBody{Schemas: []string{SchemaListResponse}, TotalResults: l.Total, StartIndex: page.StartIndex,
		Resources: make([]map[string]any, 0, len(l.Resources))}
	for _, r := range l.Resources {
		proj.apply(r.Body)
		out.Resources = append(out.Resources, r.Body)
	}
	out.ItemsPerPage = len(out.Resources)
	return send(c, http.StatusOK, out, "")
}

// CreateGroup is POST /Groups.
func (h *Handlers) CreateGroup(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return h.fail(c, err)
	}
	r, err := h.Store.CreateGroup(c.Request().Context(), actor(c), who(c).tenant, h.base(c), body)
	if err == nil {
		c.Response().Header().Set(echo.HeaderLocation, h.base(c)+"/Groups/"+r.Body["id"].(string))
	}
	return h.resource(c, http.StatusCreated, r, err)
}

// GetGroup is GET /Groups/{id}; excludedAttributes=members skips reading
// the members.
func (h *Handlers) GetGroup(c echo.Context) error {
	proj := ParseProjection(c.QueryParam("attributes"), c.QueryParam("excludedAttributes"))
	r, err := h.Store.GetGroup(c.Request().Context(), who(c).tenant, h.base(c), c.Param("id"), proj)
	return h.resource(c, http.StatusOK, r, err)
}

// ReplaceGroup is PUT /Groups/{id}.
func (h *Handlers) ReplaceGroup(c echo.Context) error {
	body, err := readBody(c)
	if err != nil {
		return h.fail(c, err)
	}
	r, err := h.Store.ReplaceGroup(c.Request().Context(), actor(c), who(c).tenant, h.base(c), c.Param("id"),
		c.Request().Header.Get("If-Match"), body)
	return h.resource(c, http.StatusOK, r, err)
}

// PatchGroup is PATCH /Groups/{id}: 204, or 200 with the group when the
// request asks for attributes or excludedAttributes.
func (h *Handlers) PatchGroup(c echo.Context) error {
	ops, err := h.operations(c)
	if err != nil {
		return h.fail(c, err)
	}
	ctx, tenant, id := c.Request().Context(), who(c).tenant, c.Param("id")
	if err := h.Store.PatchGroup(ctx, actor(c), tenant, id, c.Request().Header.Get("If-Match"), ops); err != nil {
		return h.fail(c, err)
	}
	if c.QueryParam("attributes") == "" && c.QueryParam("excludedAttributes") == "" {
		return c.NoContent(http.StatusNoContent)
	}
	return h.GetGroup(c)
}

// DeleteGroup is DELETE /Groups/{id}: 204.
func (h *Handlers) DeleteGroup(c echo.Context) error {
	err := h.Store.DeleteGroup(c.Request().Context(), actor(c), who(c).tenant, c.Param("id"), c.Request().Header.Get("If-Match"))
	if err != nil {
		return h.fail(c, err)
	}
	return c.NoContent(http.StatusNoContent)
}

// ListGroups is GET /Groups.
func (h *Handlers) ListGroups(c echo.Context) error {
	page, err := pageOf(c)
	if err != nil {
		return h.fail(c, err)
	}
	proj := ParseProjection(c.QueryParam("attributes"), c.QueryParam("excludedAttributes"))
	l, err := h.Store.ListGroups(c.Request().Context(), who(c).tenant, h.base(c), c.QueryParam("filter"), page, proj)
	return h.list(c, l, page, err)
}

// ServiceProviderConfig is GET /ServiceProviderConfig (RFC 7644 §4).
func (h *Handlers) ServiceProviderConfig(c echo.Context) error {
	return send(c, http.StatusOK, serviceProviderConfig(h.base(c)), "")
}

// ResourceTypes is GET /ResourceTypes.
func (h *Handlers) ResourceTypes(c echo.Context) error {
	return send(c, http.StatusOK, listOf(resourceTypes(h.base(c))), "")
}

// ResourceType is GET /ResourceTypes/{id}.
func (h *Handlers) ResourceType(c echo.Context) error {
	return h.one(c, resourceTypes(h.base(c)), "resource type")
}

// Schemas is GET /Schemas.
func (h *Handlers) Schemas(c echo.Context) error {
	return send(c, http.StatusOK, listOf(schemas(h.base(c))), "")
}

// Schema is GET /Schemas/{id}.
func (h *Handlers) Schema(c echo.Context) error {
	return h.one(c, schemas(h.base(c)), "schema")
}

func (h *Handlers) one(c echo.Context, all []map[string]any, what string) error {
	for _, m := range all {
		if strings.EqualFold(m["id"].(string), c.Param("id")) {
			return send(c, http.StatusOK, m, "")
		}
	}
	return h.fail(c, notFound(what, c.Param("id")))
}

func listOf(items []map[string]any) listBody {
	return listBody{Schemas: []string{SchemaListResponse}, TotalResults: len(items), StartIndex: 1, ItemsPerPage: len(items),
		Resources: items}
}

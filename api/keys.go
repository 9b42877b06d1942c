package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/labstack/echo/v4"

	"github.com/klasterina/hub/internal/apperr"
	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/tenants/audit"
)

// jwks publishes the hub's public keys: LTI platforms verify our messages
// and client assertions with them, the learning app our handoff tokens.
func (s *Server) jwks(c echo.Context) error {
	j, err := s.keys.PublishedJWKS(c.Request().Context())
	if err != nil {
		return err
	}
	// Caches downstream keep it no longer than the hub's own copy lives,
	// so a new key shows everywhere within one refresh interval.
	c.Response().Header().Set(echo.HeaderCacheControl, fmt.Sprintf("public, max-age=%d", int(j.MaxAge/time.Second)))
	return c.Blob(http.StatusOK, "application/jwk-set+json", j.Body)
}

func (s *Server) listKeys(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	infos, err := s.keys.List(c.Request().Context())
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, list[keys.Info]{Items: infos})
}

// rotateKey promotes the next key of a purpose; the retired one stays
// published for the overlap, so nothing signed before the rotation fails.
// The audit entry commits with the rotation. A rotation within the JWKS
// cache lifetime of the last one answers 409 with Retry-After.
func (s *Server) rotateKey(c echo.Context) error {
	if err := requireOperator(c); err != nil {
		return err
	}
	p := keys.Purpose(c.Param("purpose"))
	if p != keys.LTI && p != keys.Handoff {
		return apperr.New(apperr.NotFound, "no key purpose %q (lti, handoff)", p)
	}
	ctx := c.Request().Context()
	info, err := s.keys.Rotate(ctx, p, func(tx *sqlx.Tx, info keys.Info) error {
		_, err := s.audit.Append(ctx, tx, nil, actor(c), audit.Event{
			Action: "tool_key.rotated", TargetType: "tool_key", TargetID: info.KID, Details: map[string]string{"purpose": string(p)},
		})
		return err
	})
	var soon *keys.TooSoonError
	if errors.As(err, &soon) {
		c.Response().Header().Set("Retry-After", strconv.Itoa(int(math.Ceil(soon.Wait.Seconds()))))
	}
	if err != nil {
		return err
	}
	return c.JSON(http.StatusOK, info)
}

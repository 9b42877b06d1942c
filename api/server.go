package api

import (
	"context"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/jmoiron/sqlx"
	"github.com/labstack/echo-contrib/echoprometheus"
	"github.com/labstack/echo/v4"
	"github.com/labstack/echo/v4/middleware"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"riverqueue.com/riverui"

	"github.com/klasterina/hub/internal/keys"
	"github.com/klasterina/hub/internal/pg"
	"github.com/klasterina/hub/internal/secrets"
	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/web"
	"github.com/klasterina/hub/sso"
	"github.com/klasterina/hub/sso/scim"
	"github.com/klasterina/hub/sync/delivery"
	"github.com/klasterina/hub/sync/jobs"
	"github.com/klasterina/hub/sync/results"
	"github.com/klasterina/hub/sync/retention"
	"github.com/klasterina/hub/sync/roster"
	"github.com/klasterina/hub/tenants"
	"github.com/klasterina/hub/tenants/agreements"
	"github.com/klasterina/hub/tenants/audit"
	"github.com/klasterina/hub/tenants/destinations"
)

// MaxBodyBytes caps every request body; the admin API's bodies are small.
const MaxBodyBytes = 1 << 20

// Deps is what the server is built from; main wires it.
type Deps struct {
	DB         *sqlx.DB
	Migrator   *pg.Migrator
	Tenants    *tenants.Store
	Audit      *audit.Log
	Keys       *keys.Store
	Keysets    *keys.Cache // other parties' JWKS
	Catalog    *lti.Catalog
	LTI        *lti.Tool
	LTIRegs    *lti.Registrations
	Roster     *roster.Service
	Agreements *agreements.Store
	Learners   *agreements.Learners
	Results    *results.Store
	// Retention deletes what the agreements keep no longer and records its
	// runs; RetentionJobs queues them (on a schedule, or asked for).
	Retention     *agreements.Retention
	RetentionJobs *retention.Service
	Sealer        *secrets.Sealer // seals what the hub keeps or hands out encrypted
	JobsDB        *sqlx.DB        // the job engine's pool (text parameters)
	DeliveryDB    *sqlx.DB        // the delivery workers' pool (jobs.OpenWorkers)
	Jobs          *jobs.Client    // River: serve starts it
	AdminToken    string
	// TrustedProxies are the load balancers whose X-Forwarded-For names
	// the client; none: the peer address does.
	TrustedProxies []*net.IPNet
	Log            *slog.Logger
	Registry       *prometheus.Registry // nil: a fresh one
	RefusalAudit   RefusalAudit         // zero fields: the defaults it documents

	// Destinations are the tenants' webhook and xAPI destinations;
	// Delivery sends an admin's test to them; Deliveries route results to
	// their destinations and send them (River's delivery queue).
	Destinations *destinations.Store
	Delivery     *delivery.Sender
	Deliveries   *delivery.Service
	// SSO is employer sign-in: connections, domains, sessions.
	SSO *sso.Service

	// Directory is the tenants' SCIM 2.0 directories (Users, Groups), and
	// SCIMTokens the bearer tokens their identity providers push with.
	Directory  *scim.Store
	SCIMTokens *scim.Tokens
	// PublicURL is the hub's external base URL (HUB_PUBLIC_URL).
	PublicURL string
}

// Server is the hub's HTTP server.
type Server struct {
	echo          *echo.Echo
	db            *sqlx.DB
	migrator      *pg.Migrator
	tenants       *tenants.Store
	audit         *audit.Log
	keys          *keys.Store
	lti           *lti.Tool
	registrations *lti.Registrations
	catalog       *lti.Catalog
	roster        *roster.Service
	agreements    *agreements.Store
	learners      *agreements.Learners
	results       *results.Store
	retention     *agreements.Retention
	retentionJobs *retention.Service
	destinations  *destinations.Store
	delivery      *delivery.Sender
	deliveries    *delivery.Service
	directory     *scim.Store
	scimTokens    *scim.Tokens
	publicURL     string
	sealer        *secrets.Sealer
	sso           *sso.Service
	browser       *web.Handlers               // the browser-facing pages; routes sets it
	jobsUI        *riverui.Handler            // River's UI, for the operator; nil without a job engine
	crossOrigin   *http.CrossOriginProtection // refuses the UI's changes asked by other sites
	adminToken    []byte
	log           *slog.Logger
	registry      *prometheus.Registry
	refusals      *refusalAuditor // audits refused tokens within bounds
	inFlight      *inFlight       // each tenant's API-key requests in progress
	keyRequests   prometheus.Gauge
	scimRequests  prometheus.Gauge
}

// New builds the server with every route registered.
func New(d Deps) (*Server, error) {
	s := &Server{
		echo: echo.New(), db: d.DB, migrator: d.Migrator, tenants: d.Tenants, audit: d.Audit,
		keys: d.Keys, lti: d.LTI, registrations: d.LTIRegs, catalog: d.Catalog, roster: d.Roster, agreements: d.Agreements, learners: d.Learners, results: d.Results,
		retention: d.Retention, retentionJobs: d.RetentionJobs, destinations: d.Destinations, delivery: d.Delivery, deliveries: d.Deliveries,
		directory: d.Directory, scimTokens: d.SCIMTokens, publicURL: d.PublicURL, sealer: d.Sealer, sso: d.SSO, adminToken: []byte(d.AdminToken), log: d.Log, registry: d.Registry,
	}
	if s.registry == nil {
		s.registry = prometheus.NewRegistry()
	}
	if d.Jobs != nil {
		ui, err := jobs.NewUI(d.Jobs, jobsUIPrefix, d.Log)
		if err != nil {
			return nil, err
		}
		s.jobsUI = ui
	}
	s.crossOrigin = http.NewCrossOriginProtection()
	unaudited := prometheus.NewCounter(prometheus.CounterOpts{Namespace: "hub", Name: "auth_failures_unaudited_total",
		Help: "Refused bearer tokens not written to the audit log one by one (over a bound, writers busy, or the write failed); audited as counts."})
	s.registry.MustRegister(unaudited)
	s.refusals = newRefusalAuditor(d.RefusalAudit, d.Audit, unaudited, d.Log)
	s.inFlight = newInFlight(TenantInFlight)
	s.keyRequests = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "hub", Name: "api_key_requests_in_flight",
		Help: "Tenant API-key requests admitted and in progress on this replica."})
	s.registry.MustRegister(s.keyRequests)
	s.scimRequests = prometheus.NewGauge(prometheus.GaugeOpts{Namespace: "hub", Name: "scim_requests_in_flight",
		Help: "SCIM directory requests admitted and in progress on this replica."})
	s.registry.MustRegister(s.scimRequests)
	s.echo.HideBanner, s.echo.HidePort = true, true
	s.echo.HTTPErrorHandler = s.errorHandler
	s.echo.IPExtractor = ipExtractor(d.TrustedProxies)
	if err := s.middleware(); err != nil {
		return nil, err
	}
	s.routes()
	return s, nil
}

func (s *Server) middleware() error {
	metrics, err := echoprometheus.MiddlewareConfig{
		Namespace:  "hub",
		Subsystem:  "http",
		Registerer: s.registry,
		// The route pattern, never the raw path or Host header, labels a
		// request: clients must not be able to mint new time series.
		DoNotUseRequestPathFor404: true,
		StatusCodeResolver: func(c echo.Context, err error) int {
			if err == nil {
				return c.Response().Status
			}
			p, _ := problemFor(err)
			return p.Status
		},
		LabelFuncs: map[string]echoprometheus.LabelValueFunc{
			"host": func(echo.Context, error) string { return "" },
		},
	}.ToMiddleware()
	if err != nil {
		return err
	}
	s.registry.MustRegister(collectors.NewDBStatsCollector(s.db.DB, "hub"),
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	s.echo.Use(
		assignRequestID,
		noSniff,
		s.logRequests,
		middleware.Recover(),
		metrics,
		middleware.BodyLimit("1M"),
	)
	return nil
}

// noSniff stops browsers guessing a response's type from its content: a
// JSON answer or an error page is never run as a script or page.
func noSniff(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		c.Response().Header().Set(echo.HeaderXContentTypeOptions, "nosniff")
		return next(c)
	}
}

// ipExtractor names the client in the audit log and the failure limiter:
// the peer address, or the X-Forwarded-For entry added by a trusted proxy.
// A client-supplied header is never believed.
func ipExtractor(trusted []*net.IPNet) echo.IPExtractor {
	if len(trusted) == 0 {
		return echo.ExtractIPDirect()
	}
	opts := []echo.TrustOption{echo.TrustLoopback(false), echo.TrustLinkLocal(false), echo.TrustPrivateNet(false)}
	for _, n := range trusted {
		opts = append(opts, echo.TrustIPRange(n))
	}
	return echo.ExtractIPFromXFFHeader(opts...)
}

// Handler is the server as an http.Handler, for tests and main.
func (s *Server) Handler() http.Handler { return s.echo }

// HTTPServer wraps the handler with the timeouts a public server needs:
// slow clients cannot hold connections open forever.
func (s *Server) HTTPServer(addr string) *http.Server {
	return &http.Server{
		Addr:              addr,
		Handler:           s.echo,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       30 * time.Second,
		WriteTimeout:      60 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    64 << 10,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
	}
}

// routePaths lists every registered method and path, for the OpenAPI check.
func (s *Server) routePaths() []*echo.Route { return s.echo.Routes() }

// logRequests writes one structured line per request with its request id.
func (s *Server) logRequests(next echo.HandlerFunc) echo.HandlerFunc {
	return func(c echo.Context) error {
		start := time.Now()
		id := requestID(c)
		ctx := context.WithValue(c.Request().Context(), requestIDKey{}, id)
		c.SetRequest(c.Request().WithContext(ctx))
		err := next(c)
		if err != nil {
			c.Error(err)
		}
		level := slog.LevelInfo
		if c.Response().Status >= 500 {
			level = slog.LevelError
		}
		attrs := []slog.Attr{slog.String("method", c.Request().Method),
			slog.String("route", c.Path()),
			slog.Int("status", c.Response().Status),
			slog.Duration("duration", time.Since(start))}
		if cid, _ := c.Get(clientRequestIDKey).(string); cid != "" {
			attrs = append(attrs, slog.String(clientRequestIDKey, cid))
		}
		s.log.LogAttrs(ctx, level, "request", attrs...)
		return nil
	}
}

// CloseJobs closes the job engine's pools.
func (d Deps) CloseJobs() {
	d.JobsDB.Close()
	if d.DeliveryDB != nil {
		d.DeliveryDB.Close()
	}
}

package api

import (
	"github.com/klasterina/hub/lti/web"
	"github.com/klasterina/hub/sso"
	"github.com/klasterina/hub/sso/scim"
)

// routes lists every route the hub serves. The OpenAPI test checks this
// list against the document, both ways.
func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metrics())
	e.GET("/api/v1/openapi.json", serveOpenAPI)
	e.GET("/.well-known/jwks.json", s.jwks)

	// Browser-facing LTI endpoints: the platform's login initiation and
	// form post, inside the LMS's iframe.
	browser := web.New(s.lti, s.log)
	browser.Consents, browser.Sealer = s.agreements, s.sealer
	s.browser = browser
	e.GET("/lti/login", browser.HandleLogin)
	e.POST("/lti/login", browser.HandleLogin)
	e.GET("/lti/login/:registration", browser.HandleLogin)
	e.POST("/lti/login/:registration", browser.HandleLogin)
	e.GET("/lti/bound/:cookie", browser.HandleBound)
	e.POST("/lti/window", browser.HandleWindow)
	e.POST("/lti/launch", browser.HandleLaunch)
	e.POST("/lti/deep-link", browser.HandleDeepLink)
	e.POST("/lti/consent", browser.HandleConsent)
	// A learner's sharing choices, reached with a link the learning app
	// obtains over REST.
	e.GET("/consent/:link", browser.HandleChoices)
	e.POST("/consent/:link", browser.HandleChoice)
	// The same addresses, and the hub's root, opened in a browser: a page
	// saying what each is for.
	e.GET("/", browser.HandleHome)
	e.GET("/lti/launch", browser.HandleLaunchInfo)
	e.GET("/lti/deep-link", browser.HandleDeepLinkInfo)
	e.GET("/lti/register/:token", browser.HandleRegister)

	// Employer sign-in (OpenID Connect) and the hub's sessions; a sign-in
	// hands off as a launch does.
	signIn := sso.NewHandlers(s.sso, browser.HandOff, s.log)
	e.GET("/sso/start", signIn.HandleStart)
	e.GET("/sso/callback/:connection", signIn.HandleCallback)
	e.GET("/sso/session", signIn.HandleSession)
	e.POST("/sso/continue", signIn.HandleContinue)
	e.GET("/sso/logout", signIn.HandleLogoutPage)
	e.POST("/sso/logout", signIn.HandleLogout)
	e.GET("/sso/signed-out", signIn.HandleSignedOut)
	e.POST("/sso/backchannel-logout/:connection", signIn.HandleBackchannelLogout)
	// The tenants' SCIM 2.0 directories (RFC 7644), a protocol surface the
	// employers' identity providers call with a SCIM token, answering in
	// SCIM's own media type and errors.
	s.scimRoutes()

	// The learning app reports results with an app key (and only so).
	e.POST("/api/v1/results", s.createResult, s.authenticateApp)
	e.POST("/api/v1/results/batch", s.createResults, s.authenticateApp)

	// River's own UI: the job engine's jobs and queues, for the operator
	// only, who signs in with the operator token as a Basic password. Its
	// API changes jobs and queues with POST, PUT and PATCH.
	e.GET(jobsUIPrefix, s.serveJobsUI, s.authenticateOperator)
	e.GET(jobsUIPrefix+"/*", s.serveJobsUI, s.authenticateOperator)
	e.POST(jobsUIPrefix+"/*", s.serveJobsUI, s.authenticateOperator)
	e.PUT(jobsUIPrefix+"/*", s.serveJobsUI, s.authenticateOperator)
	e.PATCH(jobsUIPrefix+"/*", s.serveJobsUI, s.authenticateOperator)

	v1 := e.Group("/api/v1", s.authenticate)
	v1.POST("/app-keys", s.createAppKey)
	v1.GET("/app-keys", s.listAppKeys)
	v1.DELETE("/app-keys/:key", s.revokeAppKey)
	v1.POST("/tenants", s.createTenant)
	v1.GET("/tenants", s.listTenants)
	v1.GET("/tenants/:tenant", s.getTenant)
	v1.PATCH("/tenants/:tenant", s.updateTenant)
	v1.POST("/tenants/:tenant/suspend", s.suspendTenant)
	v1.POST("/tenants/:tenant/reactivate", s.reactivateTenant)

	v1.POST("/tenants/:tenant/api-keys", s.createAPIKey)
	v1.GET("/tenants/:tenant/api-keys", s.listAPIKeys)
	v1.GET("/tenants/:tenant/api-keys/:key", s.getAPIKey)
	v1.DELETE("/tenants/:tenant/api-keys/:key", s.revokeAPIKey)

	v1.POST("/tenants/:tenant/scim-tokens", s.createSCIMToken)
	v1.GET("/tenants/:tenant/scim-tokens", s.listSCIMTokens)
	v1.GET("/tenants/:tenant/scim-tokens/:token", s.getSCIMToken)
	v1.DELETE("/tenants/:tenant/scim-tokens/:token", s.revokeSCIMToken)

	v1.GET("/tenants/:tenant/audit", s.listTenantAudit)
	v1.GET("/tenants/:tenant/audit/verify", s.verifyTenantAudit)
	v1.POST("/tenants/:tenant/lti/registrations", s.createRegistration)
	v1.GET("/tenants/:tenant/lti/registrations", s.listRegistrations)
	v1.GET("/tenants/:tenant/lti/registrations/:registration", s.getRegistration)
	v1.PATCH("/tenants/:tenant/lti/registrations/:registration", s.updateRegistration)
	v1.DELETE("/tenants/:tenant/lti/registrations/:registration", s.deleteRegistration)
	v1.POST("/tenants/:tenant/lti/registrations/:registration/deployments", s.addDeployment)
	v1.DELETE("/tenants/:tenant/lti/registrations/:registration/deployments/:deployment", s.removeDeployment)
	v1.GET("/tenants/:tenant/lti/registrations/:registration/tool-configuration", s.toolConfiguration)
	v1.POST("/tenants/:tenant/lti/registration-links", s.createRegistrationLink)
	v1.GET("/tenants/:tenant/lti/registration-links", s.listRegistrationLinks)
	v1.DELETE("/tenants/:tenant/lti/registration-links/:link", s.revokeRegistrationLink)

	// The operator's shared registrations and their deployments' tenants.
	v1.POST("/lti/registrations", s.createSharedRegistration)
	v1.GET("/lti/registrations", s.listSharedRegistrations)
	v1.GET("/lti/registrations/:registration", s.getSharedRegistration)
	v1.PATCH("/lti/registrations/:registration", s.updateSharedRegistration)
	v1.DELETE("/lti/registrations/:registration", s.deleteSharedRegistration)
	v1.POST("/lti/registrations/:registration/deployments", s.assignSharedDeployment)
	v1.DELETE("/lti/registrations/:registration/deployments/:deployment", s.unassignSharedDeployment)
	v1.GET("/tenants/:tenant/lti/launches", s.listLaunches)

	// Courses and their rosters (NRPS).
	v1.GET("/tenants/:tenant/lti/contexts", s.listCourses)
	v1.GET("/tenants/:tenant/lti/contexts/:context", s.getCourse)
	v1.GET("/tenants/:tenant/lti/contexts/:context/members", s.listMembers)
	v1.POST("/tenants/:tenant/lti/contexts/:context/roster-syncs", s.requestRosterSync)
	v1.GET("/tenants/:tenant/roster-syncs", s.listRosterSyncs)
	v1.GET("/tenants/:tenant/roster-syncs/:run", s.getRosterSync)
	v1.GET("/tenants/:tenant/roster-schedule", s.getRosterSchedule)
	v1.PUT("/tenants/:tenant/roster-schedule", s.setRosterSchedule)

	// Data-sharing agreements, versioned.
	v1.POST("/tenants/:tenant/agreements", s.createAgreement)
	v1.GET("/tenants/:tenant/agreements", s.listAgreements)
	v1.GET("/tenants/:tenant/agreements/:agreement", s.getAgreement)
	v1.PUT("/tenants/:tenant/agreements/:agreement", s.updateAgreement)
	v1.POST("/tenants/:tenant/agreements/:agreement/activate", s.activateAgreement)
	v1.POST("/tenants/:tenant/agreements/:agreement/terminate", s.terminateAgreement)
	v1.GET("/tenants/:tenant/learners/:user/consent", s.getConsent)
	v1.PUT("/tenants/:tenant/learners/:user/consent", s.setConsent)
	v1.POST("/tenants/:tenant/learners/:user/consent-links", s.createConsentLink)
	// The record of disclosures: every decision on an outbound record.
	v1.GET("/tenants/:tenant/disclosures", s.listDisclosures)
	// Retention: runs deleting what the agreements keep no longer.
	v1.GET("/tenants/:tenant/retention-runs", s.listRetentionRuns)
	v1.POST("/tenants/:tenant/retention-runs", s.requestRetentionRun)
	v1.GET("/tenants/:tenant/retention-runs/:run", s.getRetentionRun)

	// Destinations: webhooks and xAPI LRSs that records may be sent to.
	v1.POST("/tenants/:tenant/destinations", s.createDestination)
	v1.GET("/tenants/:tenant/destinations", s.listDestinations)
	v1.GET("/tenants/:tenant/destinations/:destination", s.getDestination)
	v1.PATCH("/tenants/:tenant/destinations/:destination", s.updateDestination)
	v1.DELETE("/tenants/:tenant/destinations/:destination", s.deleteDestination)
	v1.POST("/tenants/:tenant/destinations/:destination/rotate-secret", s.rotateDestinationSecret)
	v1.POST("/tenants/:tenant/destinations/:destination/finish-rotation", s.finishDestinationRotation)
	v1.POST("/tenants/:tenant/destinations/:destination/test", s.testDestination)
	// Deliveries: each result's sending to each of its destinations, its
	// attempts, and sending again what died or failed.
	v1.GET("/tenants/:tenant/deliveries", s.listDeliveries)
	v1.POST("/tenants/:tenant/deliveries/redrive", s.redriveDeliveries)
	v1.GET("/tenants/:tenant/deliveries/:delivery", s.getDelivery)
	v1.POST("/tenants/:tenant/deliveries/:delivery/redrive", s.redriveDelivery)

	// Employer sign-in: the tenant's OpenID providers, the email domains
	// the operator routes to them, and the hub's sessions.
	v1.POST("/tenants/:tenant/sso/connections", s.createSSOConnection)
	v1.GET("/tenants/:tenant/sso/connections", s.listSSOConnections)
	v1.GET("/tenants/:tenant/sso/connections/:connection", s.getSSOConnection)
	v1.PATCH("/tenants/:tenant/sso/connections/:connection", s.updateSSOConnection)
	v1.DELETE("/tenants/:tenant/sso/connections/:connection", s.deleteSSOConnection)
	v1.GET("/tenants/:tenant/domains", s.listDomains)
	v1.PUT("/tenants/:tenant/domains/:domain", s.assignDomain)
	v1.DELETE("/tenants/:tenant/domains/:domain", s.removeDomain)
	v1.GET("/tenants/:tenant/sso/sessions", s.listSSOSessions)
	v1.DELETE("/tenants/:tenant/sso/sessions", s.endSSOSessions)
	v1.DELETE("/tenants/:tenant/sso/sessions/:session", s.endSSOSession)

	// Learners' rights: export, correction, erasure.
	v1.GET("/tenants/:tenant/learners/:user/export", s.exportLearner)
	v1.PATCH("/tenants/:tenant/learners/:user", s.correctLearner)
	v1.DELETE("/tenants/:tenant/learners/:user", s.eraseLearner)

	v1.POST("/activities", s.createActivity)
	v1.GET("/activities", s.listActivities)
	v1.GET("/activities/:activity", s.getActivity)
	v1.DELETE("/activities/:activity", s.deleteActivity)

	v1.GET("/keys", s.listKeys)
	v1.POST("/keys/:purpose/rotate", s.rotateKey)

	v1.GET("/audit", s.listOperatorAudit)
	v1.GET("/audit/verify", s.verifyOperatorAudit)
}

// scimRoutes are /scim/v2/{tenant}/…: Users and Groups, and the
// discovery endpoints (RFC 7644 §4).
func (s *Server) scimRoutes() {
	h := &scim.Handlers{Store: s.directory, Tokens: s.scimTokens, Tenant: s.scimTenant, PublicURL: s.publicURL, Log: s.log,
		Refused: s.auditSCIMRefusal}
	g := s.echo.Group("/scim/v2/:tenant", h.Authenticate, s.scimInFlight)
	g.GET("/Users", h.ListUsers)
	g.POST("/Users", h.CreateUser)
	g.GET("/Users/:id", h.GetUser)
	g.PUT("/Users/:id", h.ReplaceUser)
	g.PATCH("/Users/:id", h.PatchUser)
	g.DELETE("/Users/:id", h.DeleteUser)
	g.GET("/Groups", h.ListGroups)
	g.POST("/Groups", h.CreateGroup)
	g.GET("/Groups/:id", h.GetGroup)
	g.PUT("/Groups/:id", h.ReplaceGroup)
	g.PATCH("/Groups/:id", h.PatchGroup)
	g.DELETE("/Groups/:id", h.DeleteGroup)
	g.GET("/ServiceProviderConfig", h.ServiceProviderConfig)
	g.GET("/ResourceTypes", h.ResourceTypes)
	g.GET("/ResourceTypes/:id", h.ResourceType)
	g.GET("/Schemas", h.Schemas)
	g.GET("/Schemas/:id", h.Schema)
}

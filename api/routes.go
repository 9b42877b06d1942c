package api

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
	e.GET("/lti/login", s.lti.HandleLogin)
	e.POST("/lti/login", s.lti.HandleLogin)
	e.GET("/lti/login/:registration", s.lti.HandleLogin)
	e.POST("/lti/login/:registration", s.lti.HandleLogin)
	e.POST("/lti/launch", s.lti.HandleLaunch)
	e.POST("/lti/deep-link", s.lti.HandleDeepLink)
	e.GET("/lti/register/:token", s.lti.HandleRegister)

	v1 := e.Group("/api/v1", s.authenticate)
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

	v1.GET("/tenants/:tenant/audit", s.listTenantAudit)
	v1.GET("/tenants/:tenant/audit/verify", s.verifyTenantAudit)
	v1.POST("/tenants/:tenant/lti/registrations", s.createRegistration)
	v1.GET("/tenants/:tenant/lti/registrations", s.listRegistrations)
	v1.GET("/tenants/:tenant/lti/registrations/:registration", s.getRegistration)
	v1.DELETE("/tenants/:tenant/lti/registrations/:registration", s.deleteRegistration)
	v1.POST("/tenants/:tenant/lti/registrations/:registration/deployments", s.addDeployment)
	v1.DELETE("/tenants/:tenant/lti/registrations/:registration/deployments/:deployment", s.removeDeployment)
	v1.GET("/tenants/:tenant/lti/registrations/:registration/tool-configuration", s.toolConfiguration)
	v1.POST("/tenants/:tenant/lti/registration-links", s.createRegistrationLink)
	v1.GET("/tenants/:tenant/lti/launches", s.listLaunches)

	v1.POST("/activities", s.createActivity)
	v1.GET("/activities", s.listActivities)
	v1.GET("/activities/:activity", s.getActivity)
	v1.DELETE("/activities/:activity", s.deleteActivity)

	v1.GET("/keys", s.listKeys)
	v1.POST("/keys/:purpose/rotate", s.rotateKey)

	v1.GET("/audit", s.listOperatorAudit)
	v1.GET("/audit/verify", s.verifyOperatorAudit)
}

package api

// routes lists every route the hub serves. The OpenAPI test checks this
// list against the document, both ways.
func (s *Server) routes() {
	e := s.echo
	e.GET("/healthz", s.healthz)
	e.GET("/readyz", s.readyz)
	e.GET("/metrics", s.metrics())
	e.GET("/api/v1/openapi.json", serveOpenAPI)

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
	v1.GET("/audit", s.listOperatorAudit)
	v1.GET("/audit/verify", s.verifyOperatorAudit)
}

// Package api is the hub's HTTP face: one Echo server whose every route is
// listed in routes.go, the middleware around them (request id, logging,
// metrics, body limits, authentication), the one place errors become
// RFC 9457 problem+json responses, the REST handlers (a file per resource),
// and the OpenAPI document served at /api/v1/openapi.json.
//
// Handlers read decode → validate → store → respond; the domain packages
// own validation rules and queries, and know nothing of HTTP.
package api

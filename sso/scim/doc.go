// Package scim is the hub's SCIM 2.0 directory (RFC 7643 schemas, RFC 7644
// protocol): an employer's identity provider (Okta, Microsoft Entra ID)
// pushes its staff and groups to /scim/v2/{tenant}/Users and /Groups with a
// bearer token the tenant's admin issued (Tokens).
//
// A SCIM User is a row of users, the same row a sign-in through sso finds,
// so one person is one hub user whichever arrived first: the attributes
// the hub reads (userName, externalId, names, the primary email, active,
// the enterprise employeeNumber, department and manager) are columns, and
// everything else the directory sent is kept as sent in users.directory so
// a GET answers it back. Groups and their members are scim_groups and
// scim_group_members; a membership change is applied set-wise in SQL,
// never by reading the group's members.
//
// A request flows: the token middleware (Handlers.Authenticate) finds the
// tenant by its slug and the token within it; a list's filter is parsed by
// github.com/scim2/filter-parser/v2 and translated into SQL whose every
// value is a parameter (Filter); a PATCH is parsed into operations
// (ParsePatch) and applied in one transaction, to the user's document in
// memory (applyUser) or to a group's columns and members in SQL; every
// rejection answers RFC 7644 §3.12's error with its scimType and changes
// nothing.
package scim

package server

import (
	"slices"

	"github.com/relatedhq/related"
)

// mutationRoles is who may run each mutation. Queries and subscriptions
// are open to every role but integration (a partner's key is read-only,
// not blind; a workflow's key only writes); each mutation is listed, and
// one missing from the table is admin-only, so a mutation added to the
// schema is safe until someone decides otherwise. A test holds the table
// against the schema.
var mutationRoles = map[string][]string{
	// An agent's work: record and handle interactions, and its own
	// preferences. A workflow (integration) records messages and sets what
	// it learnt about contacts, nothing else.
	"recordMessage":        {related.RoleAgent, related.RoleAdmin, related.RoleIntegration},
	"closeInteraction":     {related.RoleAgent, related.RoleAdmin},
	"reopenInteraction":    {related.RoleAgent, related.RoleAdmin},
	"setContactAttributes": {related.RoleAgent, related.RoleAdmin, related.RoleIntegration},
	"setPreferences":       {related.RoleAgent, related.RoleAdmin},
	// Identity administration: rules, links, merges, names, suggestions,
	// quarantined values and the tenant's region decide whose history
	// every agent sees.
	"upsertProfileRule":  {related.RoleAdmin},
	"deleteProfileRule":  {related.RoleAdmin},
	"linkContact":        {related.RoleAdmin},
	"unlinkContact":      {related.RoleAdmin},
	"mergeProfiles":      {related.RoleAdmin},
	"renameProfile":      {related.RoleAdmin},
	"confirmSuggestion":  {related.RoleAdmin},
	"dismissSuggestion":  {related.RoleAdmin},
	"resolveConflict":    {related.RoleAdmin},
	"setValueQuarantine": {related.RoleAdmin},
	"setTenantSettings":  {related.RoleAdmin},
	// Erasure deletes a person for good: admins only, and logged.
	"eraseProfile": {related.RoleAdmin},
	"eraseContact": {related.RoleAdmin},
}

// queryRoles restricts the queries that are not for every reader: what a
// rule change would do is an admin's question.
var queryRoles = map[string][]string{
	"previewProfileRule":       {related.RoleAdmin},
	"previewDeleteProfileRule": {related.RoleAdmin},
	"erasures":                 {related.RoleAdmin},
}

// Roles lists every role a key can have.
var Roles = []string{related.RoleAdmin, related.RoleAgent, related.RolePartner, related.RoleIntegration}

// Allowed reports whether role may run the root field of object ("Query",
// "Mutation" or "Subscription"). An unknown role may run nothing.
func Allowed(role, object, field string) bool {
	known := false
	for _, r := range Roles {
		known = known || r == role
	}
	if !known {
		return false
	}
	switch object {
	case "Query", "Subscription":
		if roles, ok := queryRoles[field]; ok && object == "Query" {
			return slices.Contains(roles, role)
		}
		return role != related.RoleIntegration
	case "Mutation":
		roles, ok := mutationRoles[field]
		if !ok {
			return role == related.RoleAdmin
		}
		for _, r := range roles {
			if r == role {
				return true
			}
		}
	}
	return false
}

// MutationListed reports whether the mutation has an explicit entry in the
// role table (tests require one for every mutation of the schema).
func MutationListed(field string) bool {
	_, ok := mutationRoles[field]
	return ok
}

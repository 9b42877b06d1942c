package lti

import "testing"

// TestSameOrigin: the hub's public origin matches what a browser sends as
// Origin however the operator wrote HUB_PUBLIC_URL.
func TestSameOrigin(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		same bool
	}{
		{"https://hub.example", "https://hub.example", true},
		{"https://hub.example", "https://HUB.example:443", true},
		{"HTTPS://hub.example", "https://hub.example", true},
		{"http://hub.example:80", "http://hub.example", true},
		{"https://hub.example:8443", "https://hub.example:8443", true},
		{"https://[::1]:443", "https://[::1]", true},
		{"https://hub.example", "https://hub.example:8443", false},
		{"https://hub.example", "http://hub.example", false},
		{"https://hub.example", "https://attacker.example", false},
		{"null", "https://hub.example", false},
		{"", "https://hub.example", false},
		{"https://hub.example/path", "https://hub.example", false},
	} {
		if got := sameOrigin(tc.a, tc.b); got != tc.same {
			t.Errorf("sameOrigin(%q, %q) = %v, want %v", tc.a, tc.b, got, tc.same)
		}
	}
}

// TestRefusalLogNamesOnlyTheTenantsOwnClaims: a refusal whose signed
// claims name another installation's deployment is logged without them.
func TestRefusalLogNamesOnlyTheTenantsOwnClaims(t *testing.T) {
	mine, theirs := "dep-a", "dep-b"
	l := &Launch{target: target{Registration: Registration{DeploymentIDs: []string{mine}}}}
	if l.claimsAreTenants() {
		t.Fatal("a launch with no signed claims counts as the tenant's")
	}
	l.Claims.DeploymentID = &theirs
	if l.claimsAreTenants() {
		t.Fatal("another installation's claims count as the tenant's")
	}
	l.Claims.DeploymentID = &mine
	if !l.claimsAreTenants() {
		t.Fatal("the tenant's own deployment does not count")
	}
}

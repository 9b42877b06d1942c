package api_test

import (
	"testing"

	"github.com/klasterina/hub/lti"
	"github.com/klasterina/hub/lti/ltitest"
)

// The LIS v2 context role vocabulary of LTI 1.3 (appendix A.2.3): the
// principal roles, full and short, and their sub-roles, which live under
// membership/{principal}#{sub-role}.
const (
	membership    = "http://purl.imsglobal.org/vocab/lis/v2/membership#"
	membershipSub = "http://purl.imsglobal.org/vocab/lis/v2/membership/"
)

var subRoles = map[string][]string{
	"Administrator": {"Administrator", "Developer", "ExternalDeveloper", "ExternalSupport", "ExternalSystemAdministrator",
		"Support", "SystemAdministrator"},
	"ContentDeveloper": {"ContentDeveloper", "ContentExpert", "ExternalContentExpert", "Librarian"},
	"Instructor": {"ExternalInstructor", "Grader", "GuestInstructor", "Lecturer", "PrimaryInstructor", "SecondaryInstructor",
		"TeachingAssistant", "TeachingAssistantGroup", "TeachingAssistantOffering", "TeachingAssistantSection",
		"TeachingAssistantSectionAssociation", "TeachingAssistantTemplate"},
	"Learner": {"ExternalLearner", "GuestLearner", "Instructor", "Learner", "NonCreditLearner"},
	"Manager": {"AreaManager", "CourseCoordinator", "ExternalObserver", "Manager", "Observer"},
	"Member":  {"Member"},
	"Mentor": {"Advisor", "Auditor", "ExternalAdvisor", "ExternalAuditor", "ExternalLearningFacilitator", "ExternalMentor",
		"ExternalReviewer", "ExternalTutor", "LearningFacilitator", "Mentor", "Reviewer", "Tutor"},
	"Officer": {"Chair", "Communications", "Secretary", "Treasurer", "Vice-Chair"},
}

// staffPrincipals may add activities by deep linking: course staff. A
// Mentor is not (Canvas sends its observers, parents among them, as
// Mentor), nor a Manager (Observer is one of its sub-roles).
var staffPrincipals = map[string]bool{"Administrator": true, "ContentDeveloper": true, "Instructor": true}

// TestDeepLinkingByEveryContextRole launches a deep linking request with
// each context role and sub-role of the vocabulary, in its full form and
// its short form, alone: staff reach the picker, everyone else is refused.
// Sub-roles are stored in full.
func TestDeepLinkingByEveryContextRole(t *testing.T) {
	ph := newPlatformHub(t)
	type form struct{ name, role, full string }
	forms := map[string][]form{}
	for principal, subs := range subRoles {
		forms[principal] = append(forms[principal], form{principal + "/full", membership + principal, membership + principal},
			form{principal + "/short", principal, membership + principal})
		for _, sub := range subs {
			full := membershipSub + principal + "#" + sub
			forms[principal] = append(forms[principal], form{principal + "#" + sub + "/full", full, full},
				form{principal + "#" + sub + "/short", principal + "#" + sub, full})
		}
	}
	for principal, fs := range forms {
		for _, f := range fs {
			t.Run(f.name, func(t *testing.T) {
				ph.t = t
				r := ph.launch(ltitest.Launch{Message: lti.MessageDeepLinkingRequest, Roles: []string{f.role}})
				if !staffPrincipals[principal] {
					ph.refusedWith(r, lti.ReasonDeepLinkingNotAllowed)
					return
				}
				if r.status != 200 || !pickerSession.Match(r.body) {
					t.Fatalf("%s did not reach the picker: %d\n%s", f.role, r.status, r.body)
				}
			})
			if context, _, _ := lti.Roles([]string{f.role}); len(context) != 1 || context[0] != f.full {
				t.Errorf("Roles(%q) = %v, want [%s]", f.role, context, f.full)
			}
		}
	}
}

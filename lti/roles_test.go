package lti

import "testing"

func TestRoleLabel(t *testing.T) {
	for role, want := range map[string]string{
		RoleInstructor: "Instructor",
		RoleLearner:    "Learner",
		"http://purl.imsglobal.org/vocab/lis/v2/membership/Instructor#TeachingAssistant": "Teaching assistant",
		"http://purl.imsglobal.org/vocab/lis/v2/membership#ContentDeveloper":             "Content developer",
		"http://purl.imsglobal.org/vocab/lis/v2/institution/person#Faculty":              "Faculty",
		"http://purl.imsglobal.org/vocab/lis/v2/system/person#SysAdmin":                  "System administrator",
		"Learner":                                "Learner",
		"urn:example:role:Wizard":                "Wizard",
		"urn:lti:role:ims/lis/TeachingAssistant": "Teaching assistant",
		"":                                       "",
	} {
		if got := RoleLabel(role); got != want {
			t.Errorf("RoleLabel(%q) = %q, want %q", role, got, want)
		}
	}
}

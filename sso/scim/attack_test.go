package scim

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkApplyUserWorst applies the largest user PATCH the bounds admit
// near the body's 1 MiB: MaxUserOperations operations, each adding 20
// emails to a list of MaxValues. Run: go test ./sso/scim -run ^$ -bench ApplyUserWorst
func BenchmarkApplyUserWorst(b *testing.B) {
	var body strings.Builder
	body.WriteString(`{"Operations":[`)
	for i := range MaxUserOperations {
		if i > 0 {
			body.WriteByte(',')
		}
		body.WriteString(`{"op":"add","path":"emails","value":[`)
		for j := range 20 {
			if j > 0 {
				body.WriteByte(',')
			}
			fmt.Fprintf(&body, `{"value":"e%d@x.example"}`, (i*20+j)%MaxValues)
		}
		body.WriteString(`]}`)
	}
	body.WriteString(`]}`)
	ops, err := ParsePatch([]byte(body.String()))
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(body.Len()), "body-bytes")
	for b.Loop() {
		if err := applyUser(document{"userName": "ada"}, "id", ops); err != nil {
			b.Fatal(err)
		}
	}
}

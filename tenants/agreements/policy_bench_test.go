package agreements

import "testing"

// BenchmarkDecide measures the policy on the path every sent record takes:
// a record that goes as it is, and one that loses a field.
//
//	go test ./tenants/agreements -run '^$' -bench Decide
func BenchmarkDecide(b *testing.B) {
	for _, bc := range []struct {
		name   string
		fields []Field
		want   Outcome
	}{
		{"share", []Field{FieldName, FieldExternalID}, OutcomeShare},
		{"minimized", []Field{FieldName, FieldEmail, "phone"}, OutcomeShareMinimized},
	} {
		b.Run(bc.name, func(b *testing.B) {
			in := baseline()
			in.d = Destination{Kind: DestinationXAPI, ID: id(xapiID)} // the last destination named
			in.r.Fields = bc.fields
			if got := Decide(in.a, in.c, in.r, in.d, in.now); got.Outcome != bc.want {
				b.Fatalf("outcome %q, want %q", got.Outcome, bc.want)
			}
			b.ReportAllocs()
			for b.Loop() {
				Decide(in.a, in.c, in.r, in.d, in.now)
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "decisions/s")
		})
	}
}

package depsum

import (
	"context"
	"fmt"
	"strings"
	"testing"
)

// BenchmarkCheck checks a go.sum of 200 lines (100 module versions) against
// a warm cache: "memory" reuses one SumDB (records and tiles in memory);
// "disk" starts a new SumDB each time (a restarted process: tree head,
// records and tiles read from the cache directory).
func BenchmarkCheck(b *testing.B) {
	var pvs []string
	for i := range 100 {
		pvs = append(pvs, fmt.Sprintf("example.com/mod%03d@v1.%d.0", i, i))
	}
	pub := newTestDB(b, recordsFor(pvs...), pvs...)
	gomod, gosum := gosumFor(pvs...)
	lines := strings.Count(gosum, "\n")
	dir := b.TempDir()
	warm := newTestSumDB(b, pub.srv.URL, dir)
	check := func(b *testing.B, db DB) {
		_, err := (&Checker{Public: db}).Check(context.Background(), mainModule, []byte(gomod), []byte(gosum))
		if err != nil {
			b.Fatal(err)
		}
	}
	check(b, warm)
	b.Run("memory", func(b *testing.B) {
		before := pub.Requests()
		for b.Loop() {
			check(b, warm)
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
		b.ReportMetric(float64(pub.Requests()-before)/float64(b.N), "requests/op")
	})
	b.Run("disk", func(b *testing.B) {
		before := pub.Requests()
		for b.Loop() {
			check(b, newTestSumDB(b, pub.srv.URL, dir))
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*lines), "ns/line")
		b.ReportMetric(float64(pub.Requests()-before)/float64(b.N), "requests/op")
	})
}

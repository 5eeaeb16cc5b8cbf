package sumlog

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"golang.org/x/mod/module"
)

// BenchmarkAppend measures durable appends: every one fsyncs the record,
// its hashes and the new signed head (the rename of latest included).
func BenchmarkAppend(b *testing.B) {
	k := newTestKey(b, testName)
	l := openTestLog(b, b.TempDir(), k)
	ctx := context.Background()
	i := 0
	for b.Loop() {
		m := numbered(i)
		if _, err := l.Append(ctx, m, recordFor(m, "")); err != nil {
			b.Fatal(err)
		}
		i++
	}
	b.ReportMetric(float64(i)/b.Elapsed().Seconds(), "records/s")
}

// BenchmarkLookupHTTP measures /lookup/M@V through the Handler over a real
// HTTP connection, with records already in the log: the request the go
// command makes for every module version it has not seen.
func BenchmarkLookupHTTP(b *testing.B) {
	const n = 300
	k := newTestKey(b, testName)
	l := openTestLog(b, b.TempDir(), k)
	ctx := context.Background()
	urls := make([]string, n)
	srv := httptest.NewServer(http.StripPrefix("/sumdb/"+testName, l.Handler()))
	defer srv.Close()
	for i := range n {
		m := numbered(i)
		if _, err := l.Append(ctx, m, recordFor(m, "")); err != nil {
			b.Fatal(err)
		}
		urls[i] = srv.URL + "/sumdb/" + testName + "/lookup/" + escaped(b, m)
	}
	client := srv.Client()
	i := 0
	for b.Loop() {
		resp, err := client.Get(urls[i%n])
		if err != nil {
			b.Fatal(err)
		}
		_, err = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err != nil || resp.StatusCode != http.StatusOK {
			b.Fatalf("GET %s: %d %v", urls[i%n], resp.StatusCode, err)
		}
		i++
	}
}

func escaped(b *testing.B, m module.Version) string {
	p, err1 := module.EscapePath(m.Path)
	v, err2 := module.EscapeVersion(m.Version)
	if err1 != nil || err2 != nil {
		b.Fatal(err1, err2)
	}
	return fmt.Sprintf("%s@%s", p, v)
}

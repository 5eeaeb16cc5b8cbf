package depsum

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/internal/sumdbtest"
)

// testDBName is the name of the test checksum databases, and testKey
// their one key (so that two can disagree under the same name: a fork).
const testDBName = sumdbtest.Name

var testKey = sumdbtest.SharedKey

// h1 is a made-up but well-formed h1: hash.
func h1(s string) string {
	sum := sha256.Sum256([]byte(s))
	return "h1:" + base64.StdEncoding.EncodeToString(sum[:])
}

func zipHash(path, vers string) string { return h1("zip " + path + " " + vers) }
func modHash(path, vers string) string { return h1("mod " + path + " " + vers) }

// sumLines are the two go.sum lines of a made-up module version.
func sumLines(path, vers string) string {
	return fmt.Sprintf("%s %s %s\n%s %s/go.mod %s\n", path, vers, zipHash(path, vers), path, vers, modHash(path, vers))
}

func modLine(path, vers string) string {
	return fmt.Sprintf("%s %s/go.mod %s\n", path, vers, modHash(path, vers))
}

// testDB is a checksum database served over HTTP from sumdb.TestServer.
type testDB struct {
	*sumdbtest.Server
	srv *httptest.Server
}

// newTestDB serves records (keyed "path@version") signed with the test key.
// The versions in order are added to the log first, in that order, so that
// record ids are deterministic.
func newTestDB(t testing.TB, records map[string]string, order ...string) *testDB {
	t.Helper()
	skey, _ := testKey()
	db := &testDB{Server: sumdbtest.New(skey, records)}
	for _, pv := range order {
		path, vers, _ := strings.Cut(pv, "@")
		if _, err := db.TS.Lookup(context.Background(), module.Version{Path: path, Version: vers}); err != nil {
			t.Fatalf("preloading %s: %v", pv, err)
		}
	}
	db.srv = httptest.NewServer(db.Handler())
	t.Cleanup(db.srv.Close)
	return db
}

// recordsFor makes the records of made-up module versions ("path@version").
func recordsFor(pvs ...string) map[string]string {
	m := make(map[string]string)
	for _, pv := range pvs {
		path, vers, _ := strings.Cut(pv, "@")
		m[pv] = sumLines(path, vers)
	}
	return m
}

// newTestSumDB is a SumDB for url with the test key, caching in dir.
func newTestSumDB(t testing.TB, url, dir string) *SumDB {
	t.Helper()
	_, vkey := testKey()
	db, err := NewSumDB(SumDBOptions{
		Key:      vkey,
		URL:      url,
		CacheDir: dir,
		Logger:   slog.New(slog.NewTextHandler(io.Discard, nil)),
	})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

// mapDB is a private database held in a map ("path@version" → lines).
func mapDB(records map[string]string) DB {
	return DBFunc(func(ctx context.Context, m module.Version) ([]string, error) {
		rec, ok := records[m.String()]
		if !ok {
			return nil, fmt.Errorf("%s: %w", m, fs.ErrNotExist)
		}
		return strings.Split(strings.TrimSuffix(rec, "\n"), "\n"), nil
	})
}

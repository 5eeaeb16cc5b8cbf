// Package sumdbtest serves a checksum database for tests: the test server
// of golang.org/x/mod/sumdb (a real tlog, real signed tree heads and
// proofs) over HTTP, with records that can change while it runs, an
// interceptor for failures, and counts of what it was asked.
package sumdbtest

import (
	"crypto/rand"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/note"
)

// Name is the name of the databases signed with SharedKey.
const Name = "sum.example.test"

// SharedKey is one signer and verifier key for Name, made once per test
// binary, so that two databases can disagree under the same name and key
// (a fork).
var SharedKey = sync.OnceValues(func() (skey, vkey string) {
	skey, vkey, err := note.GenerateKey(rand.Reader, Name)
	if err != nil {
		panic(err)
	}
	return skey, vkey
})

// Key generates a signer and verifier key for a database called name.
func Key(tb testing.TB, name string) (skey, vkey string) {
	tb.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		tb.Fatal(err)
	}
	return skey, vkey
}

// Server is one test checksum database. Its methods are safe for
// concurrent use.
type Server struct {
	// TS is the x/mod test server: Lookup adds a record to the log, so
	// tests can fix the order of record ids before any client asks.
	TS *sumdb.TestServer

	handler   http.Handler
	requests  atomic.Int64
	intercept atomic.Pointer[func(http.ResponseWriter, *http.Request) bool]

	mu      sync.Mutex
	records map[string]string // "path@version" → go.sum lines
	asked   []string          // the paths of /lookup/ requests
}

// New makes a database signed with skey whose records (keyed
// "path@version", copied) are added to its log when first asked for.
func New(skey string, records map[string]string) *Server {
	s := &Server{records: make(map[string]string, len(records))}
	for k, v := range records {
		s.records[k] = v
	}
	s.TS = sumdb.NewTestServer(skey, func(path, vers string) ([]byte, error) {
		s.mu.Lock()
		defer s.mu.Unlock()
		rec, ok := s.records[path+"@"+vers]
		if !ok {
			return nil, fs.ErrNotExist
		}
		return []byte(rec), nil
	})
	h := sumdb.NewServer(s.TS)
	s.handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.requests.Add(1)
		if strings.HasPrefix(r.URL.Path, "/lookup/") {
			s.mu.Lock()
			s.asked = append(s.asked, r.URL.Path)
			s.mu.Unlock()
		}
		if f := s.intercept.Load(); f != nil && (*f)(w, r) {
			return
		}
		h.ServeHTTP(w, r)
	})
	return s
}

// Handler serves the database's protocol (/lookup/, /tile/, /latest),
// counted and intercepted.
func (s *Server) Handler() http.Handler { return s.handler }

// Serve serves the database over HTTP until the test ends and returns its
// URL.
func (s *Server) Serve(tb testing.TB) string {
	srv := httptest.NewServer(s.handler)
	tb.Cleanup(srv.Close)
	return srv.URL
}

// Set adds or changes the record of pv ("path@version") that the database
// will add to its log when asked (a record already in the log stays).
func (s *Server) Set(pv, rec string) {
	s.mu.Lock()
	s.records[pv] = rec
	s.mu.Unlock()
}

// Intercept makes f see each request first; f returning true means it
// answered. nil removes it.
func (s *Server) Intercept(f func(http.ResponseWriter, *http.Request) bool) {
	if f == nil {
		s.intercept.Store(nil)
		return
	}
	s.intercept.Store(&f)
}

// Lookups returns the paths of the /lookup/ requests so far.
func (s *Server) Lookups() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.asked...)
}

// Requests is the number of requests so far.
func (s *Server) Requests() int64 { return s.requests.Load() }

package pipeline

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path"
	"strings"
	"sync"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/mirror"
	"github.com/modgate/modgate/verifiers/depsum"
	"github.com/modgate/modgate/verifiers/integrity"
)

// DependencyChecker checks a module's go.mod and go.sum against the checksum
// databases; depsum.Checker is the implementation.
type DependencyChecker interface {
	Check(ctx context.Context, m module.Version, gomod, gosum []byte) (*depsum.Report, error)
}

// checkDependencies is `go mod verify` without a module cache: every
// requirement has its go.sum lines, and every go.sum line is what the
// authoritative checksum database says.
func (p *Pipeline) checkDependencies(ctx context.Context, j *Job) error {
	if j.mirror == nil { // a public module: its go.sum is in the checked zip
		f, err := os.Open(j.ZipFile)
		var gosum []byte
		if err == nil {
			gosum, err = integrity.GoSumFromFile(f, j.Module)
			f.Close()
		}
		if err != nil {
			return reject(fmt.Errorf("%w: go.sum: %v", ErrBadZip, err))
		}
		return p.checkGoSum(ctx, j, gosum)
	}
	gosum, err := j.mirror.ReadFile(ctx, j.Commit, path.Join(j.Subdir, "go.sum"), integrity.MaxGoSum)
	if errors.Is(err, mirror.ErrNotFound) {
		gosum, err = nil, nil
	}
	if err != nil {
		var ge *mirror.Error
		if errors.As(err, &ge) {
			return err
		}
		return reject(err) // over the size limit
	}
	return p.checkGoSum(ctx, j, gosum)
}

// checkGoSum checks go.mod and go.sum against the checksum databases.
func (p *Pipeline) checkGoSum(ctx context.Context, j *Job, gosum []byte) error {
	deps := p.deps
	if j.Request.Module != "" {
		deps = p.depsLines
	}
	if lines, err := depsum.ParseGoSum(gosum); err == nil {
		seen := make(map[module.Version]bool)
		for _, l := range lines {
			m := module.Version{Path: l.Path, Version: l.Version}
			if !seen[m] {
				seen[m] = true
				j.SumModules = append(j.SumModules, m)
			}
		}
	}
	_, err := deps.Check(ctx, j.Module, j.GoMod, gosum)
	var problems *depsum.CheckErrors
	switch {
	case err == nil:
		return nil
	case depsum.IsTransient(err), errors.Is(err, depsum.ErrConfig):
		return err
	case errors.As(err, &problems):
		// One verdict line per dependency problem, each classified on its own.
		errs := make([]error, len(problems.Problems))
		for i, p := range problems.Problems {
			errs[i] = p
		}
		return reject(errs...)
	default:
		return reject(err)
	}
}

// newDependencyChecker builds the checker from the configuration: private
// paths (those a configured repository may publish) against modgate's own
// records, public paths against the public checksum database.
func newDependencyChecker(cfg *config.Config, st Store, log ChecksumLog, public depsum.DB) *depsum.Checker {
	c := &depsum.Checker{Public: public}
	if patterns := cfg.PrivatePatterns(); len(patterns) > 0 {
		c.PrivatePatterns = patterns
		c.Private = privateDB(st, log)
	}
	return c
}

// privateDB answers lookups of private modules from the checksum log, the
// record clients verify against, or, without one, from the store.
func privateDB(st Store, log ChecksumLog) depsum.DB {
	if log != nil {
		return depsum.DBFunc(func(ctx context.Context, m module.Version) ([]string, error) {
			_, text, err := log.Lookup(ctx, m)
			if err != nil {
				return nil, err
			}
			return strings.Split(strings.TrimSuffix(string(text), "\n"), "\n"), nil
		})
	}
	return depsum.DBFunc(func(ctx context.Context, m module.Version) ([]string, error) {
		pub, err := st.Lookup(ctx, m)
		if err != nil {
			return nil, err
		}
		return []string{
			m.Path + " " + m.Version + " " + pub.ZipHash,
			m.Path + " " + m.Version + "/go.mod " + pub.ModHash,
		}, nil
	})
}

// lazyPublicDB discovers the public checksum database on first use, the way
// the go command does, so that modules without public dependencies never
// touch the network. A failed discovery is retried on the next lookup.
type lazyPublicDB struct {
	cfg config.PublicSumDBConfig
	mu  sync.Mutex
	db  *depsum.SumDB
}

func (l *lazyPublicDB) Lookup(ctx context.Context, m module.Version) ([]string, error) {
	db, err := l.get(ctx)
	if err != nil {
		return nil, err
	}
	return db.Lookup(ctx, m)
}

// epoch is the database's depsum.SumDB.Epoch; 0 before it is discovered.
func (l *lazyPublicDB) epoch() uint64 {
	l.mu.Lock()
	db := l.db
	l.mu.Unlock()
	if db == nil {
		return 0
	}
	return db.Epoch()
}

func (l *lazyPublicDB) get(ctx context.Context) (*depsum.SumDB, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.db != nil {
		return l.db, nil
	}
	goproxy, gosumdb := l.cfg.GOPROXY, l.cfg.GOSUMDB
	if goproxy == "" || gosumdb == "" {
		envProxy, envSumDB := goEnv()
		goproxy = orDefault(goproxy, envProxy)
		gosumdb = orDefault(gosumdb, envSumDB)
	}
	client := &http.Client{Timeout: l.cfg.Timeout}
	opts, err := depsum.Discover(ctx, goproxy, gosumdb, client)
	if err != nil {
		if errors.Is(err, depsum.ErrConfig) {
			return nil, err
		}
		return nil, fmt.Errorf("%w: discovering the public checksum database (GOPROXY=%s GOSUMDB=%s): %v", depsum.ErrUnavailable, goproxy, gosumdb, err)
	}
	opts.CacheDir, opts.HTTPClient, opts.Timeout = l.cfg.CacheDir, client, l.cfg.Timeout
	db, err := depsum.NewSumDB(opts)
	if err != nil {
		return nil, err
	}
	l.db = db
	return db, nil
}

func orDefault(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// goEnv reads GOPROXY and GOSUMDB as the go command resolves them (its
// environment, then go env -w settings, then its defaults).
func goEnv() (goproxy, gosumdb string) {
	out, err := exec.Command("go", "env", "GOPROXY", "GOSUMDB").Output()
	if err == nil {
		if f := strings.Split(strings.TrimSpace(string(out)), "\n"); len(f) == 2 {
			return f[0], f[1]
		}
	}
	goproxy, gosumdb = os.Getenv("GOPROXY"), os.Getenv("GOSUMDB")
	if goproxy == "" {
		goproxy = "https://proxy.golang.org,direct"
	}
	if gosumdb == "" {
		gosumdb = "sum.golang.org"
	}
	return goproxy, gosumdb
}

package sumlog

import (
	"context"
	"fmt"
	"io/fs"
	"net/http"

	"golang.org/x/mod/module"
	"golang.org/x/mod/sumdb"
	"golang.org/x/mod/sumdb/tlog"
)

// Handler serves the log with the checksum database protocol, relative to
// where it is mounted (mount it at <GOPROXY>/sumdb/<name>/ with
// http.StripPrefix): /lookup/M@V, /latest and /tile/… from sumdb.NewServer,
// and /supported, which the go command probes before it uses a proxy for
// the database. What it serves never goes past the published head, so a
// client never sees a record that a crash could take back.
func (l *Log) Handler() http.Handler {
	db := sumdb.NewServer(serverOps{l})
	mux := http.NewServeMux()
	for _, p := range sumdb.ServerPaths {
		mux.Handle("GET "+p, db)
	}
	mux.HandleFunc("GET /supported", func(w http.ResponseWriter, r *http.Request) {
		w.WriteHeader(http.StatusOK)
	})
	return mux
}

// serverOps is the log as sumdb.ServerOps. The sumdb server maps an error to
// 404 only when os.IsNotExist holds, which does not unwrap %w chains, so
// "not there" is returned as an *fs.PathError.
type serverOps struct{ l *Log }

var _ sumdb.ServerOps = serverOps{}

func notExist(op, what string) error {
	return &fs.PathError{Op: op, Path: what, Err: fs.ErrNotExist}
}

func (s serverOps) Signed(ctx context.Context) ([]byte, error) {
	_, signed, err := s.l.TreeHead(ctx)
	return signed, err
}

func (s serverOps) ReadRecords(ctx context.Context, id, n int64) ([][]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	v, err := s.l.view()
	if err != nil {
		return nil, err
	}
	texts, err := s.l.readRecords(v, id, n)
	if isNotExist(err) {
		return nil, notExist("read records", fmt.Sprintf("%d+%d", id, n))
	}
	return texts, err
}

func (s serverOps) Lookup(ctx context.Context, m module.Version) (int64, error) {
	if err := ctx.Err(); err != nil {
		return 0, err
	}
	s.l.mu.RLock()
	defer s.l.mu.RUnlock()
	if s.l.closed {
		return 0, errClosed
	}
	id, ok := s.l.index[m]
	if !ok {
		return 0, notExist("lookup", m.String())
	}
	return id, nil
}

// tileHeight is the only tile height served: the go command's sumdb client
// uses 8, as sum.golang.org does. Refusing others also keeps a request for
// /tile/30/… from making tlog.ReadTileData allocate 2^30 indexes.
const tileHeight = 8

func (s serverOps) ReadTileData(ctx context.Context, t tlog.Tile) ([]byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if t.H != tileHeight {
		return nil, notExist("read tile", t.Path())
	}
	v, err := s.l.view()
	if err != nil {
		return nil, err
	}
	data, err := tlog.ReadTileData(t, hashReader(v.hashes))
	if isNotExist(err) {
		return nil, notExist("read tile", t.Path())
	}
	return data, err
}

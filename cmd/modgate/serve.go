package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"time"

	"github.com/modgate/modgate/server"
	"github.com/modgate/modgate/store"
)

func cmdServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("serve", stderr)
	cfgFile := fs.String("config", "", "configuration `file` (default: built-in defaults, data in ./data)")
	listen := fs.String("listen", "", "listen `address`, overriding server.listen")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		return err
	}
	if *listen != "" {
		cfg.Server.Listen = *listen
	}
	log := newLogger(stderr, slog.LevelInfo)
	st, err := store.Open(cfg.Store.Dir)
	if err != nil {
		return err
	}
	db, err := openChecksumDB(cfg)
	if err != nil {
		return err
	}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, "ok\n") })
	mux.Handle("/", server.NewProxy(st, log))
	if db != nil {
		defer db.log.Close()
		db.mount(mux)
		if r := db.log.Recovery(); r.TornBytes+r.HashesRedone+r.HashesDropped+r.UnsignedTail > 0 || r.RemovedTmpFile {
			log.Warn("checksum database recovered after a crash", "recovery", fmt.Sprintf("%+v", r))
		}
	} else {
		log.Warn("no checksum database configured (checksum_db.key_file): clients must set GONOSUMDB for private modules")
	}

	ln, err := net.Listen("tcp", cfg.Server.Listen)
	if err != nil {
		return err
	}
	srv := &http.Server{
		Handler:           mux,
		ReadHeaderTimeout: 10 * time.Second,
		ReadTimeout:       cfg.Server.ReadTimeout,
		WriteTimeout:      cfg.Server.WriteTimeout,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
	// The address line is for people and scripts (tests read it to find a
	// port chosen with :0).
	fmt.Fprintf(stdout, "modgate serving %s on http://%s/ (GOPROXY=http://%s)\n", cfg.Store.Dir, ln.Addr(), ln.Addr())
	if db != nil {
		fmt.Fprintf(stdout, "checksum database %s (GOSUMDB=%s)\n", db.name, db.vkey)
	}
	log.Info("serving", "addr", ln.Addr().String(), "store", cfg.Store.Dir, "config", cfg.File())

	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(ln) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	log.Info("shutting down")
	shutCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutCtx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

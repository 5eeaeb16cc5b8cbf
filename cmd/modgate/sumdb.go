package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"

	"golang.org/x/mod/sumdb/note"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/sumlog"
)

// checksumDB is modgate's checksum database, opened for one process.
type checksumDB struct {
	log      *sumlog.Log
	verifier note.Verifier
	name     string // the database name, the first element of vkey
	vkey     string // what clients put in GOSUMDB
}

// openChecksumDB opens the checksum log when one is configured; nil
// otherwise. Errors name the configuration field and never the key.
func openChecksumDB(cfg *config.Config) (*checksumDB, error) {
	c := cfg.ChecksumDB
	if !c.Enabled() {
		return nil, nil
	}
	var skey, field string
	if c.KeyFile != "" {
		field = "checksum_db.key_file"
		data, err := os.ReadFile(c.KeyFile)
		if err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("%s: %w", field, err)}
		}
		skey = string(data)
	} else {
		field = "checksum_db.key_env"
		skey = os.Getenv(c.KeyEnv)
		if skey == "" {
			return nil, &exitError{code: 2, err: fmt.Errorf("%s: $%s is empty", field, c.KeyEnv)}
		}
	}
	signer, verifier, vkey, err := sumlog.ParseKey(skey)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("%s: %w", field, err)}
	}
	l, err := sumlog.Open(c.Dir, signer, verifier)
	if errors.Is(err, sumlog.ErrLocked) {
		return nil, &exitError{code: 2, err: fmt.Errorf("checksum database %s is open in another modgate process (modgate serve?): one process writes it at a time (%w)", c.Dir, sumlog.ErrLocked)}
	}
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return &checksumDB{log: l, verifier: verifier, name: signer.Name(), vkey: vkey}, nil
}

// mount serves the database at /sumdb/<name>/, where the go command looks
// for it on a proxy (GOSUMDB=<vkey>, GOPROXY=<modgate>).
func (db *checksumDB) mount(mux *http.ServeMux) {
	prefix := "/sumdb/" + db.name
	mux.Handle(prefix+"/", http.StripPrefix(prefix, db.log.Handler()))
}

// logRecovery says what the log repaired after a crash, if anything.
func logRecovery(log *slog.Logger, db *checksumDB) {
	r := db.log.Recovery()
	if r.TornBytes+r.HashesRedone+r.HashesDropped+r.UnsignedTail > 0 || r.RemovedTmpFile {
		log.Warn("checksum database recovered after a crash", "recovery", fmt.Sprintf("%+v", r))
	}
}

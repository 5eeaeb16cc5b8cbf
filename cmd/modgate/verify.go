package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"

	"github.com/modgate/modgate/store"
	"github.com/modgate/modgate/verifiers/integrity"
)

func cmdVerify(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("verify", stderr)
	cfgFile := fs.String("config", "", "configuration `file` (default: built-in defaults)")
	asJSON := fs.Bool("json", false, "print the report as JSON")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.Store.Dir)
	if err != nil {
		return err
	}
	db, err := openChecksumDB(cfg)
	if err != nil {
		return err
	}
	opts := integrity.Options{ZipBytes: true}
	signer, err := loadSigner(cfg)
	if err != nil {
		return err
	}
	if signer != nil {
		opts.PublicKey, opts.PreviousKeys = signer.PublicKeyPEM(), signer.PreviousKeys()
	}
	headFile := filepath.Join(cfg.DataDir, "verify", "last-head")
	if db != nil {
		defer db.log.Close()
		opts.Log, opts.Verifier = db.log, db.verifier
		if prev, err := os.ReadFile(headFile); err == nil {
			opts.PreviousHead = prev
		} else if !os.IsNotExist(err) {
			return err
		}
	}
	r, err := integrity.Check(ctx, st, opts)
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		if err := enc.Encode(r); err != nil {
			return err
		}
	} else {
		fmt.Fprintf(stdout, "verified %d versions (%d zip bytes) in %.0f ms", r.Versions, r.Bytes, r.DurationMS)
		if db != nil {
			fmt.Fprintf(stdout, " against checksum log %s, tree %d %s", db.name, r.TreeSize, r.TreeHash)
		}
		if opts.PublicKey != nil {
			fmt.Fprintf(stdout, ", signatures checked (%d unsigned)", r.Unsigned)
		}
		fmt.Fprintf(stdout, ": %d findings\n", len(r.Findings))
	}
	for _, f := range r.Findings {
		fmt.Fprintln(stderr, f)
	}
	if db != nil && !hasConsistencyFinding(r) {
		// The next run proves the log still extends what this run saw.
		if err := os.MkdirAll(filepath.Dir(headFile), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(headFile, r.Head, 0o644); err != nil {
			return err
		}
	}
	if len(r.Findings) > 0 {
		return &exitError{code: 1}
	}
	return nil
}

func hasConsistencyFinding(r *integrity.Report) bool {
	for _, f := range r.Findings {
		if f.Check == "consistency" {
			return true
		}
	}
	return false
}

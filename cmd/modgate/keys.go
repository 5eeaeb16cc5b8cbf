package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/modgate/modgate/sumlog"
)

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return usageErr("keys: usage: modgate keys generate --name NAME --out FILE")
	}
	fs := newFlagSet("keys generate", stderr)
	name := fs.String("name", "", "checksum database `name`, host[/path], e.g. sum.corp.example")
	out := fs.String("out", "", "`file` to write the private signing key to (created with mode 0600; never overwritten)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *name == "" || *out == "" {
		return usageErr("keys generate: --name and --out are required")
	}
	skey, vkey, err := sumlog.GenerateKey(*name)
	if err != nil {
		return usageErr("keys generate: %v", err)
	}
	if err := writeSecret(*out, []byte(skey+"\n")); err != nil {
		return err
	}
	if err := os.WriteFile(*out+".pub", []byte(vkey+"\n"), 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "checksum database signing key written to %s\n", *out)
	fmt.Fprintf(stdout, "configure it as checksum_db.key_file; clients set:\n\n    GOSUMDB=%s\n\n", vkey)
	fmt.Fprintf(stdout, "verifier key (also in %s.pub): %s\n", *out, vkey)
	return nil
}

// writeSecret creates name with mode 0600 and refuses to replace a file: a
// lost key would make every client's cached tree head unverifiable.
func writeSecret(name string, data []byte) error {
	f, err := os.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, os.ErrExist) {
		return fmt.Errorf("%s exists; refusing to overwrite a key", name)
	}
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

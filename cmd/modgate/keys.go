package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/sbom"
	"github.com/modgate/modgate/sumlog"
)

func cmdKeys(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "generate" {
		return usageErr("keys: usage: modgate keys generate [--name NAME --out FILE] [--cosign-out FILE --password-env VAR|--password-file FILE]")
	}
	fs := newFlagSet("keys generate", stderr)
	name := fs.String("name", "", "checksum database `name`, host[/path], e.g. sum.corp.example")
	out := fs.String("out", "", "`file` to write the checksum database signing key to (mode 0600; never overwritten)")
	cosignOut := fs.String("cosign-out", "", "`file` to write an encrypted cosign private key to (and FILE.pub the public key)")
	passEnv := fs.String("password-env", "", "environment `variable` holding the cosign key's password")
	passFile := fs.String("password-file", "", "`file` holding the cosign key's password")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cosignOut != "" {
		if err := generateCosign(*cosignOut, *passEnv, *passFile, stdout); err != nil {
			return err
		}
	}
	if *name == "" && *out == "" && *cosignOut != "" {
		return nil
	}
	if *name == "" || *out == "" {
		return usageErr("keys generate: --name and --out are required for the checksum database key")
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

// generateCosign writes an encrypted cosign key pair.
func generateCosign(out, passEnv, passFile string, stdout io.Writer) error {
	sc := config.SigningConfig{PasswordEnv: passEnv, PasswordFile: passFile}
	if passEnv == "" && passFile == "" {
		return usageErr("keys generate: --cosign-out needs --password-env or --password-file")
	}
	password, err := sc.Password()
	if err != nil {
		return err
	}
	if len(password) == 0 {
		return usageErr("keys generate: the cosign key password is empty")
	}
	priv, pub, err := sbom.GenerateKeys(password)
	if err != nil {
		return err
	}
	if err := writeSecret(out, priv); err != nil {
		return err
	}
	if err := os.WriteFile(out+".pub", pub, 0o644); err != nil {
		return err
	}
	fmt.Fprintf(stdout, "cosign key pair written to %s and %s.pub; configure signing.key_file\n", out, out)
	return nil
}

// loadSigner decrypts the cosign key once, at start; nil when none is
// configured.
func loadSigner(cfg *config.Config) (*sbom.Signer, error) {
	if cfg.Signing.KeyFile == "" {
		return nil, nil
	}
	priv, err := os.ReadFile(cfg.Signing.KeyFile)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("signing.key_file: %w", err)}
	}
	password, err := cfg.Signing.Password()
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("signing: password: %w", err)}
	}
	s, err := sbom.LoadSigner(priv, password)
	if err != nil {
		return nil, &exitError{code: 2, err: fmt.Errorf("signing.key_file: %s: cannot decrypt: wrong password or not a cosign key", cfg.Signing.KeyFile)}
	}
	for i, f := range cfg.Signing.PreviousPublicKeys {
		pub, err := os.ReadFile(f)
		if err == nil {
			err = s.AddPrevious(pub)
		}
		if err != nil {
			return nil, &exitError{code: 2, err: fmt.Errorf("signing.previous_public_keys[%d]: %s: %w", i, f, err)}
		}
	}
	return s, nil
}

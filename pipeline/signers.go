package pipeline

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/modgate/modgate/config"
	"github.com/modgate/modgate/verifiers/tagsig"
)

// signers are the signer groups as their key files read when they were
// loaded. A Pipeline holds one set at a time and replaces it whole
// (ReloadSigners): an admission or a re-verification run uses the set it
// started with.
type signers struct {
	groups []signerGroup
	// digest is the SHA-256 of the key files the groups were built from
	// (signerFiles): when it changes, they are built again.
	digest string
}

type signerGroup struct {
	name     string
	patterns []string
	globs    config.Globs // patterns, joined
	ring     *tagsig.Keyring
}

// signerFiles reads the key files of the configured signer groups, and
// returns their contents by name and a digest of them all.
func signerFiles(cfg *config.Config) (map[string][]byte, string, error) {
	files := map[string][]byte{}
	h := sha256.New()
	for i, s := range cfg.Signers {
		names := append([]string(nil), s.OpenPGPKeys...)
		for _, f := range []string{s.SSHAllowedSigners, s.SSHRevokedKeys} {
			if f != "" {
				names = append(names, f)
			}
		}
		for _, f := range names {
			if _, ok := files[f]; ok {
				continue
			}
			data, err := os.ReadFile(f)
			if err != nil {
				return nil, "", fmt.Errorf("signers[%d] (%s): %w", i, s.Name, err)
			}
			files[f] = data
			fmt.Fprintf(h, "%q %d\n", f, len(data))
			h.Write(data)
		}
	}
	return files, hex.EncodeToString(h.Sum(nil)), nil
}

// loadSigners builds every signer group from files (signerFiles).
func loadSigners(cfg *config.Config, files map[string][]byte, digest string) (*signers, error) {
	s := &signers{digest: digest}
	for i, sc := range cfg.Signers {
		ring, err := loadKeyring(sc, files)
		if err != nil {
			return nil, fmt.Errorf("signers[%d] (%s): %w", i, sc.Name, err)
		}
		s.groups = append(s.groups, signerGroup{name: sc.Name, patterns: sc.Modules, globs: config.JoinGlobs(sc.Modules), ring: ring})
	}
	return s, nil
}

func loadKeyring(s config.Signer, files map[string][]byte) (*tagsig.Keyring, error) {
	ring := tagsig.NewKeyring(s.Name)
	for _, f := range s.OpenPGPKeys {
		if err := ring.AddOpenPGP(files[f]); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	if f := s.SSHAllowedSigners; f != "" {
		if err := ring.AddAllowedSigners(files[f]); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	if f := s.SSHRevokedKeys; f != "" {
		if err := ring.AddSSHRevoked(files[f]); err != nil {
			return nil, fmt.Errorf("%s: %w", f, err)
		}
	}
	return ring, nil
}

// ErrSignerKeys is the error of signer key files that cannot be read or do
// not load (ReloadSigners): a configuration error, not a verdict.
var ErrSignerKeys = errors.New("the signers' key files do not load")

// ReloadSigners reads the signer groups' key files again and, if their
// content changed since the groups were built, builds them again: a key
// revoked, removed or added takes effect without a restart, for each
// admission (its tag-signature stage calls this) and for each
// re-verification run from its start (NewReverifier). It reports whether
// it replaced the groups. When the files cannot be read or do not load,
// it returns the error (the same one until the files change) and the
// callers stop on it: nothing is judged by keys the files no longer say.
func (p *Pipeline) ReloadSigners() (bool, error) {
	p.reloadMu.Lock()
	defer p.reloadMu.Unlock()
	files, digest, err := signerFiles(p.cfg)
	switch {
	case err != nil:
		return false, fmt.Errorf("%w: %w", ErrSignerKeys, err)
	case digest == p.signers.Load().digest:
		return false, nil
	case digest == p.signersErrDigest:
		return false, p.signersErr
	}
	s, err := loadSigners(p.cfg, files, digest)
	if err != nil {
		err = fmt.Errorf("%w: %w", ErrSignerKeys, err)
		p.signersErr, p.signersErrDigest = err, digest
		return false, err
	}
	p.signersErr, p.signersErrDigest = nil, ""
	p.signers.Store(s)
	return true, nil
}

// A KeyExpiry is an OpenPGP signing key of a signer group that expires.
type KeyExpiry struct {
	Group       string
	Fingerprint string
	Name        string // the key's primary identity
	Expires     time.Time
}

// expiring lists the keys of every group that expire before deadline
// (tagsig.Keyring.Expiring), soonest first within a group.
func (ss *signers) expiring(now, deadline time.Time) []KeyExpiry {
	var out []KeyExpiry
	for _, g := range ss.groups {
		for _, x := range g.ring.Expiring(now, deadline) {
			out = append(out, KeyExpiry{Group: g.name, Fingerprint: x.Fingerprint, Name: x.Name, Expires: x.Expires})
		}
	}
	return out
}

// KeyExpiries lists every OpenPGP signing key of the signer groups, as
// their files say now, that is not revoked and has an expiry: what an
// operator alerts on before the versions a key signed start failing.
func (p *Pipeline) KeyExpiries() []KeyExpiry {
	p.ReloadSigners() // on an error, the groups in use
	now := p.Now()
	return p.signers.Load().expiring(now, time.Date(9999, 1, 1, 0, 0, 0, 0, time.UTC))
}

// Package config reads and validates modgate's YAML configuration file.
//
// One file configures every component. Every field has a documented default
// (see WithDefaults); Validate reports the first problem it finds, naming the
// field the way it is spelled in YAML ("signers[1].modules: ...").
// Relative paths in the file are resolved against the file's directory, so a
// configuration and its key files can be moved together.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"

	"github.com/robfig/cron/v3"
	"golang.org/x/mod/module"
	"gopkg.in/yaml.v3"

	"github.com/modgate/modgate/internal/modmatch"
)

// MaxFileSize bounds the configuration file; it is operator input but is read
// before anything is validated.
const MaxFileSize = 1 << 20

// Config is the whole modgate configuration.
type Config struct {
	// DataDir holds git mirrors, temporary files and (by default) the store.
	// Default: "data" next to the configuration file.
	DataDir string `yaml:"data_dir"`

	// Store is where admitted versions are published.
	Store StoreConfig `yaml:"store"`

	// Server configures `modgate serve`.
	Server ServerConfig `yaml:"server"`

	// Signing configures the cosign key that signs SBOMs and verification
	// summaries.
	Signing SigningConfig `yaml:"signing"`

	// Policies configures the CEL policy files that gate admission.
	Policies PoliciesConfig `yaml:"policies"`

	// NATS configures the event stream, the workers' queue and the verdict
	// and audit buckets.
	NATS NATSConfig `yaml:"nats"`

	// Webhooks configures the tag-push webhook endpoints of `modgate serve`.
	Webhooks WebhooksConfig `yaml:"webhooks"`

	// Reverify configures the re-verification of admitted versions.
	Reverify ReverifyConfig `yaml:"reverify"`

	// Upstream configures public modules: where they are downloaded from
	// (`modgate admit --module`), and what the proxy does when asked for a
	// public module version that is not admitted.
	Upstream UpstreamConfig `yaml:"upstream"`

	// Git configures how repositories are fetched.
	Git GitConfig `yaml:"git"`

	// ChecksumDB configures modgate's own checksum database, which clients
	// name in GOSUMDB to verify the private modules modgate publishes.
	ChecksumDB ChecksumDBConfig `yaml:"checksum_db"`

	// PublicSumDB configures how dependencies on public modules are
	// verified: against the checksum database the go command would use.
	PublicSumDB PublicSumDBConfig `yaml:"public_sumdb"`

	// Repositories lists the repositories modgate may fetch, and which module
	// paths each may publish. A repository not listed is never fetched.
	Repositories []Repository `yaml:"repositories"`

	// Signers lists the keys that may sign release tags, and for which module
	// paths. A tag signed by no listed key is rejected.
	Signers []Signer `yaml:"signers"`

	// file is the path the configuration was read from ("" when built in code).
	file string
}

// StoreConfig configures the proxy store.
type StoreConfig struct {
	// Dir is the store directory, in GOPROXY layout (GOPROXY=file:///<dir> works).
	// Default: "<data_dir>/store".
	Dir string `yaml:"dir"`
}

// ServerConfig configures the HTTP server of `modgate serve`.
type ServerConfig struct {
	// Listen is the TCP address of the HTTP listener. Default: "127.0.0.1:8080".
	Listen string `yaml:"listen"`
	// ReadTimeout bounds reading one request, headers and body. Default: 30s.
	ReadTimeout time.Duration `yaml:"read_timeout"`
	// WriteTimeout bounds writing one response (a large zip on a slow link
	// needs it generous). Default: 5m.
	WriteTimeout time.Duration `yaml:"write_timeout"`
	// TLSCert and TLSKey, when set, serve HTTPS instead of HTTP.
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// ClientCA, when set, requires and verifies client certificates signed
	// by this CA bundle (mutual TLS). Needs tls_cert and tls_key.
	ClientCA string `yaml:"client_ca"`
}

// SigningConfig names modgate's cosign signing key. Without one, SBOMs are
// published unsigned and no verification summary is made.
type SigningConfig struct {
	// KeyFile is a cosign encrypted private key ("ENCRYPTED SIGSTORE PRIVATE
	// KEY"), as `modgate keys generate --cosign-out` or `cosign
	// generate-key-pair` write it. Mode 0600.
	KeyFile string `yaml:"key_file"`
	// PasswordFile or PasswordEnv holds the key's password. The key is
	// decrypted once, at start.
	PasswordFile string `yaml:"password_file"`
	PasswordEnv  string `yaml:"password_env"`
	// PreviousPublicKeys are the public keys (cosign.pub) of keys modgate
	// signed with before KeyFile: after a rotation, the SBOMs and summaries
	// they signed still verify in re-verification and `modgate verify`.
	// Leave out a key that was rotated because it leaked.
	PreviousPublicKeys []string `yaml:"previous_public_keys"`
}

// Password reads the key's password, trimmed of a final newline. The error
// never contains it.
func (s SigningConfig) Password() ([]byte, error) {
	switch {
	case s.PasswordFile != "":
		data, err := os.ReadFile(s.PasswordFile)
		if err != nil {
			return nil, err
		}
		return bytes.TrimRight(data, "\r\n"), nil
	case s.PasswordEnv != "":
		return []byte(os.Getenv(s.PasswordEnv)), nil
	}
	return nil, nil
}

// PoliciesConfig configures policy evaluation.
type PoliciesConfig struct {
	// Dir holds the policy files (*.yaml). When set, every admission must be
	// allowed by the policies (deny by default: a module path no policy
	// covers is rejected); `modgate serve` reloads them on change and on
	// SIGHUP. When empty, admission rests on repositories and signers only.
	Dir string `yaml:"dir"`
}

// NATSConfig configures NATS JetStream.
type NATSConfig struct {
	// URL of an external NATS cluster. Empty: modgate embeds a nats-server
	// with its data under <data_dir>/nats.
	URL string `yaml:"url"`
	// Creds is a NATS credentials file for the external cluster.
	Creds string `yaml:"creds"`
	// TLSCA, TLSCert, TLSKey configure TLS to the external cluster.
	TLSCA   string `yaml:"tls_ca"`
	TLSCert string `yaml:"tls_cert"`
	TLSKey  string `yaml:"tls_key"`
	// Listen is the embedded server's client address. Default:
	// "127.0.0.1:4222" (loopback only), so that `modgate admit --enqueue` and
	// `modgate serve --workers-only` processes on this machine can connect.
	Listen string `yaml:"listen"`
	// Workers is the number of concurrent admissions per process. Default:
	// twice the number of CPUs: an admission waits for about half its time
	// (git fetches, checksum database round trips, disk syncs), and with
	// one worker per CPU those waits leave the CPUs idle.
	Workers int `yaml:"workers"`
	// MaxDeliver is how often a job is tried before it goes to the
	// dead-letter subject. Default: 5.
	MaxDeliver int `yaml:"max_deliver"`
	// DedupWindow: a duplicate request (a redelivered webhook) within it is
	// one admission. Default: 10m.
	DedupWindow time.Duration `yaml:"dedup_window"`
}

// UpstreamConfig configures public modules.
type UpstreamConfig struct {
	// GOPROXY is the upstream proxy list public modules are downloaded
	// from, as the go command's GOPROXY (credentials allowed; never logged).
	// Default: public_sumdb.goproxy, else `go env GOPROXY`.
	GOPROXY string `yaml:"goproxy"`
	// Missing decides, per module path pattern (GOPRIVATE syntax, first
	// match wins), what the proxy answers for a public module version that
	// is not admitted: "deny" (403 with the reason), "enqueue" (404 now,
	// its admission queued, so a retry after admission succeeds) or
	// "passthrough" (admitted while the request waits, then served).
	// Private module paths are never fetched from upstream: they are
	// admitted from their repositories only.
	Missing []MissingRule `yaml:"missing"`
	// Default is the action for public paths no rule matches. Default:
	// "deny".
	Default string `yaml:"default"`
	// Wait bounds how long a passthrough request waits for its admission
	// before it is answered 504 (the admission goes on). Default: 2m.
	Wait time.Duration `yaml:"wait"`
	// Dependencies is what `modgate serve` does with the public module
	// versions an admitted version's go.mod and go.sum name that are not
	// admitted: "enqueue" their admissions (default), or only "report"
	// them as pending in the verdict.
	Dependencies string `yaml:"dependencies"`
}

// Values of UpstreamConfig.Dependencies.
const (
	DependenciesEnqueue = "enqueue"
	DependenciesReport  = "report"
)

// MissingRule is one pattern of UpstreamConfig.Missing.
type MissingRule struct {
	Modules []string `yaml:"modules"`
	Action  string   `yaml:"action"`
}

// Actions for public module versions that are not admitted.
const (
	MissingDeny        = "deny"
	MissingEnqueue     = "enqueue"
	MissingPassthrough = "passthrough"
)

// MissingAction returns the configured action for a public module path.
func (u UpstreamConfig) MissingAction(path string) string {
	for _, r := range u.Missing {
		if MatchModule(r.Modules, path) {
			return r.Action
		}
	}
	return u.Default
}

// ReverifyConfig configures re-verification (`modgate reverify`, and the
// schedule `modgate serve` keeps).
type ReverifyConfig struct {
	// Schedule is when `modgate serve` starts a re-verification of every
	// admitted version: a cron expression (five fields, or @daily,
	// @every 6h…), in UTC. Default "0 3 * * *" (nightly at 03:00); "off"
	// disables it.
	Schedule string `yaml:"schedule"`
	// Workers is the number of re-verification jobs per process, on their
	// own consumer so that they never delay admissions. Default: half the
	// admission workers, at least 1.
	Workers int `yaml:"workers"`
	// Concurrency is the number of versions of one job checked at once.
	// Default: the number of CPUs.
	Concurrency int `yaml:"concurrency"`
	// ShardSize is the number of versions per job. Default: 200.
	ShardSize int `yaml:"shard_size"`
}

// WebhooksConfig configures POST /hooks/{github,gitlab,gitea}. A provider
// without a secret is disabled: modgate never acts on an unauthenticated
// webhook.
type WebhooksConfig struct {
	GitHub WebhookSecret `yaml:"github"`
	GitLab WebhookSecret `yaml:"gitlab"`
	Gitea  WebhookSecret `yaml:"gitea"`
	// MaxBody bounds a delivery's body in bytes. Default: 1 MiB.
	MaxBody int64 `yaml:"max_body"`
}

// WebhookSecret names where a provider's webhook secret is read from; the
// secret itself is never written in the configuration.
type WebhookSecret struct {
	// SecretFile holds the secret (mode 0600), or several, one per line:
	// a delivery signed with any of them is accepted, so a secret is
	// rotated without a restart or a lost delivery (add the new line,
	// change the git host, remove the old line). Read at each delivery.
	SecretFile string `yaml:"secret_file"`
	SecretEnv  string `yaml:"secret_env"`
}

// Enabled reports whether a secret source is configured.
func (w WebhookSecret) Enabled() bool { return w.SecretFile != "" || w.SecretEnv != "" }

// Secrets reads the secrets, one per non-blank line, each trimmed of
// surrounding white space; a file that group or others may read is
// refused, as at start-up. Errors never contain a secret.
func (w WebhookSecret) Secrets() ([][]byte, error) {
	var b []byte
	switch {
	case w.SecretFile != "":
		if err := checkSecretFile(w.SecretFile); err != nil {
			return nil, err
		}
		data, err := os.ReadFile(w.SecretFile)
		if err != nil {
			return nil, err
		}
		b = data
	case w.SecretEnv != "":
		b = []byte(os.Getenv(w.SecretEnv))
	}
	var out [][]byte
	for line := range bytes.Lines(b) {
		if line = bytes.TrimSpace(line); len(line) > 0 {
			out = append(out, line)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("webhook secret is empty")
	}
	return out, nil
}

// ChecksumDBConfig configures modgate's checksum database. It is enabled
// when a signing key is configured (key_file or key_env); the database's
// name is the key's name.
type ChecksumDBConfig struct {
	// Dir holds the log (append-only, fsynced). Default: "<data_dir>/sumdb".
	Dir string `yaml:"dir"`
	// KeyFile is a file holding the note signing key ("PRIVATE+KEY+…"), as
	// written by `modgate keys generate`. It must not be readable by group
	// or others.
	KeyFile string `yaml:"key_file"`
	// KeyEnv names an environment variable holding the signing key, instead
	// of KeyFile.
	KeyEnv string `yaml:"key_env"`
}

// Enabled reports whether a signing key is configured.
func (c ChecksumDBConfig) Enabled() bool { return c.KeyFile != "" || c.KeyEnv != "" }

// PublicSumDBConfig configures verification against a public checksum
// database, reached as the go command reaches it.
type PublicSumDBConfig struct {
	// GOPROXY is the proxy list whose /sumdb/<name>/ endpoint is tried first,
	// as the go command does. Default: `go env GOPROXY`.
	GOPROXY string `yaml:"goproxy"`
	// GOSUMDB names the database and its key, as the go command's GOSUMDB.
	// Default: `go env GOSUMDB`. "off" is refused: public dependencies
	// would go unverified.
	GOSUMDB string `yaml:"gosumdb"`
	// CacheDir caches verified tiles and the last verified tree head, so a
	// database that forks or rolls back is detected across restarts.
	// Default: "<data_dir>/sumdb-cache".
	CacheDir string `yaml:"cache_dir"`
	// Timeout bounds each request to the database. Default: 30s.
	Timeout time.Duration `yaml:"timeout"`
}

// GitConfig configures the git CLI.
type GitConfig struct {
	// Binary is the git executable. Default: "git" from PATH.
	Binary string `yaml:"binary"`
	// Timeout bounds one git command (a fetch of a large repository needs it
	// generous). Default: 10m.
	Timeout time.Duration `yaml:"timeout"`
}

// Repository is one allowed source repository.
type Repository struct {
	// URL is the repository's URL (https://, ssh://, user@host:path) or an
	// absolute local path. It may have whole path elements "*", each
	// matching one path element, e.g. "https://git.corp.example/platform/*".
	URL string `yaml:"url"`
	// Modules are the module path patterns (GOPRIVATE syntax, matched with
	// golang.org/x/mod/module.MatchPrefixPatterns) this repository may
	// publish. Required: a repository may publish nothing by default. When
	// URL has "*" elements, each pattern has as many, and they are bound in
	// order to what the URL's matched (ModulesFor): every repository the
	// entry covers publishes only its own modules.
	Modules []string `yaml:"modules"`
	// Root is the module path of the repository's root directory, without
	// a major version suffix (a go.mod there may declare Root/v2). When set,
	// a tag <dir>/vX.Y.Z may publish only Root/<dir>[/vN], the module the
	// go command fetches at that tag; without it, a root tag could publish
	// any path its patterns allow (say a nested module's, which the go
	// command takes from another directory). Only for an entry without
	// "*": a wildcard entry's bound patterns are its repositories' roots.
	Root string `yaml:"root"`
}

// ModulesFor returns the module path patterns the repository repo (a
// normalized URL that r covers: RepositoryFor) may publish: r.Modules,
// with each "*" element replaced, in order, by the element of repo that
// the URL's "*" matched, less a final ".git". So the entry
// "https://git.corp.example/platform/*" with "corp.example/platform/*"
// lets .../platform/api.git publish corp.example/platform/api (and the
// modules below it), not corp.example/platform/web. An element that could
// not be part of a module path is an error: it could widen the pattern.
func (r *Repository) ModulesFor(repo string) ([]string, error) {
	if !r.Binds() {
		return r.Modules, nil
	}
	urlElems := strings.Split(r.URL, "/")
	repoElems := strings.Split(repo, "/")
	if len(repoElems) != len(urlElems) {
		return nil, fmt.Errorf("repository %s is not covered by %s", repo, r.URL)
	}
	var bound []string
	for i, e := range urlElems {
		if e != "*" {
			continue
		}
		c := repoElems[i]
		if i == len(urlElems)-1 {
			c = strings.TrimSuffix(c, ".git")
		}
		if c == "" || strings.Trim(c, ".") == "" || strings.IndexFunc(c, func(r rune) bool { return !isModuleElemChar(r) }) >= 0 {
			return nil, fmt.Errorf("repository %s: path element %q cannot name a module path element", repo, repoElems[i])
		}
		bound = append(bound, c)
	}
	out := make([]string, len(r.Modules))
	for i, m := range r.Modules {
		elems := strings.Split(m, "/")
		k := 0
		for j, e := range elems {
			if e == "*" && k < len(bound) {
				elems[j] = bound[k]
				k++
			}
		}
		out[i] = strings.Join(elems, "/")
	}
	return out, nil
}

// Binds reports whether r's URL has "*" elements, so that ModulesFor binds
// its module patterns to each repository's own path: the patterns it
// returns are then that repository's root module paths.
func (r *Repository) Binds() bool { return slices.Contains(strings.Split(r.URL, "/"), "*") }

// Roots returns the root module paths of the repository r covers, given
// the patterns ModulesFor returned for it: those patterns when r binds
// them, else r.Root; nil when neither says (only the patterns apply then).
func (r *Repository) Roots(patterns []string) []string {
	switch {
	case r.Binds():
		return patterns
	case r.Root != "":
		return []string{r.Root}
	}
	return nil
}

// isModuleElemChar reports whether r may appear in a module path element
// (module.CheckPath: ASCII letters, digits, '-', '.', '_', '~').
func isModuleElemChar(r rune) bool {
	return 'a' <= r && r <= 'z' || 'A' <= r && r <= 'Z' || '0' <= r && r <= '9' || r == '-' || r == '.' || r == '_' || r == '~'
}

// Signer is one group of trusted signing keys.
type Signer struct {
	// Name identifies the group in verdicts and logs. Required, unique.
	Name string `yaml:"name"`
	// Modules are the module path patterns (GOPRIVATE syntax) whose tags these
	// keys may sign. Required.
	Modules []string `yaml:"modules"`
	// OpenPGPKeys are files of armored OpenPGP public keys. Revocation
	// signatures in them are honoured.
	OpenPGPKeys []string `yaml:"openpgp_keys"`
	// SSHAllowedSigners is a git/ssh-keygen allowed_signers file.
	SSHAllowedSigners string `yaml:"ssh_allowed_signers"`
	// SSHRevokedKeys is a file of revoked SSH public keys, one per line.
	SSHRevokedKeys string `yaml:"ssh_revoked_keys"`
}

// Load reads, defaults and validates the configuration file at name.
func Load(name string) (*Config, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, MaxFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", name, err)
	}
	if len(data) > MaxFileSize {
		return nil, fmt.Errorf("config: %s: larger than %d bytes", name, MaxFileSize)
	}
	c, err := Parse(data)
	if err != nil {
		return nil, fmt.Errorf("config: %s: %w", name, err)
	}
	abs, err := filepath.Abs(name)
	if err != nil {
		return nil, fmt.Errorf("config: %w", err)
	}
	c.file = abs
	c.WithDefaults()
	if err := c.Validate(); err != nil {
		return nil, fmt.Errorf("config: %s: %w", name, err)
	}
	return c, nil
}

// Parse decodes YAML strictly: unknown fields, duplicate keys and trailing
// documents are errors, with the line they are on. It neither defaults nor
// validates.
func Parse(data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return &c, nil // an empty file is all defaults
		}
		return nil, err
	}
	var extra any
	if err := dec.Decode(&extra); !errors.Is(err, io.EOF) {
		return nil, errors.New("more than one YAML document")
	}
	return &c, nil
}

// File is the absolute path the configuration was loaded from, or "".
func (c *Config) File() string { return c.file }

// WithDefaults fills every unset field with its default and resolves relative
// paths against the configuration file's directory.
func (c *Config) WithDefaults() *Config {
	base := "."
	if c.file != "" {
		base = filepath.Dir(c.file)
	}
	abs := func(p string) string {
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(base, p)
	}
	if c.DataDir == "" {
		c.DataDir = "data"
	}
	c.DataDir = abs(c.DataDir)
	if c.Store.Dir == "" {
		c.Store.Dir = filepath.Join(c.DataDir, "store")
	}
	c.Store.Dir = abs(c.Store.Dir)
	if c.ChecksumDB.Dir == "" {
		c.ChecksumDB.Dir = filepath.Join(c.DataDir, "sumdb")
	}
	c.ChecksumDB.Dir = abs(c.ChecksumDB.Dir)
	c.ChecksumDB.KeyFile = abs(c.ChecksumDB.KeyFile)
	if c.PublicSumDB.CacheDir == "" {
		c.PublicSumDB.CacheDir = filepath.Join(c.DataDir, "sumdb-cache")
	}
	c.PublicSumDB.CacheDir = abs(c.PublicSumDB.CacheDir)
	if c.PublicSumDB.Timeout == 0 {
		c.PublicSumDB.Timeout = 30 * time.Second
	}
	if c.Server.Listen == "" {
		c.Server.Listen = "127.0.0.1:8080"
	}
	if c.Server.ReadTimeout == 0 {
		c.Server.ReadTimeout = 30 * time.Second
	}
	if c.Server.WriteTimeout == 0 {
		c.Server.WriteTimeout = 5 * time.Minute
	}
	c.Policies.Dir = abs(c.Policies.Dir)
	c.Signing.KeyFile, c.Signing.PasswordFile = abs(c.Signing.KeyFile), abs(c.Signing.PasswordFile)
	for i, f := range c.Signing.PreviousPublicKeys {
		c.Signing.PreviousPublicKeys[i] = abs(f)
	}
	c.Server.TLSCert, c.Server.TLSKey, c.Server.ClientCA = abs(c.Server.TLSCert), abs(c.Server.TLSKey), abs(c.Server.ClientCA)
	if c.NATS.URL == "" && c.NATS.Listen == "" {
		c.NATS.Listen = "127.0.0.1:4222"
	}
	if c.NATS.Workers == 0 {
		c.NATS.Workers = DefaultWorkers()
	}
	if c.NATS.MaxDeliver == 0 {
		c.NATS.MaxDeliver = 5
	}
	if c.Upstream.Default == "" {
		c.Upstream.Default = MissingDeny
	}
	if c.Upstream.Wait == 0 {
		c.Upstream.Wait = 2 * time.Minute
	}
	if c.Upstream.Dependencies == "" {
		c.Upstream.Dependencies = DependenciesEnqueue
	}
	if c.Reverify.Schedule == "" {
		c.Reverify.Schedule = "0 3 * * *"
	}
	if c.Reverify.Workers == 0 {
		c.Reverify.Workers = max(1, runtime.NumCPU()/2)
	}
	if c.Reverify.Concurrency == 0 {
		c.Reverify.Concurrency = max(1, runtime.NumCPU())
	}
	if c.Reverify.ShardSize == 0 {
		c.Reverify.ShardSize = 200
	}
	if c.NATS.DedupWindow == 0 {
		c.NATS.DedupWindow = 10 * time.Minute
	}
	c.NATS.Creds, c.NATS.TLSCA, c.NATS.TLSCert, c.NATS.TLSKey = abs(c.NATS.Creds), abs(c.NATS.TLSCA), abs(c.NATS.TLSCert), abs(c.NATS.TLSKey)
	for _, w := range []*WebhookSecret{&c.Webhooks.GitHub, &c.Webhooks.GitLab, &c.Webhooks.Gitea} {
		w.SecretFile = abs(w.SecretFile)
	}
	if c.Webhooks.MaxBody == 0 {
		c.Webhooks.MaxBody = 1 << 20
	}
	if c.Git.Binary == "" {
		c.Git.Binary = "git"
	}
	if c.Git.Timeout == 0 {
		c.Git.Timeout = 10 * time.Minute
	}
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if r.URL != "" && IsLocalPath(r.URL) {
			r.URL = filepath.Clean(abs(r.URL))
		}
	}
	for i := range c.Signers {
		s := &c.Signers[i]
		for j := range s.OpenPGPKeys {
			s.OpenPGPKeys[j] = abs(s.OpenPGPKeys[j])
		}
		s.SSHAllowedSigners = abs(s.SSHAllowedSigners)
		s.SSHRevokedKeys = abs(s.SSHRevokedKeys)
	}
	return c
}

// Validate checks the configuration after WithDefaults. The error names the
// field as written in YAML.
func (c *Config) Validate() error {
	if c.Server.ReadTimeout < 0 {
		return errors.New("server.read_timeout: must not be negative")
	}
	if c.Server.WriteTimeout < 0 {
		return errors.New("server.write_timeout: must not be negative")
	}
	if c.Git.Timeout < 0 {
		return errors.New("git.timeout: must not be negative")
	}
	if c.ChecksumDB.KeyFile != "" && c.ChecksumDB.KeyEnv != "" {
		return errors.New("checksum_db: key_file and key_env exclude each other")
	}
	if c.ChecksumDB.KeyFile != "" {
		if err := checkSecretFile(c.ChecksumDB.KeyFile); err != nil {
			return fmt.Errorf("checksum_db.key_file: %w", err)
		}
	}
	if c.Signing.KeyFile != "" {
		if err := checkSecretFile(c.Signing.KeyFile); err != nil {
			return fmt.Errorf("signing.key_file: %w", err)
		}
		if c.Signing.PasswordFile != "" && c.Signing.PasswordEnv != "" {
			return errors.New("signing: password_file and password_env exclude each other")
		}
		if c.Signing.PasswordFile != "" {
			if err := checkSecretFile(c.Signing.PasswordFile); err != nil {
				return fmt.Errorf("signing.password_file: %w", err)
			}
		}
	}
	for i, f := range c.Signing.PreviousPublicKeys {
		if c.Signing.KeyFile == "" {
			return errors.New("signing.previous_public_keys: needs signing.key_file (nothing is verified without a signing key)")
		}
		if fi, err := os.Stat(f); err != nil || !fi.Mode().IsRegular() {
			return fmt.Errorf("signing.previous_public_keys[%d]: %s is not a readable file", i, f)
		}
	}
	if c.Policies.Dir != "" {
		if fi, err := os.Stat(c.Policies.Dir); err != nil || !fi.IsDir() {
			return fmt.Errorf("policies.dir: %s is not a directory", c.Policies.Dir)
		}
	}
	if (c.Server.TLSCert == "") != (c.Server.TLSKey == "") {
		return errors.New("server: tls_cert and tls_key go together")
	}
	if c.Server.ClientCA != "" && c.Server.TLSCert == "" {
		return errors.New("server.client_ca: needs tls_cert and tls_key")
	}
	for field, f := range map[string]string{"server.tls_cert": c.Server.TLSCert, "server.client_ca": c.Server.ClientCA,
		"nats.creds": c.NATS.Creds, "nats.tls_ca": c.NATS.TLSCA, "nats.tls_cert": c.NATS.TLSCert} {
		if f != "" {
			if err := checkFile(f); err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
		}
	}
	for field, f := range map[string]string{"server.tls_key": c.Server.TLSKey, "nats.tls_key": c.NATS.TLSKey} {
		if f != "" {
			if err := checkSecretFile(f); err != nil {
				return fmt.Errorf("%s: %w", field, err)
			}
		}
	}
	if c.NATS.URL != "" {
		if u, err := url.Parse(c.NATS.URL); err != nil || (u.Scheme != "nats" && u.Scheme != "tls") {
			return fmt.Errorf("nats.url: %q: want nats:// or tls://", c.NATS.URL)
		}
	}
	if c.NATS.Workers < 0 || c.NATS.MaxDeliver < 0 || c.NATS.DedupWindow < 0 {
		return errors.New("nats: workers, max_deliver and dedup_window must not be negative")
	}
	if c.Reverify.Workers < 0 || c.Reverify.Workers > 1024 || c.Reverify.Concurrency < 0 || c.Reverify.Concurrency > 1024 || c.Reverify.ShardSize < 0 || c.Reverify.ShardSize > 100000 {
		return errors.New("reverify: workers and concurrency must be 1 to 1024, shard_size 1 to 100000")
	}
	for i, r := range append([]MissingRule{{Modules: []string{"*"}, Action: c.Upstream.Default}}, c.Upstream.Missing...) {
		switch r.Action {
		case MissingDeny, MissingEnqueue, MissingPassthrough:
		default:
			where := fmt.Sprintf("upstream.missing[%d].action", i-1)
			if i == 0 {
				where = "upstream.default"
			}
			return fmt.Errorf("%s: %q: want deny, enqueue or passthrough", where, r.Action)
		}
		if i > 0 && len(r.Modules) == 0 {
			return fmt.Errorf("upstream.missing[%d]: no modules", i-1)
		}
	}
	if c.Upstream.Wait < 0 {
		return errors.New("upstream.wait must not be negative")
	}
	if d := c.Upstream.Dependencies; d != DependenciesEnqueue && d != DependenciesReport {
		return fmt.Errorf("upstream.dependencies: %q: want enqueue or report", d)
	}
	if c.Reverify.Schedule != "off" {
		if _, err := ParseSchedule(c.Reverify.Schedule); err != nil {
			return fmt.Errorf("reverify.schedule: %q: %v", c.Reverify.Schedule, err)
		}
	}
	for name, w := range map[string]WebhookSecret{"github": c.Webhooks.GitHub, "gitlab": c.Webhooks.GitLab, "gitea": c.Webhooks.Gitea} {
		if w.SecretFile != "" && w.SecretEnv != "" {
			return fmt.Errorf("webhooks.%s: secret_file and secret_env exclude each other", name)
		}
		if w.SecretFile != "" {
			if err := checkSecretFile(w.SecretFile); err != nil {
				return fmt.Errorf("webhooks.%s.secret_file: %w", name, err)
			}
		}
	}
	if c.Webhooks.MaxBody < 0 {
		return errors.New("webhooks.max_body: must not be negative")
	}
	if c.PublicSumDB.GOSUMDB == "off" {
		return errors.New("public_sumdb.gosumdb: \"off\" would leave public dependencies unverified")
	}
	if c.PublicSumDB.Timeout < 0 {
		return errors.New("public_sumdb.timeout: must not be negative")
	}
	for i, r := range c.Repositories {
		field := fmt.Sprintf("repositories[%d]", i)
		if r.URL == "" {
			return fmt.Errorf("%s.url: required", field)
		}
		if _, err := NormalizeRepo(r.URL); err != nil {
			return fmt.Errorf("%s.url: %w", field, err)
		}
		if _, err := path.Match(r.URL, ""); err != nil {
			return fmt.Errorf("%s.url: bad pattern %q", field, r.URL)
		}
		if err := checkPatterns(r.Modules); err != nil {
			return fmt.Errorf("%s.modules: %w", field, err)
		}
		if err := checkBinding(r); err != nil {
			return fmt.Errorf("%s: %w", field, err)
		}
		if err := checkRoot(r); err != nil {
			return fmt.Errorf("%s.root: %w", field, err)
		}
	}
	names := map[string]bool{}
	for i, s := range c.Signers {
		field := fmt.Sprintf("signers[%d]", i)
		if s.Name == "" {
			return fmt.Errorf("%s.name: required", field)
		}
		if names[s.Name] {
			return fmt.Errorf("%s.name: %q is used twice", field, s.Name)
		}
		names[s.Name] = true
		if err := checkPatterns(s.Modules); err != nil {
			return fmt.Errorf("%s.modules: %w", field, err)
		}
		if len(s.OpenPGPKeys) == 0 && s.SSHAllowedSigners == "" {
			return fmt.Errorf("%s: needs openpgp_keys or ssh_allowed_signers", field)
		}
		for j, k := range s.OpenPGPKeys {
			if err := checkFile(k); err != nil {
				return fmt.Errorf("%s.openpgp_keys[%d]: %w", field, j, err)
			}
		}
		if s.SSHAllowedSigners != "" {
			if err := checkFile(s.SSHAllowedSigners); err != nil {
				return fmt.Errorf("%s.ssh_allowed_signers: %w", field, err)
			}
		}
		if s.SSHRevokedKeys != "" {
			if err := checkFile(s.SSHRevokedKeys); err != nil {
				return fmt.Errorf("%s.ssh_revoked_keys: %w", field, err)
			}
		}
	}
	return nil
}

func checkFile(name string) error {
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s: not a regular file", name)
	}
	return nil
}

// checkSecretFile refuses a key file that others could read, as ssh does.
func checkSecretFile(name string) error {
	if err := checkFile(name); err != nil {
		return err
	}
	fi, err := os.Stat(name)
	if err != nil {
		return err
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return fmt.Errorf("%s: permissions %04o are too open for a file that holds a key or secret (chmod 600)", name, fi.Mode().Perm())
	}
	return nil
}

// PrivatePatterns are the module path patterns modgate publishes: every
// pattern a configured repository may publish. Dependencies matching them
// are verified against modgate's own checksum database.
func (c *Config) PrivatePatterns() []string {
	var ps []string
	for _, r := range c.Repositories {
		ps = append(ps, r.Modules...)
	}
	return ps
}

// checkBinding requires a repository entry's wildcards to be whole "*"
// URL elements, bound one to one by "*" elements of every module pattern
// (ModulesFor). Without that, every repository the URL covers could
// publish the modules of every other.
func checkBinding(r Repository) error {
	n := 0
	for _, e := range strings.Split(r.URL, "/") {
		switch {
		case e == "*":
			n++
		case strings.ContainsAny(e, `*?[\`):
			return fmt.Errorf("url: %q: a wildcard must be a whole path element \"*\"", r.URL)
		}
	}
	if n == 0 {
		return nil
	}
	for _, m := range r.Modules {
		k := 0
		for _, e := range strings.Split(m, "/") {
			switch {
			case e == "*":
				k++
			case strings.ContainsAny(e, `*?[\`):
				return fmt.Errorf("modules: %q: with a wildcard url, a wildcard must be a whole path element \"*\"", m)
			}
		}
		if k != n {
			return fmt.Errorf("modules: %q has %d \"*\" elements, url %q has %d: each \"*\" of the url binds one of every module pattern, so that each repository publishes only its own modules", m, k, r.URL, n)
		}
	}
	return nil
}

// checkRoot requires a repository's root, when given, to be a module path
// without a major version suffix that its patterns allow, on an entry
// without wildcards.
func checkRoot(r Repository) error {
	switch {
	case r.Root == "":
		return nil
	case r.Binds():
		return fmt.Errorf("not with a wildcard url: the module patterns, bound to each repository's name, are its root paths")
	}
	if err := module.CheckPath(r.Root); err != nil {
		return fmt.Errorf("%q: %v", r.Root, err)
	}
	if prefix, major, _ := module.SplitPathVersion(r.Root); major != "" {
		return fmt.Errorf("%q ends in the major version suffix %s: give %s (a go.mod at the root may still declare %s)", r.Root, major, prefix, r.Root)
	}
	if !MatchModule(r.Modules, r.Root) {
		return fmt.Errorf("%q is not a path the entry's modules %s allow", r.Root, strings.Join(r.Modules, ","))
	}
	return nil
}

// checkPatterns requires at least one pattern, each a valid path.Match
// pattern with no empty element, as GOPRIVATE would take it.
func checkPatterns(globs []string) error {
	if len(globs) == 0 {
		return errors.New("required: at least one module path pattern")
	}
	for _, g := range globs {
		if g == "" || strings.Contains(g, ",") || strings.TrimSpace(g) != g {
			return fmt.Errorf("bad pattern %q: empty, with spaces or with a comma", g)
		}
		for _, elem := range strings.Split(g, "/") {
			if elem == "" {
				return fmt.Errorf("bad pattern %q: empty path element", g)
			}
			if _, err := path.Match(elem, ""); err != nil {
				return fmt.Errorf("bad pattern %q: %v", g, err)
			}
		}
	}
	return nil
}

// RepositoryFor returns the configured repository entry that allows repo
// (already normalized with NormalizeRepo), or nil.
func (c *Config) RepositoryFor(repo string) *Repository {
	for i := range c.Repositories {
		r := &c.Repositories[i]
		if r.URL == repo {
			return r
		}
		if ok, _ := path.Match(r.URL, repo); ok {
			return r
		}
	}
	return nil
}

// MatchModule reports whether module path p matches any of globs (GOPRIVATE
// semantics). A list matched often is better joined once: JoinGlobs.
func MatchModule(globs []string, p string) bool {
	return JoinGlobs(globs).Match(p)
}

// Globs is a list of module path patterns joined for matching: joining a
// configuration's list (a pattern per repository) costs more than matching.
type Globs string

// JoinGlobs joins patterns once.
func JoinGlobs(patterns []string) Globs { return Globs(strings.Join(patterns, ",")) }

// Match reports whether module path p matches any of the patterns, as
// MatchModule does.
func (g Globs) Match(p string) bool { return modmatch.Match(string(g), p) }

// IsLocalPath reports whether repo names a local directory rather than a
// remote URL: an absolute or dot-relative path, or anything with neither a
// scheme nor scp-like "host:path" syntax.
func IsLocalPath(repo string) bool {
	if strings.Contains(repo, "://") {
		return false
	}
	if filepath.IsAbs(repo) || strings.HasPrefix(repo, "./") || strings.HasPrefix(repo, "../") {
		return true
	}
	// scp-like syntax, as git reads it: a colon before any slash.
	if i := strings.Index(repo, ":"); i > 0 && (runtime.GOOS != "windows" || i > 1) {
		if j := strings.Index(repo, "/"); j < 0 || i < j {
			return false
		}
	}
	return true
}

// NormalizeRepo turns a repository reference into the form matched against
// the configuration and handed to git. Local paths become absolute and clean;
// URLs must use https, ssh, or scp-like syntax, with no user info other than a
// user name, no query or fragment, and nothing git would read as an option or
// a transport helper ("ext::", "fd::").
func NormalizeRepo(repo string) (string, error) {
	if repo == "" {
		return "", errors.New("empty repository")
	}
	if strings.HasPrefix(repo, "-") {
		return "", fmt.Errorf("repository %q starts with a dash", repo)
	}
	for _, r := range repo {
		if r < 0x20 || r == 0x7f || r == ' ' {
			return "", fmt.Errorf("repository %q contains spaces or control characters", repo)
		}
	}
	if strings.Contains(repo, "::") {
		return "", fmt.Errorf("repository %q uses a git transport helper", repo)
	}
	if IsLocalPath(repo) {
		abs, err := filepath.Abs(repo)
		if err != nil {
			return "", err
		}
		return filepath.Clean(abs), nil
	}
	if !strings.Contains(repo, "://") {
		// scp-like user@host:path; the host part must not look like an option.
		host := repo[:strings.Index(repo, ":")]
		if at := strings.LastIndex(host, "@"); at >= 0 {
			host = host[at+1:]
		}
		if host == "" || strings.HasPrefix(host, "-") {
			return "", fmt.Errorf("repository %q: bad host", repo)
		}
		return repo, nil
	}
	u, err := url.Parse(repo)
	if err != nil {
		return "", fmt.Errorf("repository %q: %v", repo, err)
	}
	switch u.Scheme {
	case "https", "ssh":
	default:
		return "", fmt.Errorf("repository %q: scheme %q not allowed (https or ssh)", repo, u.Scheme)
	}
	if _, hasPass := u.User.Password(); hasPass {
		return "", fmt.Errorf("repository %q: credentials in URLs are not allowed; use a git credential helper", u.Redacted())
	}
	if u.Host == "" || strings.HasPrefix(u.Host, "-") {
		return "", fmt.Errorf("repository %q: bad host", repo)
	}
	if u.RawQuery != "" || u.Fragment != "" {
		return "", fmt.Errorf("repository %q: query or fragment not allowed", repo)
	}
	u.Path = path.Clean("/" + u.Path)
	return u.String(), nil
}

// Scheme returns the git protocol name for a normalized repository: "file",
// "https" or "ssh".
func Scheme(repo string) string {
	switch {
	case IsLocalPath(repo):
		return "file"
	case strings.HasPrefix(repo, "https://"):
		return "https"
	default:
		return "ssh"
	}
}

// ParseSchedule parses a cron expression of reverify.schedule: five fields
// (minute hour day-of-month month day-of-week) or a descriptor (@daily,
// @hourly, @every 6h).
func ParseSchedule(spec string) (cron.Schedule, error) {
	return cron.ParseStandard(spec)
}

// DefaultWorkers is nats.workers when the configuration does not say.
func DefaultWorkers() int { return 2 * max(1, runtime.NumCPU()) }

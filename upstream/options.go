package upstream

import (
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	modzip "golang.org/x/mod/zip"

	"github.com/modgate/modgate/verifiers/depsum"
)

// DefaultGOPROXY is the go command's default proxy list.
const DefaultGOPROXY = "https://proxy.golang.org,direct"

// Options configures a [Fetcher].
type Options struct {
	// GOPROXY is the upstream proxy list, as `go env GOPROXY` prints it.
	// Default: [DefaultGOPROXY]. Only http and https proxies are used;
	// "direct" and "off" end the list (see the package documentation).
	// Entries may carry credentials ("https://user:token@proxy.corp"): they
	// are sent as basic authentication and never put in errors or logs.
	GOPROXY string
	// DB is the checksum database every version must be proven against:
	// normally a [depsum.SumDB] for sum.golang.org (see [depsum.Discover]).
	// Required.
	DB depsum.DB
	// HTTPClient makes the requests. Default: a client on
	// http.DefaultTransport, without an overall timeout (a zip may take
	// long); Timeout bounds stalls.
	HTTPClient *http.Client
	// Timeout is how long a request may go without progress (no response
	// headers, no body bytes) before it is abandoned as a transient
	// failure. Default: 30s.
	Timeout time.Duration
	// TempDir is where zips are downloaded: put it on the file system of
	// the store that publishes them. Default: os.TempDir().
	TempDir string
	// MaxZipSize, MaxModSize and MaxInfoSize bound the responses. Defaults:
	// zip.MaxZipFile and zip.MaxGoMod from golang.org/x/mod/zip (larger ones
	// the go command would refuse: they may not be higher), and 64 KiB.
	MaxZipSize, MaxModSize, MaxInfoSize int64
	// Retries is how many times a pass over the proxy list that ended in a
	// transient failure is retried. Default 3; negative for none.
	Retries int
	// Backoff is the wait before retry number retry (0 for the first).
	// Default: exponential from 500ms, at most 15s, with jitter.
	Backoff func(retry int) time.Duration
	// Logger receives retries and fetched versions. Default: slog.Default().
	Logger *slog.Logger
}

// Defaults.
const (
	defaultTimeout     = 30 * time.Second
	defaultMaxInfoSize = 64 << 10
	defaultRetries     = 3
	// maxListSize bounds an @v/list response: a version is a few dozen
	// bytes, and the longest lists hold a few thousand.
	maxListSize = 4 << 20
)

// WithDefaults returns o with defaults filled in.
func (o Options) WithDefaults() Options {
	if strings.TrimSpace(o.GOPROXY) == "" {
		o.GOPROXY = DefaultGOPROXY
	}
	if o.HTTPClient == nil {
		o.HTTPClient = &http.Client{}
	}
	if o.Timeout <= 0 {
		o.Timeout = defaultTimeout
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.MaxZipSize <= 0 {
		o.MaxZipSize = modzip.MaxZipFile
	}
	if o.MaxModSize <= 0 {
		o.MaxModSize = modzip.MaxGoMod
	}
	if o.MaxInfoSize <= 0 {
		o.MaxInfoSize = defaultMaxInfoSize
	}
	if o.Retries == 0 {
		o.Retries = defaultRetries
	} else if o.Retries < 0 {
		o.Retries = 0
	}
	if o.Backoff == nil {
		o.Backoff = defaultBackoff
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
}

// defaultBackoff waits 500ms·2^retry, at most 15s, less up to half of it at
// random so that callers that failed together do not retry together.
func defaultBackoff(retry int) time.Duration {
	d := 15 * time.Second
	if retry < 5 {
		d = min(d, 500*time.Millisecond<<retry)
	}
	return d - rand.N(d/2)
}

// Validate reports the first field that is missing or wrong.
func (o Options) Validate() error {
	if o.DB == nil {
		return fmt.Errorf("%w: no checksum database: every public module must be proven against one", ErrConfig)
	}
	if _, err := parseGOPROXY(o.GOPROXY); err != nil {
		return err
	}
	if o.MaxZipSize > modzip.MaxZipFile || o.MaxModSize > modzip.MaxGoMod {
		return fmt.Errorf("%w: size limits above the go command's (zip %d, go.mod %d bytes)", ErrConfig, modzip.MaxZipFile, modzip.MaxGoMod)
	}
	if fi, err := os.Stat(o.TempDir); err != nil || !fi.IsDir() {
		return fmt.Errorf("%w: temp dir %q is not a directory", ErrConfig, o.TempDir)
	}
	return nil
}

// proxy is one entry of the GOPROXY list.
type proxy struct {
	kind     proxyKind
	url      string   // base URL without trailing slash; may hold credentials
	shown    string   // url with credentials redacted, for messages
	secrets  []string // url's credentials, scrubbed from messages
	fallBack bool     // followed by '|': fall through on any error
}

type proxyKind int

const (
	kindHTTP proxyKind = iota
	kindDirect
	kindOff
)

// parseGOPROXY reads a proxy list as the go command does
// (cmd/go/internal/modfetch.proxyList), and requires at least one http or
// https proxy before "direct" or "off".
func parseGOPROXY(list string) ([]proxy, error) {
	var proxies []proxy
	usable := false
	for rest := list; rest != ""; {
		var entry string
		fallBack := false
		if i := strings.IndexAny(rest, ",|"); i >= 0 {
			entry, fallBack, rest = rest[:i], rest[i] == '|', rest[i+1:]
		} else {
			entry, rest = rest, ""
		}
		entry = strings.TrimSpace(entry)
		switch entry {
		case "":
			continue
		case "direct", "off":
			// The end of the line for the go command too: later entries
			// are ignored.
			kind := kindDirect
			if entry == "off" {
				kind = kindOff
			}
			proxies = append(proxies, proxy{kind: kind, shown: entry})
			rest = ""
			continue
		}
		// As the go command: anything that looks like a host or path but
		// not a URL means https.
		if strings.ContainsAny(entry, ".:/") && !strings.Contains(entry, ":/") && !filepath.IsAbs(entry) && !path.IsAbs(entry) {
			entry = "https://" + entry
		}
		u, err := url.Parse(entry)
		if err != nil || u.Scheme == "" {
			return nil, fmt.Errorf("%w: GOPROXY entry %q is not a URL", ErrConfig, redactString(entry))
		}
		switch {
		case u.Scheme == "file":
			return nil, fmt.Errorf("%w: GOPROXY entry %s: file:// proxies are not supported, only http and https", ErrConfig, redact(u))
		case u.Scheme != "http" && u.Scheme != "https":
			return nil, fmt.Errorf("%w: GOPROXY entry %s: unsupported scheme %q (want http or https)", ErrConfig, redact(u), u.Scheme)
		case u.Host == "" || u.RawQuery != "" || u.ForceQuery || u.Fragment != "":
			return nil, fmt.Errorf("%w: GOPROXY entry %s: want a URL with a host and no query or fragment", ErrConfig, redact(u))
		}
		base := strings.TrimRight(entry, "/")
		bu, _ := url.Parse(base)
		proxies = append(proxies, proxy{url: base, shown: redact(bu), secrets: secrets(bu), fallBack: fallBack})
		usable = true
	}
	if !usable {
		return nil, fmt.Errorf("%w: GOPROXY=%q names no http or https proxy: modgate fetches public modules from a module proxy only (\"direct\", from version control, is not supported)",
			ErrConfig, redactList(list))
	}
	return proxies, nil
}

// redactString redacts a string that may or may not parse as a URL.
func redactString(s string) string {
	if u, err := url.Parse(s); err == nil {
		return redact(u)
	}
	if i := strings.LastIndex(s, "@"); i >= 0 {
		return "REDACTED" + s[i:]
	}
	return s
}

// redactList redacts every entry of a proxy list.
func redactList(list string) string {
	var b strings.Builder
	for list != "" {
		i := strings.IndexAny(list, ",|")
		if i < 0 {
			b.WriteString(redactString(list))
			break
		}
		b.WriteString(redactString(list[:i]))
		b.WriteByte(list[i])
		list = list[i+1:]
	}
	return b.String()
}

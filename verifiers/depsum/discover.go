package depsum

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
)

// Discover decides, as the go command does (cmd/go/internal/modfetch,
// dbDial and initBase), how to reach the checksum database named by gosumdb,
// given the proxy list goproxy; both as `go env` prints them ("" means the
// go command's default). It returns options with Name, Key, URL and
// HTTPClient set; the caller adds CacheDir.
//
// GOSUMDB is "<name or key>" or "<name or key> <url>"; "sum.golang.org"
// stands for its built-in key ([SumGolangOrgKey]) and "sum.golang.google.cn"
// for sum.golang.org at https://sum.golang.google.cn. "off" is refused
// ([ErrConfig]): modgate does not admit unverified dependencies.
//
// With a URL in GOSUMDB, that URL is used and no proxy is asked. Otherwise
// the proxies are tried in order: GET <proxy>/sumdb/<name>/supported; 200
// means use <proxy>/sumdb/<name>; 404 or 410 means try the next one. Any
// other answer ends the search with an error wrapping [ErrUnavailable]
// (transient), unless the proxy is followed by "|" in the list, which allows
// falling back on any error. "direct" or "off" in the list, or its end, means
// the database's own https://<name>; entries after "direct" or "off" are
// ignored. A file:// proxy cannot serve a database over HTTP and is skipped.
func Discover(ctx context.Context, goproxy, gosumdb string, client *http.Client) (SumDBOptions, error) {
	if client == nil {
		client = &http.Client{Timeout: 30 * time.Second}
	}
	gosumdb = strings.TrimSpace(gosumdb)
	switch gosumdb {
	case "":
		gosumdb = "sum.golang.org"
	case "sum.golang.google.cn":
		gosumdb = "sum.golang.org https://sum.golang.google.cn"
	case "off":
		return SumDBOptions{}, fmt.Errorf("%w: GOSUMDB=off would leave public dependencies unverified", ErrConfig)
	}
	f := strings.Fields(gosumdb)
	if len(f) > 2 {
		return SumDBOptions{}, fmt.Errorf("%w: invalid GOSUMDB %q: too many fields", ErrConfig, gosumdb)
	}
	if f[0] == "sum.golang.org" {
		f[0] = SumGolangOrgKey
	}
	v, err := note.NewVerifier(f[0])
	if err != nil {
		return SumDBOptions{}, fmt.Errorf("%w: invalid GOSUMDB key: %v", ErrConfig, err)
	}
	name := v.Name()
	direct, err := url.Parse("https://" + name)
	if err != nil || strings.HasSuffix(name, "/") || direct.Host == "" || direct.RawPath != "" ||
		*direct != (url.URL{Scheme: "https", Host: direct.Host, Path: direct.Path}) {
		return SumDBOptions{}, fmt.Errorf("%w: invalid checksum database name (must be host[/path]): %q", ErrConfig, name)
	}
	opts := SumDBOptions{Name: name, Key: f[0], URL: direct.String(), HTTPClient: client}
	if len(f) == 2 {
		opts.URL = f[1]
		return opts, opts.validateURL()
	}

	if strings.TrimSpace(goproxy) == "" {
		goproxy = "https://proxy.golang.org,direct"
	}
	var proxyErr error // a proxy's failure other than 404/410
	for goproxy != "" {
		var proxy string
		fallBackOnError := false
		if i := strings.IndexAny(goproxy, ",|"); i >= 0 {
			proxy, fallBackOnError, goproxy = goproxy[:i], goproxy[i] == '|', goproxy[i+1:]
		} else {
			proxy, goproxy = goproxy, ""
		}
		proxy = strings.TrimSpace(proxy)
		if proxy == "" {
			continue
		}
		if proxy == "direct" || proxy == "off" {
			return opts, nil
		}
		// As the go command: a bare host means https.
		if strings.ContainsAny(proxy, ".:/") && !strings.Contains(proxy, ":/") && !filepath.IsAbs(proxy) && !path.IsAbs(proxy) {
			proxy = "https://" + proxy
		}
		pu, err := url.Parse(proxy)
		if err != nil || pu.Scheme == "" {
			return SumDBOptions{}, fmt.Errorf("%w: GOPROXY entry %q is not a URL", ErrConfig, redact(proxy))
		}
		if pu.Scheme == "file" {
			continue // no database over HTTP there: like a 404
		}
		if pu.Scheme != "http" && pu.Scheme != "https" {
			return SumDBOptions{}, fmt.Errorf("%w: GOPROXY entry %q: unsupported scheme", ErrConfig, redact(proxy))
		}
		base := pu.JoinPath("sumdb", name).String()
		supported, err := probe(ctx, client, base+"/supported")
		if supported {
			opts.URL = base
			return opts, nil
		}
		if err != nil {
			if proxyErr == nil {
				proxyErr = err
			}
			if !fallBackOnError {
				break
			}
		}
	}
	// The go command goes direct only when every proxy said "not here":
	// after any other failure the database counts as unavailable.
	if proxyErr != nil {
		return SumDBOptions{}, proxyErr
	}
	return opts, nil
}

// probe asks a proxy whether it proxies the database: true on 200; false
// and no error on 404 or 410 (try the next one); otherwise an error.
func probe(ctx context.Context, client *http.Client, u string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return false, fmt.Errorf("%w: %s: %v", ErrConfig, redact(u), err)
	}
	req.Header.Set("User-Agent", "modgate-depsum")
	resp, err := client.Do(req)
	if err != nil {
		if ue, ok := err.(*url.Error); ok {
			err = ue.Err
		}
		return false, fmt.Errorf("%w: GET %s: %v", ErrUnavailable, redact(u), err)
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 4096))
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound, http.StatusGone:
		return false, nil
	}
	return false, fmt.Errorf("%w: GET %s: %s", ErrUnavailable, redact(u), resp.Status)
}

// validateURL checks just the URL (Discover leaves CacheDir to the caller).
func (o SumDBOptions) validateURL() error {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
		return fmt.Errorf("%w: checksum database URL %q: want an http or https URL without query", ErrConfig, redact(o.URL))
	}
	return nil
}

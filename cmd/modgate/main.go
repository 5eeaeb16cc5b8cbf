// Command modgate is a supply-chain admission gate for Go modules: a signed
// git tag becomes a verified, immutable module version served over the
// GOPROXY protocol.
//
// Usage:
//
//	modgate admit --config FILE (--repo REPO --tag TAG | --module PATH@VERSION) [--json] [--enqueue [--wait]]
//	modgate serve [--config FILE] [--workers-only] [--nats-url URL]
//	modgate verdict MODULE@VERSION
//	modgate audit [--since 24h]
//	modgate verify [--config FILE] [--json]
//	modgate reverify [--all | MODULE[@VERSION] | --since T] [--deep] [--json] [--local]
//	modgate keys generate --name NAME --out FILE
//	modgate version
//
// Exit codes of admit: 0 admitted (or already admitted with identical
// hashes), 1 rejected, 2 usage, configuration or transient error.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/modgate/modgate/config"
)

// Version is set at build time with -ldflags "-X main.Version=…".
var Version = "devel"

const usage = `usage: modgate <command> [flags]

commands:
  admit    admit one signed tag: modgate admit --config FILE --repo REPO --tag TAG [--json]
           or a public module from the upstream proxy: --module PATH@VERSION
           [--enqueue [--wait]]: hand it to the workers of a running modgate serve
  serve    run modgate: proxy, checksum database, webhooks, NATS workers: modgate serve [--config FILE]
           [--workers-only] [--nats-url URL]
  verdict  the latest verdict of a version: modgate verdict MODULE@VERSION [--config FILE]
  audit    the audit trail: modgate audit [--since 24h] [--config FILE]
  verify   re-hash every stored version against the checksum log: modgate verify [--config FILE] [--json]
  reverify re-prove admitted versions now, quarantine what fails, restore what passes again:
           modgate reverify --all | MODULE[@VERSION] | --since 24h [--deep] [--json] [--local]
  policy   check, test and dry-run policies: modgate policy check|test|eval …
  keys     generate the checksum database key: modgate keys generate --name NAME --out FILE
  version  print the version

Run 'modgate <command> -h' for a command's flags.
`

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// exitError carries an exit code through command functions.
type exitError struct {
	code int
	err  error
}

func (e *exitError) Error() string {
	if e.err == nil {
		return fmt.Sprintf("exit status %d", e.code)
	}
	return e.err.Error()
}

func usageErr(format string, args ...any) error {
	return &exitError{code: 2, err: fmt.Errorf(format, args...)}
}

// run is main without the process: testscript calls it in-process.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "admit":
		err = cmdAdmit(ctx, args[1:], stdout, stderr)
	case "serve":
		err = cmdServe(ctx, args[1:], stdout, stderr)
	case "verdict":
		err = cmdVerdict(ctx, args[1:], stdout, stderr)
	case "audit":
		err = cmdAudit(ctx, args[1:], stdout, stderr)
	case "policy":
		err = cmdPolicy(ctx, args[1:], stdout, stderr)
	case "verify":
		err = cmdVerify(ctx, args[1:], stdout, stderr)
	case "reverify":
		err = cmdReverify(ctx, args[1:], stdout, stderr)
	case "keys":
		err = cmdKeys(ctx, args[1:], stdout, stderr)
	case "version":
		fmt.Fprintln(stdout, "modgate", Version)
	case "help", "-h", "-help", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "modgate: unknown command %q\n%s", args[0], usage)
		return 2
	}
	if err == nil {
		return 0
	}
	var ee *exitError
	if errors.As(err, &ee) {
		if ee.err != nil {
			fmt.Fprintln(stderr, "modgate:", ee.err)
		}
		return ee.code
	}
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	fmt.Fprintln(stderr, "modgate:", err)
	return 2
}

// newFlagSet returns a flag set that reports errors instead of exiting.
func newFlagSet(name string, stderr io.Writer) *flag.FlagSet {
	fs := flag.NewFlagSet("modgate "+name, flag.ContinueOnError)
	fs.SetOutput(stderr)
	return fs
}

// parseFlags parses args, refusing stray positional arguments.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return &exitError{code: 2} // the flag package has printed why
	}
	if fs.NArg() > 0 {
		return usageErr("%s: unexpected argument %q", fs.Name(), fs.Arg(0))
	}
	return nil
}

// loadConfig loads the file, or the built-in defaults when name is "".
func loadConfig(name string) (*config.Config, error) {
	if name == "" {
		c := (&config.Config{}).WithDefaults()
		return c, c.Validate()
	}
	c, err := config.Load(name)
	if err != nil {
		return nil, &exitError{code: 2, err: err}
	}
	return c, nil
}

// newLogger writes JSON logs to w at level.
func newLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}

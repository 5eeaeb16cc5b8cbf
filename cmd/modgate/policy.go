package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/mod/module"

	"github.com/modgate/modgate/pipeline"
	"github.com/modgate/modgate/policies"
	"github.com/modgate/modgate/store"
)

const policyUsage = `usage:
  modgate policy check DIR                     compile and type-check every policy file
  modgate policy test DIR [--cases CASES]      run the test cases (default DIR/tests) against the policies
  modgate policy eval --all [--config FILE] [--policies DIR] [--json] [--dump-inputs OUT]
                                               dry run: what the policies would decide for everything admitted`

func cmdPolicy(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("%s", policyUsage)
	}
	switch args[0] {
	case "check":
		return policyCheck(args[1:], stdout, stderr)
	case "test":
		return policyTest(args[1:], stdout, stderr)
	case "eval":
		return policyEval(ctx, args[1:], stdout, stderr)
	}
	return usageErr("policy: unknown command %q\n%s", args[0], policyUsage)
}

// loadPolicies loads a directory, printing one line per problem
// (file:line:col: rule: why).
func loadPolicies(dir string, stderr io.Writer) (*policies.Set, error) {
	set, err := policies.Load(dir)
	if err != nil {
		errs := policies.Errors(err)
		for _, e := range errs {
			fmt.Fprintln(stderr, e)
		}
		if len(errs) == 0 {
			fmt.Fprintln(stderr, err)
		}
		return nil, &exitError{code: 1}
	}
	return set, nil
}

func policyCheck(args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy check", stderr)
	if err := fs.Parse(args); err != nil || fs.NArg() != 1 {
		return usageErr("%s", policyUsage)
	}
	set, err := loadPolicies(fs.Arg(0), stderr)
	if err != nil {
		return err
	}
	fmt.Fprintf(stdout, "%d policy files OK, digest %s\n", len(set.Files()), set.Digest())
	return nil
}

func policyTest(args []string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return usageErr("%s", policyUsage)
	}
	dir := args[0]
	fs := newFlagSet("policy test", stderr)
	cases := fs.String("cases", "", "directory of test case files (default DIR/tests)")
	if err := parseFlags(fs, args[1:]); err != nil {
		return err
	}
	if *cases == "" {
		*cases = filepath.Join(dir, "tests")
	}
	set, err := loadPolicies(dir, stderr)
	if err != nil {
		return err
	}
	results, err := policies.RunTests(set, *cases)
	if err != nil {
		for _, e := range policies.Errors(err) {
			fmt.Fprintln(stderr, e)
		}
		return &exitError{code: 2, err: err}
	}
	failed := 0
	for _, r := range results {
		if r.Passed {
			continue
		}
		failed++
		for _, f := range r.Failures {
			fmt.Fprintf(stderr, "FAIL %s: %s: %s\n", r.File, r.Case, f)
		}
	}
	fmt.Fprintf(stdout, "%d passed, %d failed\n", len(results)-failed, failed)
	if failed > 0 {
		return &exitError{code: 1}
	}
	return nil
}

// evalChange is one version whose decision, or the outcome of one of its
// rules, the new policies would change.
type evalChange struct {
	Module  string `json:"module"`
	Version string `json:"version"`
	Was     string `json:"was"` // "allowed", "denied", "unknown" (admitted without policies)
	Now     string `json:"now"`
	// Rules says what changed rule by rule (policies.Changes) against the
	// recorded decision; empty when there is none.
	Rules    []string           `json:"rules,omitempty"`
	Decision *policies.Decision `json:"decision"`
}

func policyEval(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlagSet("policy eval", stderr)
	cfgFile := fs.String("config", "", "configuration `file`")
	dir := fs.String("policies", "", "policy `directory` to try (default: policies.dir of the configuration)")
	all := fs.Bool("all", false, "evaluate every admitted version (required)")
	asJSON := fs.Bool("json", false, "print the changes as JSON")
	dump := fs.String("dump-inputs", "", "also write each recorded input as JSON into `dir` (for policy test cases)")
	if err := parseFlags(fs, args); err != nil {
		return err
	}
	if !*all {
		return usageErr("policy eval: --all is required (a dry run over everything admitted)")
	}
	cfg, err := loadConfig(*cfgFile)
	if err != nil {
		return err
	}
	if *dir == "" {
		*dir = cfg.Policies.Dir
	}
	if *dir == "" {
		return usageErr("policy eval: no --policies and no policies.dir in the configuration")
	}
	set, err := loadPolicies(*dir, stderr)
	if err != nil {
		return err
	}
	st, err := store.Open(cfg.Store.Dir)
	if err != nil {
		return err
	}
	if *dump != "" {
		if err := os.MkdirAll(*dump, 0o755); err != nil {
			return err
		}
	}
	now := time.Now()
	var changes []evalChange
	total, unchanged, flipped := 0, 0, 0
	err = st.Walk(ctx, func(m module.Version) error {
		total++
		rec, err := pipeline.ReadRecord(ctx, st, m)
		if err != nil || rec.Input == nil {
			fmt.Fprintf(stderr, "%s: no recorded policy input (admitted before records were kept): skipped\n", m)
			return nil
		}
		if *dump != "" {
			data, _ := json.MarshalIndent(rec.Input, "", "  ")
			esc, _ := module.EscapePath(m.Path)
			name := filepath.Join(*dump, filepath.FromSlash(esc)+"@"+m.Version+".json")
			if err := os.MkdirAll(filepath.Dir(name), 0o755); err != nil {
				return err
			}
			if err := os.WriteFile(name, data, 0o644); err != nil {
				return err
			}
		}
		d := set.Evaluate(ctx, rec.Input, now)
		c := evalChange{Module: m.Path, Version: m.Version, Was: "unknown", Now: allowedWord(d.Allowed), Decision: d}
		if rec.Decision != nil {
			c.Was = allowedWord(rec.Decision.Allowed)
			// A rule that now warns, or denies for another reason, is a
			// change too, even when the decision stays.
			c.Rules = policies.Changes(rec.Decision, d)
		}
		if c.Was == c.Now && len(c.Rules) == 0 {
			unchanged++
			return nil
		}
		if c.Was != c.Now {
			flipped++
		}
		changes = append(changes, c)
		return nil
	})
	if err != nil {
		return err
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(map[string]any{"digest": set.Digest(), "versions": total, "unchanged": unchanged,
			"decision_changes": flipped, "rule_changes_only": len(changes) - flipped, "changes": changes})
	}
	for _, c := range changes {
		fmt.Fprintf(stdout, "%s@%s: %s -> %s", c.Module, c.Version, c.Was, c.Now)
		for _, r := range c.Decision.Results {
			if r.Result != policies.Pass {
				fmt.Fprintf(stdout, "; %s/%s %s: %s", r.File, r.Rule, r.Result, r.Message)
			}
		}
		fmt.Fprintln(stdout)
		for _, r := range c.Rules {
			fmt.Fprintf(stdout, "    %s\n", r)
		}
	}
	fmt.Fprintf(stdout, "%d versions, %d unchanged, %d would change decision, %d only rules (policies %s)\n",
		total, unchanged, flipped, len(changes)-flipped, set.Digest())
	return nil
}

func allowedWord(ok bool) string {
	if ok {
		return "allowed"
	}
	return "denied"
}

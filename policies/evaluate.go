package policies

import (
	"context"
	"fmt"
	"strings"
	"time"

	"cel.dev/cel-go/cel"
	"cel.dev/cel-go/common/types"

	"github.com/modgate/modgate/internal/modmatch"
)

// Outcome is the result of one rule on one input.
type Outcome string

const (
	// Pass: the rule is satisfied.
	Pass Outcome = "pass"
	// Denied: the rule is not satisfied and its action is deny.
	Denied Outcome = "deny"
	// Warned: the rule is not satisfied and its action is warn.
	Warned Outcome = "warn"
	// Errored: the rule could not be evaluated (a runtime error, the cost
	// limit, a canceled context). It denies, whatever the rule's action.
	Errored Outcome = "error"
)

// Decision is the outcome of a policy set for one input. It goes into the
// verdict and the audit record.
type Decision struct {
	// Allowed is true when at least one policy file covers the module and no
	// rule of the files that cover it denied or errored.
	Allowed bool `json:"allowed"`
	// Policies are the files whose module patterns matched, in name order.
	Policies []string `json:"policies"`
	// Results has one entry per rule of those files, in file then rule
	// order; or a single denial when no file covers the module or the
	// input is over the limits.
	Results []RuleResult `json:"results"`
	// Digest is the digest of the whole policy set (Set.Digest).
	Digest string `json:"digest"`
}

// RuleResult is the outcome of one rule.
type RuleResult struct {
	File   string  `json:"file"` // "" for a denial that is no rule's (nothing covers the module)
	Rule   string  `json:"rule"`
	Action Action  `json:"action"`
	Result Outcome `json:"result"`
	// Message is the rendered message of a rule that denied or warned, or
	// why it errored; "" for a rule that passed.
	Message string `json:"message,omitempty"`
}

// Reasons returns one line per denying or erroring rule, for a verdict:
// `signers.yaml: release-team: corp.example/x is not signed by the release team`.
func (d *Decision) Reasons() []string {
	var out []string
	for _, r := range d.Results {
		if r.Result == Denied || r.Result == Errored {
			out = append(out, r.line())
		}
	}
	return out
}

// Warnings returns one line per warning rule.
func (d *Decision) Warnings() []string {
	var out []string
	for _, r := range d.Results {
		if r.Result == Warned {
			out = append(out, r.line())
		}
	}
	return out
}

func (r RuleResult) line() string {
	switch {
	case r.File == "":
		return fmt.Sprintf("%s: %s", r.Rule, r.Message)
	case r.Result == Errored:
		return fmt.Sprintf("%s: %s: error: %s", r.File, r.Rule, r.Message)
	}
	return fmt.Sprintf("%s: %s: %s", r.File, r.Rule, r.Message)
}

// Names of the denials that are no rule's.
const (
	ruleNoPolicy = "no-policy"
	ruleLimits   = "input-limits"
	ruleNoSet    = "no-policy-set"
)

// Evaluate decides on in at time now (what age() measures from, and the
// CEL variable now; the zero time means the wall clock). Every rule of every file whose module patterns match
// in.Module.Path is evaluated; none is skipped after a denial, so the
// decision lists them all. Evaluate never fails: whatever goes wrong
// (no covering policy, an input over the limits, a rule's runtime error,
// its cost limit, ctx canceled) denies, with a result that says why.
func (s *Set) Evaluate(ctx context.Context, in *Input, now time.Time) *Decision {
	d := &Decision{Digest: s.Digest(), Policies: []string{}, Results: []RuleResult{}}
	deny := func(rule, msg string) *Decision {
		d.Allowed = false
		d.Results = append(d.Results, RuleResult{Rule: rule, Action: Deny, Result: Denied, Message: msg})
		return d
	}
	switch {
	case s == nil || len(s.files) == 0:
		return deny(ruleNoSet, "no policy set is loaded")
	case in == nil:
		return deny(ruleLimits, "no input")
	}
	if now.IsZero() {
		now = time.Now()
	}
	if err := s.cfg.Limits.check(in); err != nil {
		return deny(ruleLimits, err.Error())
	}
	var apply []*compiledFile
	for _, f := range s.files {
		if modmatch.Match(f.patterns, in.Module.Path) {
			apply = append(apply, f)
			d.Policies = append(d.Policies, f.Name)
		}
	}
	if len(apply) == 0 {
		return deny(ruleNoPolicy, fmt.Sprintf("no policy covers %s", in.Module.Path))
	}
	vars := map[string]any{
		"input": s.env.CELTypeAdapter().NativeToValue(in),
		"now":   types.Timestamp{Time: now},
	}
	act, err := cel.FunctionVars(vars, lateBound(now))
	if err != nil { // cannot happen: vars holds no functions
		return deny(ruleNoSet, err.Error())
	}
	d.Allowed = true
	for _, f := range apply {
		for _, r := range f.rules {
			res := r.evaluate(ctx, act)
			res.File = f.Name
			if res.Result == Denied || res.Result == Errored {
				d.Allowed = false
			}
			d.Results = append(d.Results, res)
		}
	}
	return d
}

func (r *compiledRule) evaluate(ctx context.Context, act cel.Activation) RuleResult {
	res := RuleResult{Rule: r.Name, Action: r.Action}
	if err := ctx.Err(); err != nil {
		res.Result, res.Message = Errored, "not evaluated: "+err.Error()
		return res
	}
	v, _, err := r.prg.ContextEval(ctx, act)
	if err != nil {
		res.Result, res.Message = Errored, err.Error()
		return res
	}
	ok, isBool := v.(types.Bool)
	switch {
	case !isBool: // the checker refuses non-bool rules; a dyn value could still get here
		res.Result, res.Message = Errored, fmt.Sprintf("rule evaluated to %s, not a bool", v.Type().TypeName())
	case bool(ok):
		res.Result = Pass
	default:
		res.Result = Denied
		if r.Action == Warn {
			res.Result = Warned
		}
		res.Message = r.msg.render(ctx, act)
		if strings.TrimSpace(res.Message) == "" {
			res.Message = fmt.Sprintf("not satisfied: %s", clip(strings.Join(strings.Fields(r.Expr), " ")))
		}
	}
	return res
}

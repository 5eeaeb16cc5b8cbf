package policies

import "fmt"

// Changes says how after differs from before, for a dry run of a new
// policy set against inputs an old set decided (`modgate policy eval
// --all`): one line for a changed decision, one per rule whose outcome
// changed, appeared or disappeared. Nothing when the decisions agree.
func Changes(before, after *Decision) []string {
	var out []string
	if before.Allowed != after.Allowed {
		out = append(out, fmt.Sprintf("decision: %s -> %s", verdict(before), verdict(after)))
	}
	type key struct{ file, rule string }
	old := map[key]RuleResult{}
	for _, r := range before.Results {
		old[key{r.File, r.Rule}] = r
	}
	seen := map[key]bool{}
	for _, r := range after.Results {
		k := key{r.File, r.Rule}
		seen[k] = true
		o, ok := old[k]
		switch {
		case !ok:
			out = append(out, fmt.Sprintf("%s: new rule: %s%s", r.name(), r.Result, r.suffix()))
		case o.Result != r.Result:
			out = append(out, fmt.Sprintf("%s: %s -> %s%s", r.name(), o.Result, r.Result, r.suffix()))
		}
	}
	for _, r := range before.Results {
		if !seen[key{r.File, r.Rule}] {
			out = append(out, fmt.Sprintf("%s: gone (was %s)", r.name(), r.Result))
		}
	}
	return out
}

func verdict(d *Decision) string {
	if d.Allowed {
		return "allowed"
	}
	return "denied"
}

func (r RuleResult) name() string {
	if r.File == "" {
		return r.Rule
	}
	return r.File + "/" + r.Rule
}

func (r RuleResult) suffix() string {
	if r.Message == "" {
		return ""
	}
	return ": " + r.Message
}

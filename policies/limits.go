package policies

import (
	"fmt"
	"strings"
)

// Limits bound the size of an Input. Evaluate denies an input over a limit
// rather than spend unbounded time on it, and Compile assumes them when it
// estimates the worst-case cost of a rule.
type Limits struct {
	// MaxList bounds input.dependencies and each list of input.gomod.
	// Default: 10000.
	MaxList int
	// MaxLicenses bounds input.licenses and each dependency's licenses.
	// Default: 32.
	MaxLicenses int
	// MaxString bounds every string of the input. Default: 4096 bytes.
	MaxString int
}

// WithDefaults returns l with every zero field set to its default.
func (l Limits) WithDefaults() Limits {
	if l.MaxList == 0 {
		l.MaxList = 10000
	}
	if l.MaxLicenses == 0 {
		l.MaxLicenses = 32
	}
	if l.MaxString == 0 {
		l.MaxString = 4096
	}
	return l
}

// check reports the first part of in over a limit.
func (l Limits) check(in *Input) error {
	var errs []string
	str := func(field, s string) {
		if len(s) > l.MaxString && len(errs) < 3 {
			errs = append(errs, fmt.Sprintf("%s is %d bytes, over the limit of %d", field, len(s), l.MaxString))
		}
	}
	list := func(field string, n, max int) bool {
		if n > max {
			errs = append(errs, fmt.Sprintf("%s has %d entries, over the limit of %d", field, n, max))
			return false
		}
		return true
	}
	str("module.path", in.Module.Path)
	str("module.version", in.Module.Version)
	str("module.major", in.Module.Major)
	str("repository", in.Repository)
	str("tag.name", in.Tag.Name)
	str("tag.signer_type", in.Tag.SignerType)
	str("tag.fingerprint", in.Tag.Fingerprint)
	str("tag.principal", in.Tag.Principal)
	str("tag.signer_group", in.Tag.SignerGroup)
	str("gomod.go", in.GoMod.Go)
	str("gomod.toolchain", in.GoMod.Toolchain)
	if list("licenses", len(in.Licenses), l.MaxLicenses) {
		for _, s := range in.Licenses {
			str("licenses[]", s)
		}
	}
	if list("gomod.requires", len(in.GoMod.Requires), l.MaxList) {
		for _, r := range in.GoMod.Requires {
			str("gomod.requires[].path", r.Path)
			str("gomod.requires[].version", r.Version)
		}
	}
	if list("gomod.replaces", len(in.GoMod.Replaces), l.MaxList) {
		for _, r := range in.GoMod.Replaces {
			str("gomod.replaces[].old_path", r.OldPath)
			str("gomod.replaces[].old_version", r.OldVersion)
			str("gomod.replaces[].new_path", r.NewPath)
			str("gomod.replaces[].new_version", r.NewVersion)
		}
	}
	if list("gomod.retracts", len(in.GoMod.Retracts), l.MaxList) {
		for _, r := range in.GoMod.Retracts {
			str("gomod.retracts[].low", r.Low)
			str("gomod.retracts[].high", r.High)
			str("gomod.retracts[].rationale", r.Rationale)
		}
	}
	if list("dependencies", len(in.Dependencies), l.MaxList) {
		for _, d := range in.Dependencies {
			str("dependencies[].path", d.Path)
			str("dependencies[].version", d.Version)
			if list("dependencies[].licenses", len(d.Licenses), l.MaxLicenses) {
				for _, s := range d.Licenses {
					str("dependencies[].licenses[]", s)
				}
			}
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("input over limits: %s", strings.Join(errs, "; "))
}

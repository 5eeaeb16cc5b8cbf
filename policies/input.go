package policies

import (
	"time"

	"golang.org/x/mod/modfile"
	"golang.org/x/mod/semver"
)

// Input is what every rule sees as the CEL variable `input`. Rules name its
// fields by their JSON names (input.module.path, input.tag.signer_group,
// input.gomod.replaces, …); a misspelled field is a type error when the
// policy is compiled. REFERENCE.md documents every field for policy authors.
//
// The same JSON form is what `modgate policy test` cases and recorded
// verdict inputs hold.
type Input struct {
	// Module is the module version being admitted.
	Module Module `json:"module"`
	// Source is where the version came from: "git" (a signed tag of a
	// configured repository) or "upstream" (a public module from the
	// upstream proxy, proven against the public checksum database).
	Source string `json:"source"`
	// Repository is the normalized URL (or local path) of the repository
	// the tag was fetched from; "" for an upstream module.
	Repository string `json:"repository"`
	// Tag is the signed git tag the version comes from.
	Tag Tag `json:"tag"`
	// GoMod is the module's go.mod at the tag.
	GoMod GoMod `json:"gomod"`
	// Dependencies is the module's build list as go.mod and go.sum record
	// it, the module itself excluded.
	Dependencies []Dependency `json:"dependencies"`
	// Licenses are the module's own licenses as the SBOM found them: SPDX
	// identifiers or expressions ("MIT", "Apache-2.0 OR MIT"). Empty when no
	// license was found.
	Licenses []string `json:"licenses"`
}

// Module is the module version being admitted.
type Module struct {
	// Path is the module path ("corp.example/hello/v2").
	Path string `json:"path"`
	// Version is the canonical semantic version ("v2.1.0", "v2.1.0-rc.1").
	Version string `json:"version"`
	// Major is the major version ("v2"; "v0" and "v1" for those).
	Major string `json:"major"`
	// Prerelease is true when Version has a prerelease suffix ("-rc.1");
	// pseudo-versions are prereleases too.
	Prerelease bool `json:"prerelease"`
	// Time is the version's time as the proxy's .info reports it: the
	// tagger date of the tag.
	Time time.Time `json:"time"`
}

// Tag is the signed git tag a version comes from.
type Tag struct {
	// Name is the tag name without refs/tags/ ("v1.2.3", "sub/dir/v1.2.3").
	Name string `json:"name"`
	// Time is the tagger date.
	Time time.Time `json:"time"`
	// SignerType is "openpgp" or "ssh", or "" when no configured key verified
	// the signature.
	SignerType string `json:"signer_type"`
	// Fingerprint is the fingerprint of the key that made the signature: the
	// upper-case hex OpenPGP fingerprint (of the subkey, if a subkey signed),
	// or "SHA256:…" for SSH. "" when unverified.
	Fingerprint string `json:"fingerprint"`
	// Principal is, for SSH, the allowed_signers principal that matched; for
	// OpenPGP, the primary identity "Name <email>". "" when unverified.
	Principal string `json:"principal"`
	// SignerGroup is the name of the configured signer group whose keys
	// verified the signature ("release-team"), or "" if none did.
	SignerGroup string `json:"signer_group"`
}

// GoMod is what a rule sees of the module's go.mod.
type GoMod struct {
	// Go is the go directive ("1.22", "1.22.3"), "" if there is none.
	Go string `json:"go"`
	// Toolchain is the toolchain directive ("go1.22.3"), "" if there is none.
	Toolchain string `json:"toolchain"`
	// Requires are the require directives, in file order.
	Requires []Require `json:"requires"`
	// Replaces are the replace directives, in file order.
	Replaces []Replace `json:"replaces"`
	// Retracts are the retract directives, in file order.
	Retracts []Retract `json:"retracts"`
}

// Require is one require directive.
type Require struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	// Indirect is true for requirements marked "// indirect".
	Indirect bool `json:"indirect"`
}

// Replace is one replace directive.
type Replace struct {
	OldPath string `json:"old_path"`
	// OldVersion is "" when the directive replaces every version.
	OldVersion string `json:"old_version"`
	NewPath    string `json:"new_path"`
	// NewVersion is "" for a replacement by a directory.
	NewVersion string `json:"new_version"`
	// Local is true when the replacement is a directory (NewPath is a file
	// path, NewVersion is ""): code that is not in any module version.
	Local bool `json:"local"`
}

// Retract is one retract directive; Low == High for a single version.
type Retract struct {
	Low       string `json:"low"`
	High      string `json:"high"`
	Rationale string `json:"rationale"`
}

// Dependency is one module of the build list.
type Dependency struct {
	Path    string `json:"path"`
	Version string `json:"version"`
	// Direct is true when go.mod requires it without "// indirect".
	Direct bool `json:"direct"`
	// Public is true when the module is verified against the public
	// checksum database, false when it is a private module (one modgate
	// publishes).
	Public bool `json:"public"`
	// Licenses are the dependency's licenses (SPDX identifiers or
	// expressions), where known; empty otherwise.
	Licenses []string `json:"licenses"`
	// Admitted is true when modgate has admitted this version.
	Admitted bool `json:"admitted"`
	// Time is the publish time of this version if known, the zero time
	// otherwise (test with known(d.time)).
	Time time.Time `json:"time"`
}

// NewModule returns the Module for path@version at time t, with Major and
// Prerelease derived from the version.
func NewModule(path, version string, t time.Time) Module {
	major := semver.Major(version)
	return Module{
		Path:       path,
		Version:    version,
		Major:      major,
		Prerelease: semver.Prerelease(version) != "",
		Time:       t,
	}
}

// ParseGoMod returns what a rule sees of a go.mod file. file names it in
// errors.
func ParseGoMod(file string, data []byte) (GoMod, error) {
	f, err := modfile.ParseLax(file, data, nil)
	if err != nil {
		return GoMod{}, err
	}
	var g GoMod
	if f.Go != nil {
		g.Go = f.Go.Version
	}
	if f.Toolchain != nil {
		g.Toolchain = f.Toolchain.Name
	}
	for _, r := range f.Require {
		g.Requires = append(g.Requires, Require{Path: r.Mod.Path, Version: r.Mod.Version, Indirect: r.Indirect})
	}
	for _, r := range f.Replace {
		g.Replaces = append(g.Replaces, Replace{
			OldPath:    r.Old.Path,
			OldVersion: r.Old.Version,
			NewPath:    r.New.Path,
			NewVersion: r.New.Version,
			Local:      r.New.Version == "" && modfile.IsDirectoryPath(r.New.Path),
		})
	}
	for _, r := range f.Retract {
		g.Retracts = append(g.Retracts, Retract{Low: r.Low, High: r.High, Rationale: r.Rationale})
	}
	return g, nil
}

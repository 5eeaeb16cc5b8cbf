package pipeline

import "golang.org/x/mod/module"

func moduleVersion(v *Verdict) module.Version {
	return module.Version{Path: v.Module, Version: v.Version}
}

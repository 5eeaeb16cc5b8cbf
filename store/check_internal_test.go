package store

import (
	"errors"
	"testing"

	"golang.org/x/mod/module"
)

// TestCheckModuleMemo: remembered answers are the same as fresh ones, a
// refused version is never remembered.
func TestCheckModuleMemo(t *testing.T) {
	for _, m := range []module.Version{
		{Path: "example.com/a", Version: "v1.0.0"},
		{Path: "example.com/a", Version: "v1.0"},
		{Path: "example.com/a/v2", Version: "v1.0.0"},
		{Path: "Example.com/a", Version: "v1.0.0"},
		{Path: "example.com/a", Version: "v2.0.0+incompatible"},
	} {
		first, second := checkModule(m), checkModule(m)
		if (first == nil) != (second == nil) || first != nil && !errors.Is(second, ErrInvalid) {
			t.Errorf("%v: first check %v, second %v", m, first, second)
		}
		if _, ok := validModules.Get(m); first != nil && ok {
			t.Errorf("%v refused (%v) but remembered as valid", m, first)
		}
	}
	// The bound is memo.Map's (TestMap).

}

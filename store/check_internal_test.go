package store

import (
	"errors"
	"fmt"
	"testing"

	"golang.org/x/mod/module"
)

// TestCheckModuleMemo: remembered answers are the same as fresh ones, a
// refused version is never remembered, and the set stays bounded.
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
		if first != nil && validModules.has(m) {
			t.Errorf("%v refused (%v) but remembered as valid", m, first)
		}
	}
	s := moduleSet{max: 3}
	for i := range 10 {
		s.add(module.Version{Path: "example.com/a", Version: fmt.Sprintf("v1.0.%d", i)})
		if len(s.set) > s.max {
			t.Fatalf("set grew to %d, over %d", len(s.set), s.max)
		}
	}
	if !s.has(module.Version{Path: "example.com/a", Version: "v1.0.9"}) {
		t.Error("the last version added is not in the set")
	}
}

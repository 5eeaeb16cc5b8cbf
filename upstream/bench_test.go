package upstream

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkFetch fetches and proves a module of about 400 KB (mostly
// incompressible) from the local test proxy; after the first iteration the
// checksum database answers from the SumDB's memory, so this measures the
// download, CheckZip, hashing and the go.mod cross-check.
func BenchmarkFetch(b *testing.B) {
	e := newEnv(b)
	files := map[string]string{"go.mod": "module example.com/big\n\ngo 1.21\n"}
	r := rand.New(rand.NewPCG(1, 2))
	for i := range 40 {
		data := make([]byte, 10<<10)
		for j := range data {
			data[j] = byte('a' + r.IntN(26))
		}
		files[fmt.Sprintf("pkg%d/data.go", i)] = "package pkg\n\nconst data = `" + string(data) + "`\n"
	}
	tm := newModule(b, "example.com/big", "v1.0.0", files)
	e.publish(tm)
	f := e.fetcher(Options{})
	b.SetBytes(int64(len(tm.zip)))
	b.ReportAllocs()
	for b.Loop() {
		mod, err := f.Fetch(context.Background(), tm.m)
		if err != nil {
			b.Fatal(err)
		}
		mod.Remove()
	}
}

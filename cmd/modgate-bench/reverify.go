package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/modgate/modgate/internal/rawhash"
	"github.com/modgate/modgate/verifiers/integrity"
)

// reverifyResult is the re-verification of everything a service run
// admitted (the timed versions, the warm-up, and the public dependencies
// modgate serve admitted for them: real modules with syft's SBOMs), by
// `modgate reverify --all` through the running service, against the raw
// SHA-256 floor (rawhash) of the same zips and of every file a shallow run
// reads, measured before each run.
type reverifyResult struct {
	Versions int   `json:"versions"`
	ZipBytes int64 `json:"zip_bytes"`
	// Files is how many files the raw "every file" side reads and hashes.
	Files int           `json:"files"`
	Runs  []reverifyRun `json:"runs"`
}

type reverifyRun struct {
	// DurationMS is the run's span, first shard start to last shard end,
	// as its report says.
	DurationMS        float64 `json:"duration_ms"`
	VersionsPerSecond float64 `json:"versions_per_second"`
	RawZipsMS         float64 `json:"raw_zips_ms"`
	RawFilesMS        float64 `json:"raw_files_ms"`
	// OfRawZips and OfRawFiles are the raw durations over the run's, in
	// percent: re-verification's rate as a share of the floor's.
	OfRawZips  float64 `json:"of_raw_zips_percent"`
	OfRawFiles float64 `json:"of_raw_files_percent"`
}

// readSuffixes are the files of a version a shallow re-verification reads
// and hashes.
var readSuffixes = integrity.ReadSuffixes()

// reverifyPhase runs `modgate reverify --all` runs times through the
// service configured in cfgFile (the first run is the process's first: its
// memos of verified signatures are empty).
func (b *bench) reverifyPhase(ctx context.Context, cfgFile, dir string, runs int) (*reverifyResult, error) {
	zips, files, err := storeFiles(filepath.Join(dir, "data", "store"))
	if err != nil {
		return nil, err
	}
	res := &reverifyResult{Files: len(files)}
	for i := range runs {
		rawZ, err := rawhash.Files(zips, runtime.NumCPU())
		if err != nil {
			return nil, err
		}
		rawF, err := rawhash.Files(files, runtime.NumCPU())
		if err != nil {
			return nil, err
		}
		rep, err := b.reverifyAll(ctx, cfgFile, dir)
		if err != nil {
			return nil, err
		}
		if rep.Counts["good"] != rep.Versions || rep.Versions == 0 {
			return nil, fmt.Errorf("re-verification run %d: %d of %d versions good: %v", i+1, rep.Counts["good"], rep.Versions, rep.Counts)
		}
		if rep.Versions != len(zips) {
			return nil, fmt.Errorf("re-verification run %d: %d versions, but the store holds %d zips", i+1, rep.Versions, len(zips))
		}
		res.Versions, res.ZipBytes = rep.Versions, rep.Bytes
		run := reverifyRun{DurationMS: rep.DurationMS, RawZipsMS: ms(rawZ), RawFilesMS: ms(rawF)}
		run.VersionsPerSecond = float64(rep.Versions) / (rep.DurationMS / 1000)
		run.OfRawZips, run.OfRawFiles = 100*run.RawZipsMS/rep.DurationMS, 100*run.RawFilesMS/rep.DurationMS
		b.logf("re-verification run %d: %d versions (%.1f MB of zips) in %.0f ms: %.0f versions/s; raw SHA-256 of the zips %.0f ms (%.0f%%), of every file it reads (%d) %.0f ms (%.0f%%)",
			i+1, rep.Versions, float64(rep.Bytes)/1e6, rep.DurationMS, run.VersionsPerSecond, run.RawZipsMS, run.OfRawZips, len(files), run.RawFilesMS, run.OfRawFiles)
		res.Runs = append(res.Runs, run)
	}
	return res, nil
}

// runReport is what `modgate reverify --json` prints that this uses.
type runReport struct {
	Versions   int            `json:"versions"`
	Counts     map[string]int `json:"counts"`
	Bytes      int64          `json:"bytes"`
	DurationMS float64        `json:"duration_ms"`
}

// reverifyAll runs `modgate reverify --all --json` against the service and
// reads its report.
func (b *bench) reverifyAll(ctx context.Context, cfgFile, dir string) (*runReport, error) {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, b.bin, "reverify", "--all", "--json", "--config", cfgFile)
	cmd.Dir = dir
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return nil, fmt.Errorf("modgate reverify --all: %v\n%s", err, stderr.Bytes())
	}
	var rep runReport
	if err := json.Unmarshal(stdout.Bytes(), &rep); err != nil {
		return nil, fmt.Errorf("modgate reverify --all --json: %v\n%s", err, stdout.Bytes())
	}
	return &rep, nil
}

// storeFiles lists the zips in the store under root, and every file of
// their versions that a shallow re-verification reads.
func storeFiles(root string) (zips, files []string, err error) {
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if strings.HasPrefix(d.Name(), ".tmp-") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		for _, s := range readSuffixes {
			if strings.HasSuffix(d.Name(), s) {
				files = append(files, path)
				if s == ".zip" {
					zips = append(zips, path)
				}
				break
			}
		}
		return nil
	})
	return zips, files, err
}

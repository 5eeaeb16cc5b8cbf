//go:build !unix

package main

// selfCPU is zero where getrusage is not available: the benchmark then
// reports no CPU time of its own.
func selfCPU() cpuTimes { return cpuTimes{} }

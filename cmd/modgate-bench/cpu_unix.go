//go:build unix

package main

import (
	"syscall"
	"time"
)

// selfCPU is this process's CPU time and that of its waited-for children.
func selfCPU() cpuTimes {
	var self, children syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &self)
	syscall.Getrusage(syscall.RUSAGE_CHILDREN, &children)
	tv := func(r *syscall.Rusage) time.Duration {
		return time.Duration(r.Utime.Nano() + r.Stime.Nano())
	}
	return cpuTimes{Self: tv(&self), Children: tv(&children)}
}
